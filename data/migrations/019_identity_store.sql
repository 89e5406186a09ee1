-- 019: the hygiene agent's identity resolution, kept for the next run in a new process.
-- Each weekly run resolved every account and contact again (prepare, block, compare a
-- million random pairs, EM, cluster), though a week changes a few records in a hundred.
-- Now each run stores, per object type, the model's numbers, each record's fingerprint
-- of the compared fields with its link component and cluster, and the scored candidate
-- pairs that could link; the next run blocks only the records new or changed since
-- against everyone, scores with the stored model, and groups again only the components
-- they touch. It
-- resolves in full (the model estimated again) on a schedule, when enough records moved,
-- when people's answers or the settings changed (docs/hygiene.md, Weekly runs). Numbers
-- and strings only; what is read is checked. Each run's rows replace the last run's (the
-- contract's `replaces`).

-- One row per object type: the model and when it was estimated.
CREATE TABLE ops.identity_models (
    run_id              VARCHAR NOT NULL,
    object_type         VARCHAR NOT NULL,    -- accounts | contacts
    model_key           VARCHAR NOT NULL,    -- sha256: agent version, settings, definitions
    signature           VARCHAR NOT NULL,    -- sha256: fields, comparisons, blocking, polars
    labels_digest       VARCHAR NOT NULL,    -- sha256 of the answers the model learnt from
    estimated_as_of     TIMESTAMP NOT NULL,  -- the data's as-of when it was estimated
    estimated_by_run    VARCHAR,             -- NULL: this row's run
    records_at_estimate BIGINT NOT NULL,
    moved_since         BIGINT NOT NULL,     -- records new, changed or removed since, run by run
    method              VARCHAR NOT NULL,    -- model | rules (the model could not learn)
    warnings            VARCHAR[] NOT NULL,
    kinds               VARCHAR[] NOT NULL,  -- the comparisons, in order
    n_levels            INTEGER[] NOT NULL,
    m                   DOUBLE[][] NOT NULL, -- per comparison, per level
    u                   DOUBLE[][] NOT NULL,
    prior               DOUBLE NOT NULL,     -- lambda: P(two random records are one entity)
    groups              INTEGER[][] NOT NULL, -- comparisons whose disagreements count once
    shift_kind          VARCHAR[] NOT NULL,  -- kinds of pair people answered about
    shift               DOUBLE[] NOT NULL,   -- and each one's shift in log2-odds
    PRIMARY KEY (run_id, object_type)
);

-- One row per record: what its compared fields hash to, its link component (smallest
-- record id) and cluster, and its mean probability with the rest of its group.
CREATE TABLE ops.identity_records (
    run_id      VARCHAR NOT NULL,
    object_type VARCHAR NOT NULL,
    record_id   VARCHAR NOT NULL,
    fingerprint UBIGINT NOT NULL,
    component   VARCHAR NOT NULL,
    cluster_id  VARCHAR NOT NULL,
    linkage     DOUBLE
);

-- One row per scored candidate pair of probability 0.001 or more (the rest link nothing
-- and change no confidence): the rules that found it, its level per comparison (NULL: a
-- comparison this object type does not have; -1: a side missing).
CREATE TABLE ops.identity_pairs (
    run_id       VARCHAR NOT NULL,
    object_type  VARCHAR NOT NULL,
    left_id      VARCHAR NOT NULL,
    right_id     VARCHAR NOT NULL,
    rules        BIGINT NOT NULL,
    g_name       TINYINT,
    g_person     TINYINT,
    g_address    TINYINT,
    g_city       TINYINT,
    g_zip        TINYINT,
    g_phone      TINYINT,
    g_email      TINYINT,
    g_domain     TINYINT,
    match_weight DOUBLE NOT NULL,
    probability  DOUBLE NOT NULL
);
