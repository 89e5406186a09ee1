-- 024: a batch counts the looks its sample gets (docs/engine.md, "Batches").
--
-- A sample that neither shows the batch below the bar nor above it is extended and
-- looked at again. Testing every look at the same 95% let chance pass a batch at the
-- bar far more often than 5%, so look j is now tested at 1 - 0.05 / 2^j, and the engine
-- needs to know which look a sample is at. A batch opened before this migration is at
-- its first look plus one for every extension its audit rows record (the engine wrote a
-- batch_sample row for each), so an open batch that was extended before keeps counting
-- from where it is; nothing else about it changes.

ALTER TABLE ops.review_batches ADD COLUMN looks INTEGER DEFAULT 1;

UPDATE ops.review_batches AS b
SET looks = 1 + (SELECT count(*) FROM ops.audit_log a
                 WHERE a.action = 'batch_sample' AND a.run_id = b.batch_id);
