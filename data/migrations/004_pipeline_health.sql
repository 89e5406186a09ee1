-- 004: pipeline health outputs.
-- risk_flags: one row per signal that fired on an open deal in a run (the digest, deal
-- prep's open risks). risk_scores: the learned risk of every open deal in a run (the
-- forecast's risk-adjusted probability). risk_backtests: per-signal precision and recall
-- from `revstack backtest` (the dashboard's Pipeline risk page).

CREATE TABLE ops.risk_flags (
    run_id         VARCHAR NOT NULL,
    opportunity_id VARCHAR NOT NULL,
    signal         VARCHAR NOT NULL,       -- gone_quiet | close_date_slipped | ... | model
    flagged_at     TIMESTAMP NOT NULL,     -- the data's as-of moment of the run
    score          DOUBLE,                 -- the model's calibrated risk of the deal, 0..1
    severity       DOUBLE,                 -- how far past the signal's threshold (ranks flags)
    reason         VARCHAR NOT NULL,       -- plain language, with the deal's figures
    evidence       JSON,                   -- the source rows: {"table": [row, ...], ...}
    PRIMARY KEY (run_id, opportunity_id, signal),
    CHECK (score IS NULL OR score BETWEEN 0 AND 1)
);

CREATE TABLE ops.risk_scores (
    run_id         VARCHAR NOT NULL,
    opportunity_id VARCHAR NOT NULL,
    scored_at      TIMESTAMP NOT NULL,
    risk           DOUBLE NOT NULL,        -- P(slips out of its quarter or lost within 4 weeks)
    reasons        JSON NOT NULL,          -- [{"code": "quiet", "points": 0.12}, ...]
    PRIMARY KEY (run_id, opportunity_id),
    CHECK (risk BETWEEN 0 AND 1)
);

CREATE SEQUENCE ops.risk_backtest_seq START 1;

CREATE TABLE ops.risk_backtests (
    backtest_id         INTEGER NOT NULL,
    measured_at         TIMESTAMP NOT NULL,
    population          VARCHAR NOT NULL,  -- live (deals not yet lost in reality) | all
    signal              VARCHAR NOT NULL,
    flagged             BIGINT NOT NULL,
    precision           DOUBLE,
    recall              DOUBLE,
    f1                  DOUBLE,
    precision_at_k      DOUBLE,
    recall_at_k         DOUBLE,
    pr_auc              DOUBLE,
    base_rate           DOUBLE,
    dollar_recall       DOUBLE,
    median_warning_days DOUBLE,
    setup               JSON NOT NULL,
    PRIMARY KEY (backtest_id, population, signal)
);
