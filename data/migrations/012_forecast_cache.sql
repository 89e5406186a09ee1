-- 012: the forecast's cache of its rolling backtest. A scored snapshot whose period was
-- over when it was scored never changes unless the history before it is corrected, so
-- each run stores the state of those snapshots and the next run reuses it instead of
-- replaying them (docs/forecast.md, The backtest cache). Plain columns and lists only:
-- nothing here is code or a pickled model. Each run's rows replace the last run's
-- (the contract's `replaces`), so the tables hold one run.

-- What the cache was built from: the data's as-of, the first month scored, a digest of
-- every input up to the as-of, the agent's version, and each refit of the deal model.
CREATE TABLE ops.forecast_cache (
    run_id       VARCHAR NOT NULL,
    as_of        TIMESTAMP NOT NULL,
    eval_from    DATE NOT NULL,
    fingerprint  VARCHAR NOT NULL,             -- sha256 over inputs, params and version
    fit_at       DATE[] NOT NULL,              -- per refit: its day,
    train_rows   BIGINT[] NOT NULL,            -- the rows it trained on,
    rho_company  DOUBLE[] NOT NULL,            -- and its copula loadings
    rho_team     DOUBLE[] NOT NULL,
    PRIMARY KEY (run_id)
);

-- One row per scored snapshot whose period was over at the as-of: what later
-- snapshots learn from it (range PITs per segment kind, the per-team record the
-- combination learns from, the implied-variance spreads the copula loadings are
-- picked with) and the deal probabilities it scored.
CREATE TABLE ops.forecast_cache_snapshots (
    run_id            VARCHAR NOT NULL,
    period_kind       VARCHAR NOT NULL,
    period_start      DATE NOT NULL,
    period_offset     INTEGER NOT NULL,
    period_end        DATE NOT NULL,
    snapshot_at       TIMESTAMP NOT NULL,
    pit_company       DOUBLE[] NOT NULL,
    pit_region        DOUBLE[] NOT NULL,
    pit_team          DOUBLE[] NOT NULL,
    pit_rep           DOUBLE[] NOT NULL,
    team_won          DOUBLE[] NOT NULL,       -- per team (crm.users' teams, sorted)
    team_mean         DOUBLE[] NOT NULL,
    team_commit       DOUBLE[] NOT NULL,       -- NaN: nobody in the team had submitted
    team_actual       DOUBLE[] NOT NULL,
    spread            DOUBLE NOT NULL,         -- half the company total's 16-84% range
    variance_company  DOUBLE[] NOT NULL,       -- implied variance per copula loading
    error_company     DOUBLE NOT NULL,         -- squared error of the expected total
    variance_teams    DOUBLE[] NOT NULL,       -- teams x loadings, row by row
    error_teams       DOUBLE[] NOT NULL,
    opportunity_id    VARCHAR[] NOT NULL,      -- the open deals scored, with
    win_probability   DOUBLE[] NOT NULL,       -- their probability
    booked            DOUBLE[] NOT NULL,       -- and what a win books
    PRIMARY KEY (run_id, period_kind, period_start, period_offset)
);

-- The scored snapshots' ranges per segment, as the backtest reports them.
CREATE TABLE ops.forecast_cache_segments (
    run_id            VARCHAR NOT NULL,
    period_kind       VARCHAR NOT NULL,
    period_start      DATE NOT NULL,
    period_offset     INTEGER NOT NULL,
    segment_kind      VARCHAR NOT NULL,
    segment           VARCHAR NOT NULL,
    p10               DOUBLE NOT NULL,
    p50               DOUBLE NOT NULL,
    p90               DOUBLE NOT NULL,
    expected          DOUBLE NOT NULL,
    won_to_date       DOUBLE NOT NULL,
    pipeline_expected DOUBLE NOT NULL,
    new_expected      DOUBLE NOT NULL,
    actual            DOUBLE,
    crps              DOUBLE,
    pit_points        BIGINT NOT NULL,
    PRIMARY KEY (run_id, period_kind, period_start, period_offset, segment_kind, segment)
);
