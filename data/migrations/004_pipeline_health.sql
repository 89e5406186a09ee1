-- 004: pipeline health outputs: one row per risk flag raised on an open deal.

CREATE TABLE ops.risk_flags (
    run_id         VARCHAR NOT NULL,
    opportunity_id VARCHAR NOT NULL,
    signal         VARCHAR NOT NULL,       -- gone_quiet | close_date_slipped | ... | model
    flagged_at     TIMESTAMP NOT NULL,     -- the data's as-of moment of the run
    score          DOUBLE,                 -- the model's calibrated risk (model rows)
    reason         VARCHAR NOT NULL,
    evidence       JSON,
    PRIMARY KEY (run_id, opportunity_id, signal)
);
