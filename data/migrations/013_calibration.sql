-- 013: confidence that means something (docs/engine.md, "Calibration").
--
-- An agent's score for a proposal is kept as raw_confidence; confidence becomes the
-- probability the engine puts on it being right, fitted per agent and action on what
-- people decided about that action's earlier proposals. Rows written before 013 have no
-- raw score (their confidence was the agent's own).
ALTER TABLE ops.proposals ADD COLUMN raw_confidence DOUBLE;

-- One row per run and action whose proposals were calibrated: the judgements the map
-- was fitted on and the map itself, logit(p) = intercept + slope * logit(raw).
CREATE TABLE ops.calibrations (
    run_id      VARCHAR NOT NULL,
    agent       VARCHAR NOT NULL,
    action_type VARCHAR NOT NULL,
    judged      INTEGER NOT NULL,         -- proposals people decided one by one
    judged_right INTEGER NOT NULL,        -- of them, approved as proposed
    intercept   DOUBLE NOT NULL,
    slope       DOUBLE NOT NULL,
    fitted_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, action_type),
    CHECK (judged_right BETWEEN 0 AND judged),
    CHECK (slope >= 0)
);
