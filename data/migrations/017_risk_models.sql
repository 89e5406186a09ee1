-- 017: the pipeline health agent's fitted risk model, kept for the next run in a new
-- process. Each run refitted the model (and rebuilt every open deal's state at each of
-- the past 108 Mondays to train it) although its training window only slides a week;
-- now a run stores the model it used, with the stage benchmarks it was fitted with, and
-- later runs read it back until it is `refit_weeks` old or the history it was fitted on
-- changed (docs/pipeline_health.md, Stored model). Numbers, lists of numbers and strings
-- only: nothing here is code or a pickled model, and what is read is checked before the
-- tree walk sees it. Each run's rows replace the last run's (the contract's `replaces`).

-- One row: what the model was fitted on and when, its calibration's points, and the
-- benchmarks its features (and the rules, until the next refit) divide by.
CREATE TABLE ops.risk_models (
    run_id            VARCHAR NOT NULL,
    model_key         VARCHAR NOT NULL,        -- sha256: settings, definitions, versions
    inputs            VARCHAR NOT NULL,        -- sha256 of the history rows up to fit_as_of
    fit_as_of         TIMESTAMP NOT NULL,      -- the data's as-of when it was fitted
    training_moments  INTEGER NOT NULL,
    n_train           BIGINT NOT NULL,
    base_rate         DOUBLE NOT NULL,
    used              BOOLEAN[] NOT NULL,      -- per feature: did the trees see it
    reference         DOUBLE[] NOT NULL,       -- per feature: the healthy deal reasons swap in
    baseline          DOUBLE NOT NULL,         -- the trees' start value (log-odds)
    calibration_x     DOUBLE[] NOT NULL,       -- the isotonic map's points
    calibration_y     DOUBLE[] NOT NULL,
    calibration_lo    DOUBLE NOT NULL,
    calibration_hi    DOUBLE NOT NULL,
    bench_stage       VARCHAR[] NOT NULL,      -- per open stage: the learned benchmarks
    bench_quiet_days  DOUBLE[] NOT NULL,
    bench_stage_age   DOUBLE[] NOT NULL,       -- inf: too few won deals to learn from
    bench_won_deals   BIGINT NOT NULL,
    PRIMARY KEY (run_id)
);

-- One row per tree: its node table, column by column (scikit-learn's node record).
CREATE TABLE ops.risk_model_trees (
    run_id                  VARCHAR NOT NULL,
    tree                    INTEGER NOT NULL,
    node_value              DOUBLE[] NOT NULL,
    node_count              UINTEGER[] NOT NULL,
    node_feature_idx        BIGINT[] NOT NULL,
    node_num_threshold      DOUBLE[] NOT NULL,
    node_missing_go_to_left UTINYINT[] NOT NULL,
    node_left               UINTEGER[] NOT NULL,
    node_right              UINTEGER[] NOT NULL,
    node_gain               DOUBLE[] NOT NULL,
    node_depth              UINTEGER[] NOT NULL,
    node_is_leaf            UTINYINT[] NOT NULL,
    node_bin_threshold      UTINYINT[] NOT NULL,
    node_is_categorical     UTINYINT[] NOT NULL,
    node_bitset_idx         UINTEGER[] NOT NULL,
    PRIMARY KEY (run_id, tree)
);
