-- 002: the orchestration engine's tables: runs, events, proposals, the audit log,
-- field leases and policy overrides. Values in proposals and the audit log are JSON
-- so they keep their type and NULL (json null) stays apart from '' (json "").

CREATE SEQUENCE ops.event_seq START 1;
CREATE SEQUENCE ops.run_seq START 1;

-- Something happened that agents may react to.
CREATE TABLE ops.events (
    event_id    BIGINT PRIMARY KEY,
    kind        VARCHAR NOT NULL,      -- import | record_created | record_changed | stage_changed | close_date_changed | meeting_booked | schedule
    object_type VARCHAR,
    record_id   VARCHAR,
    field       VARCHAR,
    old_value   JSON,
    new_value   JSON,
    occurred_at TIMESTAMP NOT NULL,
    import_id   INTEGER,
    created_at  TIMESTAMP NOT NULL
);

-- Which agent has consumed which event (and in which run).
CREATE TABLE ops.event_consumption (
    event_id BIGINT NOT NULL,
    agent    VARCHAR NOT NULL,
    run_id   VARCHAR NOT NULL,
    PRIMARY KEY (event_id, agent)
);

CREATE TABLE ops.runs (
    run_id          VARCHAR PRIMARY KEY,
    agent           VARCHAR NOT NULL,
    agent_version   VARCHAR NOT NULL,
    contract_version VARCHAR NOT NULL,
    mode            VARCHAR NOT NULL,    -- live | shadow
    trigger         VARCHAR NOT NULL,    -- events | schedule | manual
    status          VARCHAR NOT NULL,    -- succeeded | failed
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP NOT NULL,
    events          INTEGER NOT NULL,
    proposals       INTEGER NOT NULL,
    applied         INTEGER NOT NULL,
    queued          INTEGER NOT NULL,
    blocked         INTEGER NOT NULL,
    error           VARCHAR,
    metadata        JSON
);

CREATE TABLE ops.proposals (
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
    idempotency_key VARCHAR NOT NULL UNIQUE,
    created_at      TIMESTAMP NOT NULL,
    decided_at      TIMESTAMP,
    decided_by      VARCHAR,
    decision_note   VARCHAR,
    final_value     JSON,                -- what was written (differs from new_value on an edit)
    CHECK (confidence BETWEEN 0 AND 1),
    CHECK (tier IN (1, 2, 3))
);

-- Append-only, hash-chained record of everything the stack did.
CREATE TABLE ops.audit_log (
    seq         BIGINT PRIMARY KEY,
    logged_at   TIMESTAMP NOT NULL,
    actor       VARCHAR NOT NULL,        -- agent name or person
    actor_kind  VARCHAR NOT NULL,        -- agent | person | system
    action      VARCHAR NOT NULL,        -- read | propose | apply | approve | edit | reject | block | stale | task | shadow | rollback | policy | lease | error
    object_type VARCHAR,
    record_id   VARCHAR,
    field       VARCHAR,
    before      JSON,
    after       JSON,
    proposal_id VARCHAR,
    run_id      VARCHAR,
    detail      JSON,
    prev_hash   VARCHAR NOT NULL,
    hash        VARCHAR NOT NULL
);

-- A trigger body must be a statement; inserting error(...) aborts the whole change.
CREATE TABLE ops.audit_log_guard (never INTEGER);
CREATE TRIGGER audit_log_no_update AFTER UPDATE ON ops.audit_log FOR EACH STATEMENT
    INSERT INTO ops.audit_log_guard SELECT error('ops.audit_log is append-only: updates are refused');
CREATE TRIGGER audit_log_no_delete AFTER DELETE ON ops.audit_log FOR EACH STATEMENT
    INSERT INTO ops.audit_log_guard SELECT error('ops.audit_log is append-only: deletes are refused');

-- A field of a record held by one proposal until it is decided. Released leases
-- are marked, never deleted (DELETE can lose a concurrent update: docs/design.md,
-- The silent lost update), and re-taken with an upsert.
CREATE TABLE ops.field_leases (
    object_type VARCHAR NOT NULL,
    record_id   VARCHAR NOT NULL,
    field       VARCHAR NOT NULL,
    agent       VARCHAR NOT NULL,
    proposal_id VARCHAR NOT NULL,
    acquired_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    PRIMARY KEY (object_type, record_id, field)
);

-- People who may look at, decide on, or administer the stack.
CREATE TABLE ops.people (
    name     VARCHAR PRIMARY KEY,
    role     VARCHAR NOT NULL,         -- viewer | reviewer | admin
    added_by VARCHAR NOT NULL,
    added_at TIMESTAMP NOT NULL,
    CHECK (role IN ('viewer', 'reviewer', 'admin'))
);

-- Per record and field, a fingerprint of the value at the last import, so the next
-- import can say what changed (events).
CREATE TABLE ops.record_state (
    object_type VARCHAR NOT NULL,
    record_id   VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    stage       VARCHAR,
    close_date  DATE,
    import_id   INTEGER,
    PRIMARY KEY (object_type, record_id)
);

-- Tier and threshold overrides (trust-ramp graduations), each made by a named person.
CREATE TABLE ops.policy (
    policy_id      VARCHAR PRIMARY KEY,
    agent          VARCHAR NOT NULL,
    action_type    VARCHAR NOT NULL,
    tier           INTEGER,
    min_confidence DOUBLE,
    changed_by     VARCHAR NOT NULL,
    changed_at     TIMESTAMP NOT NULL,
    reason         VARCHAR NOT NULL,
    active         BOOLEAN NOT NULL,
    CHECK (tier IS NULL OR tier IN (1, 2, 3)),
    CHECK (min_confidence IS NULL OR min_confidence BETWEEN 0 AND 1)
);

-- Agent modes as set by people (shadow | live); absent = the contract's default.
CREATE TABLE ops.agent_modes (
    agent      VARCHAR PRIMARY KEY,
    mode       VARCHAR NOT NULL,
    changed_by VARCHAR NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
