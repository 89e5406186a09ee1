-- 005: forecast outputs. Each run of the forecast agent stores its live snapshot (ranges
-- per period and segment, the deals that drive them) and the rolling backtest it
-- calibrated on (the agent and every baseline at past snapshot points, with the
-- actual), so history is kept run by run.

CREATE TABLE ops.forecasts (
    run_id            VARCHAR NOT NULL,
    snapshot_date     DATE NOT NULL,
    snapshot_at       TIMESTAMP NOT NULL,
    period_kind       VARCHAR NOT NULL,        -- month | quarter
    period_start      DATE NOT NULL,
    period_offset     INTEGER NOT NULL,        -- days into the period at the snapshot
    segment_kind      VARCHAR NOT NULL,        -- company | region | team | rep
    segment           VARCHAR NOT NULL,
    p10               DOUBLE NOT NULL,
    p50               DOUBLE NOT NULL,
    p90               DOUBLE NOT NULL,
    expected          DOUBLE NOT NULL,
    won_to_date       DOUBLE NOT NULL,
    pipeline_expected DOUBLE NOT NULL,         -- from deals open at the snapshot
    new_expected      DOUBLE NOT NULL,         -- from deals not created yet
    rep_commit        DOUBLE,                  -- the reps' latest commit (sum over the segment)
    PRIMARY KEY (run_id, period_kind, period_start, segment_kind, segment),
    CHECK (p10 <= p50 AND p50 <= p90)
);

-- The deals that drive each live range: their share of the company total's variance.
CREATE TABLE ops.forecast_drivers (
    run_id          VARCHAR NOT NULL,
    period_kind     VARCHAR NOT NULL,
    period_start    DATE NOT NULL,
    rank            INTEGER NOT NULL,
    opportunity_id  VARCHAR NOT NULL,
    owner_id        VARCHAR,
    stage           VARCHAR,
    amount          DOUBLE,
    close_date      DATE,
    win_probability DOUBLE NOT NULL,           -- of being won before the period ends
    expected        DOUBLE NOT NULL,
    variance_share  DOUBLE NOT NULL,
    PRIMARY KEY (run_id, period_kind, period_start, rank)
);

-- The rolling backtest: one row per method, past snapshot and segment (company, region,
-- team). Baselines are points (p10 = p50 = p90 = their value).
CREATE TABLE ops.forecast_backtest (
    run_id        VARCHAR NOT NULL,
    method        VARCHAR NOT NULL,            -- agent | rep_commit | stage_weighted_crm | stage_weighted_history | seasonal_naive
    period_kind   VARCHAR NOT NULL,
    period_start  DATE NOT NULL,
    period_offset INTEGER NOT NULL,
    snapshot_at   TIMESTAMP NOT NULL,
    segment_kind  VARCHAR NOT NULL,
    segment       VARCHAR NOT NULL,
    p10           DOUBLE NOT NULL,
    p50           DOUBLE NOT NULL,
    p90           DOUBLE NOT NULL,
    expected      DOUBLE NOT NULL,
    crps          DOUBLE,
    actual        DOUBLE,                      -- won in the period (CRM), once it is over
    PRIMARY KEY (run_id, method, period_kind, period_start, period_offset, segment_kind, segment)
);

-- Reliability of the deal probabilities in the backtest, per period kind and bin.
CREATE TABLE ops.forecast_reliability (
    run_id      VARCHAR NOT NULL,
    period_kind VARCHAR NOT NULL,
    bin         INTEGER NOT NULL,
    lower       DOUBLE NOT NULL,
    predicted   DOUBLE NOT NULL,
    observed    DOUBLE NOT NULL,
    deals       BIGINT NOT NULL,
    PRIMARY KEY (run_id, period_kind, bin)
);
