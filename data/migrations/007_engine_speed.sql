-- 007: the engine's writer, made cheaper without weakening what it guarantees.
--
-- 1. ops.audit_head: the audit chain's last seq and chain value, in one row. Every
--    append reads it (a point read instead of ordering the whole log) and moves it
--    in the same transaction. Two transactions that append at once both update this
--    one row, so one of them fails with a write conflict and re-runs from its reads:
--    whatever else such transactions write (a run's proposals, a decision) is
--    serialised by it. `revstack log verify` checks that the head names the log's
--    last row, so cutting the end off the log is caught too.
-- 2. ops.proposals without the UNIQUE index on idempotency_key: building that index
--    for a run's keys (random md5 text) is a large share of storing its proposals
--    (docs/engine.md, Tiers). The key stays unique because the only writer of
--    proposals (agents/engine/_run.py) drops every key already recorded inside its
--    transaction, and that transaction appends to the audit log, so two of them cannot
--    both commit (1.). Tests race writers.

CREATE TABLE ops.audit_head (
    one  BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),   -- at most one row
    seq  BIGINT NOT NULL,                                -- the log's last seq (0: empty)
    hash VARCHAR NOT NULL                                -- the chain value after it
);
INSERT INTO ops.audit_head
SELECT true, coalesce(max(seq), 0), coalesce(arg_max(hash, seq), repeat('0', 64))
FROM ops.audit_log;

CREATE TABLE ops.proposals_007 (
    proposal_id     VARCHAR PRIMARY KEY,
    run_id          VARCHAR NOT NULL,
    agent           VARCHAR NOT NULL,
    action_type     VARCHAR NOT NULL,
    object_type     VARCHAR NOT NULL,
    record_id       VARCHAR NOT NULL,
    field           VARCHAR,             -- NULL for output-only actions (flags, briefings)
    old_value       JSON,
    new_value       JSON,
    confidence      DOUBLE NOT NULL,
    evidence        JSON,
    reason          VARCHAR NOT NULL,
    tier            INTEGER NOT NULL,
    tier_reason     VARCHAR NOT NULL,    -- why it landed in this tier
    status          VARCHAR NOT NULL,    -- applied | pending | approved | edited | rejected | stale | blocked | task | shadow | superseded | rolled_back
    shadow          BOOLEAN NOT NULL,
    idempotency_key VARCHAR NOT NULL,    -- unique: kept so by the engine's one writer (above)
    created_at      TIMESTAMP NOT NULL,
    decided_at      TIMESTAMP,
    decided_by      VARCHAR,
    decision_note   VARCHAR,
    final_value     JSON,                -- what was written (differs from new_value on an edit)
    CHECK (confidence BETWEEN 0 AND 1),
    CHECK (tier IN (1, 2, 3))
);
INSERT INTO ops.proposals_007 SELECT * FROM ops.proposals ORDER BY created_at, proposal_id;
DROP TABLE ops.proposals;
ALTER TABLE ops.proposals_007 RENAME TO proposals;
