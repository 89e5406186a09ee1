-- 009: a feedback channel. Anyone signed in, viewers too, can flag an agent's output
-- where they see it (a risk flag, a briefing, a forecast, an applied change, a draft)
-- with a note. A flag moves open -> acknowledged -> addressed; each step records who
-- and when, and addressing it says what changed. Rows are updated with plain guarded
-- UPDATEs (docs/design.md, The silent lost update), never deleted.

CREATE SEQUENCE ops.feedback_seq START 1;

CREATE TABLE ops.feedback (
    feedback_id     VARCHAR PRIMARY KEY,
    agent           VARCHAR NOT NULL,
    output_kind     VARCHAR NOT NULL,
    output_ref      VARCHAR NOT NULL,    -- what was flagged: a flag, briefing, run or proposal id
    note            VARCHAR NOT NULL,
    flagged_by      VARCHAR NOT NULL,
    flagged_at      TIMESTAMP NOT NULL,
    status          VARCHAR NOT NULL,
    acknowledged_by VARCHAR,
    acknowledged_at TIMESTAMP,
    addressed_by    VARCHAR,
    addressed_at    TIMESTAMP,
    resolution      VARCHAR,             -- what changed, said by whoever addressed it
    CHECK (status IN ('open', 'acknowledged', 'addressed')),
    CHECK (output_kind IN ('risk_flag', 'briefing', 'forecast', 'change', 'draft', 'proposal'))
);
