-- 010: why a person overrode an agent. An edit or a rejection may carry a reason code
-- beside its free-text note (ops.proposals.decision_note), so overrides can be counted by
-- action, field and reason, and read as the threshold or definition change they imply.

CREATE TABLE ops.override_reasons (
    proposal_id VARCHAR PRIMARY KEY,
    code        VARCHAR NOT NULL,
    decided_by  VARCHAR NOT NULL,
    decided_at  TIMESTAMP NOT NULL
);
