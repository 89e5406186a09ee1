-- 006: deal prep briefings and outbound drafts, and what people do with them.
-- Briefings and drafts are written by the engine from the agents' outputs (run_id set
-- by it). Opens, edits and sequencer outcomes are appended by the engine on a
-- person's behalf: append-only, never updated, so two sessions cannot lose each
-- other's marks (docs/design.md, The silent lost update).

CREATE TABLE ops.briefings (
    run_id          VARCHAR NOT NULL,
    briefing_id     VARCHAR PRIMARY KEY,   -- from the meeting and the content: same data, same id
    opportunity_id  VARCHAR NOT NULL,
    account_id      VARCHAR,
    meeting_id      VARCHAR,               -- the activity the briefing prepares (NULL: on demand)
    meeting_at      TIMESTAMP,
    data_as_of      TIMESTAMP NOT NULL,    -- the data's "today" the briefing was built from
    generated_at    TIMESTAMP NOT NULL,    -- when it was built (wall clock)
    digest          VARCHAR NOT NULL,      -- md5 of the statements and their citations
    statements      INTEGER NOT NULL,
    cited           INTEGER NOT NULL,      -- statements with at least one citation
    warnings        INTEGER NOT NULL,      -- hygiene issues called out at the top
    prose           VARCHAR NOT NULL,      -- deterministic | llm:<model>
    markdown        VARCHAR NOT NULL,
    html            VARCHAR NOT NULL,
    citations       JSON NOT NULL,         -- [{section, text, cites: [{table, key, field, value}]}]
    CHECK (cited <= statements)
);

CREATE TABLE ops.briefing_opens (
    briefing_id VARCHAR NOT NULL,
    opened_by   VARCHAR NOT NULL,
    opened_at   TIMESTAMP NOT NULL,
    channel     VARCHAR NOT NULL           -- cli | dashboard
);

CREATE TABLE ops.drafts (
    run_id        VARCHAR NOT NULL,
    draft_id      VARCHAR PRIMARY KEY,
    contact_id    VARCHAR NOT NULL,
    account_id    VARCHAR,
    recipient     VARCHAR NOT NULL,        -- the person, across duplicate records (entity or email)
    email         VARCHAR NOT NULL,
    owner_id      VARCHAR,                 -- who sends it, once a person approves it
    sequence      VARCHAR NOT NULL,        -- prospecting | expansion
    sequence_step INTEGER NOT NULL,
    subject       VARCHAR NOT NULL,
    body          VARCHAR NOT NULL,
    signals       JSON NOT NULL,           -- what the draft is grounded in (news, history)
    sources       JSON NOT NULL,           -- every personal fact: {fact, value, table, key, field}
    data_as_of    TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    UNIQUE (contact_id, sequence, sequence_step),
    UNIQUE (recipient, sequence, sequence_step),
    CHECK (sequence_step BETWEEN 1 AND 3)
);

-- A candidate a guardrail stopped before it became a draft, once per (candidate, guardrail).
CREATE TABLE ops.draft_blocks (
    run_id        VARCHAR NOT NULL,
    contact_id    VARCHAR NOT NULL,
    sequence      VARCHAR NOT NULL,
    sequence_step INTEGER NOT NULL,
    guardrail     VARCHAR NOT NULL,        -- placeholder | untraceable | do_not_contact | bad_email | duplicate
    detail        VARCHAR NOT NULL,
    blocked_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (contact_id, sequence, sequence_step, guardrail)
);

-- A reviewer's rewrite of a draft before approving it; the latest one is exported.
CREATE TABLE ops.draft_edits (
    draft_id  VARCHAR NOT NULL,
    edited_by VARCHAR NOT NULL,
    edited_at TIMESTAMP NOT NULL,
    subject   VARCHAR NOT NULL,
    body      VARCHAR NOT NULL
);

-- What the sequencer reported back about an exported draft (for reply rates).
CREATE TABLE ops.draft_outcomes (
    draft_id    VARCHAR NOT NULL,
    event       VARCHAR NOT NULL,          -- sent | replied | bounced | opted_out
    occurred_at TIMESTAMP NOT NULL,
    source      VARCHAR NOT NULL,          -- the file it came from
    recorded_at TIMESTAMP NOT NULL,
    CHECK (event IN ('sent', 'replied', 'bounced', 'opted_out'))
);
