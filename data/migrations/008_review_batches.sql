-- 008: review at scale (docs/engine.md, "Batches").
--
-- A batch is the pending tier-2 proposals of one kind (agent, action, object, field and
-- confidence band) at the moment it opens; its members are frozen then. draw_order is a
-- seeded random permutation of the members and the first sample_size of them are the
-- sample a reviewer decides card by card. Extending the sample takes the next ones in
-- that order, so a sample is always a simple random sample of the batch. Once the
-- sample is decided whole, an admin decides the rest in one act: the batch row keeps the
-- decision and the sample's evidence, and every audit row it wrote names the batch, so
-- it rolls back as one unit.

CREATE SEQUENCE ops.review_batch_seq START 1;

CREATE TABLE ops.review_batches (
    batch_id      VARCHAR PRIMARY KEY,
    agent         VARCHAR NOT NULL,
    action_type   VARCHAR NOT NULL,
    object_type   VARCHAR NOT NULL,
    field         VARCHAR,                -- NULL for output-only actions
    band          VARCHAR NOT NULL,       -- the members' confidence band, e.g. '0.90-0.95'
    size          INTEGER NOT NULL,
    sample_size   INTEGER NOT NULL,
    bar           DOUBLE NOT NULL,        -- the error rate the sample must rule out
    confidence    DOUBLE NOT NULL,
    seed          BIGINT NOT NULL,
    opened_at     TIMESTAMP NOT NULL,
    opened_by     VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,       -- open | approved | rejected
    decided_at    TIMESTAMP,
    decided_by    VARCHAR,
    decision_note VARCHAR,
    evidence      JSON,                   -- the sample's evidence when the rest was decided
    CHECK (sample_size BETWEEN 0 AND size),
    CHECK (bar > 0 AND bar < 1 AND confidence > 0 AND confidence < 1),
    CHECK (status IN ('open', 'approved', 'rejected'))
);

CREATE TABLE ops.review_batch_members (
    batch_id    VARCHAR NOT NULL,
    proposal_id VARCHAR NOT NULL,
    draw_order  INTEGER NOT NULL,         -- 1 = drawn first; in the sample while <= sample_size
    PRIMARY KEY (batch_id, proposal_id)
);

-- Continuous sampling after graduation (Dodge's CSP-1 in its sampling phase): a tier-1
-- action that a policy graduated from tier 2 still sends a share of its proposals to a
-- reviewer before they apply. A proposal chosen so has a row here; a reviewer's edit
-- or rejection of one demotes the action back to tier 2 in the same transaction.
CREATE TABLE ops.continuous_samples (
    proposal_id VARCHAR PRIMARY KEY,
    agent       VARCHAR NOT NULL,
    action_type VARCHAR NOT NULL,
    policy_id   VARCHAR NOT NULL,         -- the graduation the sample checks
    share       DOUBLE NOT NULL,          -- the share of the action's tier-1 proposals sampled
    sampled_at  TIMESTAMP NOT NULL
);

-- The proposals a batch act decided: a batch's members outside its sample that were
-- decided at the moment the batch was. They were not judged one by one (their evidence
-- is the sample), so no measure of people's judgements counts them.
CREATE VIEW ops.batch_acts AS
SELECT p.proposal_id, b.batch_id
FROM ops.review_batch_members m
JOIN ops.review_batches b USING (batch_id)
JOIN ops.proposals p USING (proposal_id)
WHERE m.draw_order > b.sample_size AND p.decided_at = b.decided_at;

-- The waiting proposals a new batch would take: pending, not shadow, in no open batch,
-- and not a continuous sample (those are reviewed one by one). One definition for the
-- engine that opens batches and for the count of what clearing the queue costs.
CREATE VIEW ops.unbatched AS
SELECT p.* FROM ops.proposals p
WHERE p.status = 'pending' AND NOT p.shadow
  AND p.proposal_id NOT IN (
      SELECT m.proposal_id FROM ops.review_batch_members m
      JOIN ops.review_batches b USING (batch_id) WHERE b.status = 'open')
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.continuous_samples);
