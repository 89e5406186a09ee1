-- 014: the forecast's fitted deal models, kept for the next run in a new process. A
-- weekly run refitted its current block's bag of models every time (the in-process memo
-- dies with the process); now each run stores the models it used, keyed by a digest of
-- what each was fitted on, and the next run reads a model back when its training rows
-- hash to the same key (docs/forecast.md, Stored deal models). Numbers, lists of
-- numbers and strings only: nothing here is code or a pickled model, and what is read
-- is checked before the tree walk sees it. Each run's rows replace the last run's
-- (the contract's `replaces`).

-- One row per member of a bag: its own encodings and summaries, its calibration's points,
-- and what its trees share (start value, categorical columns and their categories).
CREATE TABLE ops.forecast_models (
    run_id            VARCHAR NOT NULL,
    model_key         VARCHAR NOT NULL,        -- sha256: training rows, refit day, bag, seed, versions
    fit_at            DATE NOT NULL,
    member            INTEGER NOT NULL,        -- 0..bag-1
    random_state      BIGINT NOT NULL,
    n_train           BIGINT NOT NULL,
    base_rate         DOUBLE NOT NULL,
    features          VARCHAR[] NOT NULL,      -- the columns the trees split on, in order
    code_field        VARCHAR[] NOT NULL,      -- category codes: field, value, code
    code_value        VARCHAR[] NOT NULL,
    code_index        INTEGER[] NOT NULL,
    stage             VARCHAR[] NOT NULL,      -- typical days in each stage
    stage_age         DOUBLE[] NOT NULL,
    booked_stage      VARCHAR[] NOT NULL,      -- share of the amount a win books, per stage
    booked_share      DOUBLE[] NOT NULL,
    has_trees         BOOLEAN NOT NULL,        -- false: one outcome only, the base rate
    n_features        INTEGER,
    categorical       BIGINT[],                -- categorical columns, encoder order
    categories        DOUBLE[][],              -- per categorical column, its sorted values
    baseline          DOUBLE,                  -- the trees' start value (log-odds)
    known_cat_bitsets UINTEGER[],              -- categorical features x 8, row by row
    f_idx_map         UINTEGER[],
    calibration_x     DOUBLE[],                -- the isotonic map's points (NULL: none)
    calibration_y     DOUBLE[],
    calibration_lo    DOUBLE,
    calibration_hi    DOUBLE,
    PRIMARY KEY (run_id, model_key, member)
);

-- One row per tree: its node table, column by column (scikit-learn's node record), and
-- its categorical splits' left-going bitsets (splits x 8, row by row).
CREATE TABLE ops.forecast_model_trees (
    run_id                  VARCHAR NOT NULL,
    model_key               VARCHAR NOT NULL,
    member                  INTEGER NOT NULL,
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
    cat_bitsets             UINTEGER[] NOT NULL,
    PRIMARY KEY (run_id, model_key, member, tree)
);
