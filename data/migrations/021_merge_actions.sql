-- 021: a merge of accounts and a merge of contacts are two actions (docs/engine.md,
-- "Batches").
--
-- crm_hygiene proposed both as merge_records. On the harder generated company the two
-- are not alike (pairwise precision of account duplicates 0.78, of contact duplicates
-- 0.997): in one batch a sample answered for neither, one calibration map and one
-- policy covered both, and account merges kept contact merges from ever graduating.
-- The contract now has merge_accounts and merge_contacts. Here the stored merges take
-- their kind's name, and their idempotency key is computed again as the engine computes
-- it (KEY_SQL in agents/engine/_route.py), so that the next run knows a merge already
-- proposed or decided and does not propose it again. A policy people set for
-- merge_records (a graduation, a demotion) is carried to both kinds, as it was meant for
-- both. Batches and continuous samples whose proposals are all of one kind take its
-- name; a batch that held both stays merge_records, since its sample answered for the
-- two together and that is its history. The audit log keeps its rows as written.

UPDATE ops.proposals
SET action_type = 'merge_' || split_part(record_id, ':', 1),
    idempotency_key = md5(concat_ws(chr(31), agent, 'merge_' || split_part(record_id, ':', 1),
                                    object_type, record_id, coalesce(field, chr(0)),
                                    coalesce(old_value::VARCHAR, chr(0)),
                                    coalesce(new_value::VARCHAR, chr(0))))
WHERE agent = 'crm_hygiene' AND action_type = 'merge_records'
  AND split_part(record_id, ':', 1) IN ('accounts', 'contacts');

INSERT INTO ops.policy
SELECT policy_id || '-' || kind, agent, 'merge_' || kind, tier, min_confidence, changed_by,
       changed_at, reason || ' (migration 021: merge_records split into merge_accounts and merge_contacts)',
       active
FROM ops.policy, (VALUES ('accounts'), ('contacts')) kinds(kind)
WHERE agent = 'crm_hygiene' AND action_type = 'merge_records';

UPDATE ops.policy SET active = false
WHERE agent = 'crm_hygiene' AND action_type = 'merge_records';

UPDATE ops.continuous_samples AS c SET action_type = p.action_type
FROM ops.proposals p
WHERE c.proposal_id = p.proposal_id AND c.action_type = 'merge_records'
  AND p.action_type IN ('merge_accounts', 'merge_contacts');

UPDATE ops.review_batches AS b SET action_type = one.action_type
FROM (
    SELECT m.batch_id, min(p.action_type) AS action_type
    FROM ops.review_batch_members m JOIN ops.proposals p USING (proposal_id)
    GROUP BY m.batch_id
    HAVING count(DISTINCT p.action_type) = 1
) one
WHERE b.batch_id = one.batch_id AND b.action_type = 'merge_records'
  AND one.action_type IN ('merge_accounts', 'merge_contacts');
