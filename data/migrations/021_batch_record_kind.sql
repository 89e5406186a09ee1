-- 021: a merge batch holds one kind of record (docs/engine.md, "Batches").
--
-- Merges are proposals on foundation.entity_map, whose record ids name the kind of
-- record merged ('account:...', 'contact:...'). Batched by object, field and band alone,
-- account merges shared a batch with contact merges although the two are judged apart
-- and come out differently right, so the batch's sample answered for neither and did
-- not settle. record_kind is that kind for merges and NULL for every other proposal,
-- whose object_type already names what they change.

ALTER TABLE ops.review_batches ADD COLUMN record_kind VARCHAR;

CREATE OR REPLACE VIEW ops.unbatched AS
SELECT p.*,
       CASE WHEN p.object_type = 'entity_map' THEN split_part(p.record_id, ':', 1) END
           AS record_kind
FROM ops.proposals p
WHERE p.status = 'pending' AND NOT p.shadow
  AND p.proposal_id NOT IN (
      SELECT m.proposal_id FROM ops.review_batch_members m
      JOIN ops.review_batches b USING (batch_id) WHERE b.status = 'open')
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.continuous_samples);
