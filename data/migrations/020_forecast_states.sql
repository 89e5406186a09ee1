-- 020: the forecast's as-of deal rows and its snapshots of periods still open, kept for
-- the next run. Every run rebuilt every
-- snapshot's open deals from history (`agents.features.deal_states`), most of a weekly
-- run; a deal's state at a moment reads only rows dated at or before it, which the
-- backtest cache's fingerprint covers, so each run stores the rows of its moments and
-- the next run computes only its new moments, and again the deals whose contacts changed
-- since (docs/forecast.md, Stored deal rows). Each run's rows replace the last run's
-- (the contract's `replaces`), so the tables hold one run.

-- What the rows were built from: the data's as-of, a digest of what the cache's
-- fingerprint leaves out (roles without a date, the query), and the contacts counted as
-- gone then (inactive or bounced, record not changed since).
CREATE TABLE ops.forecast_states_head (
    run_id      VARCHAR NOT NULL,
    as_of       TIMESTAMP NOT NULL,
    guard       VARCHAR NOT NULL,              -- sha256, see agents/forecast/_states.py
    departed    VARCHAR[] NOT NULL,            -- contact ids,
    departed_at TIMESTAMP[] NOT NULL,          -- and their records' updated_at
    PRIMARY KEY (run_id)
);

-- One row per snapshot moment and deal open then, as `deal_states` gives it.
CREATE TABLE ops.forecast_states (
    run_id                   VARCHAR NOT NULL,
    as_of                    TIMESTAMP NOT NULL,
    opportunity_id           VARCHAR NOT NULL,
    owner_id                 VARCHAR,
    created_at               TIMESTAMP,
    stage                    VARCHAR,
    amount                   DOUBLE,
    close_date               DATE,
    forecast_category        VARCHAR,
    probability              DOUBLE,
    is_closed                BOOLEAN,
    is_won                   BOOLEAN,
    days_open                BIGINT,
    stage_entered_at         TIMESTAMP,
    days_in_stage            BIGINT,
    close_date_pushes        BIGINT,
    pushes_out_of_quarter    BIGINT,
    last_push_at             TIMESTAMP,
    days_since_push          BIGINT,
    first_close_date         DATE,
    close_date_moved_days    BIGINT,
    days_to_close            BIGINT,
    first_amount             DOUBLE,
    amount_changes           BIGINT,
    amount_decreases         BIGINT,
    last_amount_change_at    TIMESTAMP,
    amount_ratio             DOUBLE,
    last_two_way_at          TIMESTAMP,
    days_since_two_way       BIGINT,
    last_activity_at         TIMESTAMP,
    days_since_activity      BIGINT,
    two_way_30d              BIGINT,
    outbound_30d             BIGINT,
    outbound_since_two_way   BIGINT,
    engaged_contacts         BIGINT,
    engaged_30d              BIGINT,
    contacts_on_deal         BIGINT,
    has_champion             BOOLEAN,
    has_economic_buyer       BOOLEAN,
    champion_left            BOOLEAN,
    economic_buyer_left      BOOLEAN,
    champion_last_reply_at   TIMESTAMP
);

-- One row per past snapshot of a period still open at the as-of (the backtest cache
-- holds those of periods over): its ranges per segment, and what they were drawn from:
-- the deal model (by its key), the copula loadings, and per deal its owner, its row's
-- digest as the model reads it, its probability and booked value. While the period stays open the
-- next run draws it again only if one of those changed (docs/forecast.md, The backtest
-- cache).
CREATE TABLE ops.forecast_cache_open (
    run_id            VARCHAR NOT NULL,
    period_kind       VARCHAR NOT NULL,
    period_start      DATE NOT NULL,
    period_offset     INTEGER NOT NULL,
    snapshot_at       TIMESTAMP NOT NULL,
    model_key         VARCHAR NOT NULL,
    rho_company       DOUBLE NOT NULL,
    rho_team          DOUBLE NOT NULL,
    opportunity_id    VARCHAR[] NOT NULL,      -- the deals, in the draw's order
    owner_id          VARCHAR[] NOT NULL,      -- an entry is NULL: no known owner
    row_hash          UBIGINT[] NOT NULL,
    win_probability   DOUBLE[] NOT NULL,
    booked            DOUBLE[] NOT NULL,
    segment_kind      VARCHAR[] NOT NULL,      -- its ranges, one entry per segment
    segment           VARCHAR[] NOT NULL,
    p10               DOUBLE[] NOT NULL,
    p50               DOUBLE[] NOT NULL,
    p90               DOUBLE[] NOT NULL,
    expected          DOUBLE[] NOT NULL,
    won_to_date       DOUBLE[] NOT NULL,
    pipeline_expected DOUBLE[] NOT NULL,
    new_expected      DOUBLE[] NOT NULL,
    PRIMARY KEY (run_id, period_kind, period_start, period_offset)
);
