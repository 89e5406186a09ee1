-- 023: change detection fingerprints a record with DuckDB's hash of its row instead of
-- the md5 of its JSON (docs/engine.md, Events): a tenth of the CPU, at every run's first
-- look (430k accounts, contacts, deals and meetings on mid: 1.25 s -> 0.14 s).
--
-- Without this step the first look after the upgrade would find every fingerprint
-- different and report every record changed. Here each stored md5 that still matches
-- its record (the record has not changed since the engine last looked) becomes the new
-- fingerprint of the same row. A record changed since the last look keeps its md5,
-- which no new fingerprint equals, so the next look reports it changed, as it would
-- have. The sources are the ones agents/engine/_events.py fingerprints.

-- An upsert, not an UPDATE: on mid's 426k rows DuckDB's UPDATE took 17 s of CPU, the
-- upsert 0.6 s.
INSERT INTO ops.record_state
SELECT s.object_type, s.record_id, n.fingerprint, s.stage, s.close_date, s.import_id
FROM ops.record_state s JOIN (
    SELECT 'accounts' AS object_type, account_id AS record_id,
           md5(to_json(r)::VARCHAR) AS md5, hash(r)::VARCHAR AS fingerprint
    FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.accounts) r
    UNION ALL
    SELECT 'contacts', contact_id, md5(to_json(r)::VARCHAR), hash(r)::VARCHAR
    FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.contacts) r
    UNION ALL
    SELECT 'opportunities', opportunity_id, md5(to_json(r)::VARCHAR), hash(r)::VARCHAR
    FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.opportunities) r
    UNION ALL
    SELECT 'activities', activity_id, md5(to_json(r)::VARCHAR), hash(r)::VARCHAR
    FROM (SELECT * EXCLUDE (import_id) FROM crm.activities
          WHERE activity_type = 'meeting' AND status = 'scheduled') r
) n ON s.object_type = n.object_type AND s.record_id = n.record_id AND s.fingerprint = n.md5
ON CONFLICT (object_type, record_id) DO UPDATE SET fingerprint = excluded.fingerprint;
