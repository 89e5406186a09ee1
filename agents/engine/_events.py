"""Events: what changed in the CRM mirror since the engine last looked.

The engine keeps a fingerprint of every account, contact and opportunity as of
its last look (ops.record_state). ``detect_changes`` compares the mirror with it
and records one event per created or changed record, plus stage and close-date
changes with old and new values, and newly scheduled meetings. It is a pure diff,
so it can run after every import, or at the start of every run to catch up; a
crash between an import and detection loses nothing.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from data.warehouse import scalar

__all__ = ["detect_changes", "record_schedule", "EVENT_KINDS"]

EVENT_KINDS = (
    "import", "record_created", "record_changed", "stage_changed",
    "close_date_changed", "meeting_booked", "schedule",
)  # fmt: skip

# md5 over the row minus lineage columns, so re-importing identical data is no change.
_CURRENT = """
CREATE OR REPLACE TEMP TABLE current_state AS
SELECT 'accounts' AS object_type, account_id AS record_id,
       md5(to_json(a)::VARCHAR) AS fingerprint, NULL::VARCHAR AS stage, NULL::DATE AS close_date
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.accounts) a
UNION ALL
SELECT 'contacts', contact_id, md5(to_json(c)::VARCHAR), NULL, NULL
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.contacts) c
UNION ALL
SELECT 'opportunities', opportunity_id, md5(to_json(o)::VARCHAR), o.stage, o.close_date
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.opportunities) o
UNION ALL
SELECT 'activities', activity_id, md5(to_json(m)::VARCHAR), NULL, NULL
FROM (SELECT * EXCLUDE (import_id) FROM crm.activities
      WHERE activity_type = 'meeting' AND status = 'scheduled') m
"""

_EVENTS = """
INSERT INTO ops.events
SELECT nextval('ops.event_seq'), kind, object_type, record_id, field, old_value, new_value,
       $now, $import_id, $now
FROM (
    SELECT CASE WHEN c.object_type = 'activities' THEN 'meeting_booked' ELSE 'record_created' END
             AS kind, c.object_type, c.record_id, NULL AS field, NULL::JSON AS old_value,
           NULL::JSON AS new_value
    FROM current_state c ANTI JOIN ops.record_state s USING (object_type, record_id)
    UNION ALL
    SELECT 'record_changed', c.object_type, c.record_id, NULL, NULL, NULL
    FROM current_state c JOIN ops.record_state s USING (object_type, record_id)
    WHERE c.fingerprint <> s.fingerprint AND c.object_type <> 'activities'
    UNION ALL
    SELECT 'stage_changed', 'opportunities', c.record_id, 'stage', to_json(s.stage),
           to_json(c.stage)
    FROM current_state c JOIN ops.record_state s USING (object_type, record_id)
    WHERE c.object_type = 'opportunities' AND c.stage IS DISTINCT FROM s.stage
    UNION ALL
    SELECT 'close_date_changed', 'opportunities', c.record_id, 'close_date',
           to_json(s.close_date), to_json(c.close_date)
    FROM current_state c JOIN ops.record_state s USING (object_type, record_id)
    WHERE c.object_type = 'opportunities' AND c.close_date IS DISTINCT FROM s.close_date
    ORDER BY 2, 3, 1
)
"""

_SAVE = """
INSERT INTO ops.record_state
SELECT object_type, record_id, fingerprint, stage, close_date, $import_id FROM current_state
ON CONFLICT (object_type, record_id) DO UPDATE SET
    fingerprint = excluded.fingerprint, stage = excluded.stage,
    close_date = excluded.close_date, import_id = excluded.import_id
"""
_CHANGED = """
SELECT count(*) FROM current_state c LEFT JOIN ops.record_state s USING (object_type, record_id)
WHERE s.fingerprint IS DISTINCT FROM c.fingerprint
"""
_LAST_IMPORT = "SELECT max(import_id) FROM ops.imports"
_IMPORT_EVENT = """
INSERT INTO ops.events (event_id, kind, occurred_at, import_id, created_at)
SELECT nextval('ops.event_seq'), 'import', $now, $import_id, $now
WHERE $import_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ops.events WHERE kind = 'import' AND import_id = $import_id)
"""


def detect_changes(con: duckdb.DuckDBPyConnection, *, now: dt.datetime) -> int:
    """Record events for everything that changed since the last look; returns how many.

    Runs inside the caller's transaction. Records deleted from the CRM are not
    reported (imports upsert; nothing deletes).
    """
    before = int(scalar(con, "SELECT coalesce(max(event_id), 0) FROM ops.events"))  # type: ignore[arg-type]
    import_id = scalar(con, _LAST_IMPORT)
    con.execute(_IMPORT_EVENT, {"now": now, "import_id": import_id})
    con.execute(_CURRENT)
    if int(scalar(con, _CHANGED)):  # type: ignore[arg-type]
        con.execute(_EVENTS, {"now": now, "import_id": import_id})
        con.execute(_SAVE, {"import_id": import_id})
    con.execute("DROP TABLE current_state")
    after = int(scalar(con, "SELECT coalesce(max(event_id), 0) FROM ops.events"))  # type: ignore[arg-type]
    return after - before


_SCHEDULE = """
INSERT INTO ops.events (event_id, kind, occurred_at, created_at)
VALUES (nextval('ops.event_seq'), 'schedule', $now, $now)
"""


def record_schedule(wh) -> None:  # noqa: ANN001 - Warehouse (no import cycle)
    """A tick of the clock: agents that run on a schedule have a pending event."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with wh.transaction() as con:
        con.execute(_SCHEDULE, {"now": now})
