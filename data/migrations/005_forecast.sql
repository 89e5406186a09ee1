-- 005: forecast outputs: ranges per snapshot, period and segment, and the deals that
-- drive them.

CREATE TABLE ops.forecasts (
    run_id        VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,
    period_kind   VARCHAR NOT NULL,        -- month | quarter
    period_start  DATE NOT NULL,
    segment_kind  VARCHAR NOT NULL,        -- company | region | team | rep
    segment       VARCHAR NOT NULL,
    p10           DOUBLE NOT NULL,
    p50           DOUBLE NOT NULL,
    p90           DOUBLE NOT NULL,
    expected      DOUBLE NOT NULL,
    won_to_date   DOUBLE NOT NULL,
    rep_commit    DOUBLE,
    PRIMARY KEY (run_id, period_kind, period_start, segment_kind, segment),
    CHECK (p10 <= p50 AND p50 <= p90)
);
