-- 015: clerical review of identity pairs (docs/identity.md, Labels).
--
-- Each hygiene run keeps, per object type, the candidate pairs most worth a person's
-- answer: of each kind of pair (one level per comparison), the one nearest an even
-- chance. People mark pairs the same or different; the next run learns from every mark
-- (per kind of pair) and decides each marked pair as marked. A mark is a person's
-- decision: written by the engine with its audit row, never by an agent, and a later
-- mark of the same pair replaces it (the audit log keeps both).

CREATE TABLE ops.identity_review (
    run_id      VARCHAR NOT NULL,
    object_type VARCHAR NOT NULL,          -- accounts | contacts
    left_id     VARCHAR NOT NULL,
    right_id    VARCHAR NOT NULL,
    rank        INTEGER NOT NULL,          -- 1: the kind the matcher is least sure of
    probability DOUBLE NOT NULL,
    levels      VARCHAR NOT NULL,          -- JSON: per comparison, its level and weight
    PRIMARY KEY (run_id, object_type, left_id, right_id)
);

CREATE SEQUENCE ops.identity_label_seq START 1;

CREATE TABLE ops.identity_labels (
    label_id    BIGINT PRIMARY KEY,        -- order of marking: the pair's latest counts
    object_type VARCHAR NOT NULL,
    left_id     VARCHAR NOT NULL,          -- left_id < right_id
    right_id    VARCHAR NOT NULL,
    same        BOOLEAN NOT NULL,
    labelled_by VARCHAR NOT NULL,
    labelled_at TIMESTAMP NOT NULL,
    note        VARCHAR NOT NULL DEFAULT '',
    CHECK (left_id < right_id),
    CHECK (object_type IN ('accounts', 'contacts'))
);
