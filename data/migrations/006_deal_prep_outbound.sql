-- 006: deal prep briefings and outbound drafts.

CREATE TABLE ops.briefings (
    run_id         VARCHAR NOT NULL,
    briefing_id    VARCHAR PRIMARY KEY,
    opportunity_id VARCHAR NOT NULL,
    meeting_id     VARCHAR,                -- the activity the briefing prepares (NULL: on demand)
    generated_at   TIMESTAMP NOT NULL,
    markdown       VARCHAR NOT NULL,
    html           VARCHAR NOT NULL,
    citations      JSON NOT NULL           -- every statement's source rows
);

CREATE TABLE ops.drafts (
    run_id      VARCHAR NOT NULL,
    draft_id    VARCHAR PRIMARY KEY,
    contact_id  VARCHAR NOT NULL,
    sequence_step INTEGER NOT NULL,
    subject     VARCHAR NOT NULL,
    body        VARCHAR NOT NULL,
    sources     JSON NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    UNIQUE (contact_id, sequence_step)
);
