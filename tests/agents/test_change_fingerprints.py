"""Change detection's fingerprints (DuckDB's row hash since migration 023) and the
upgrade from the md5 fingerprints stored before: the first look after it reports what
changed since the last look, and nothing else."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import polars as pl

from revstack.agents.engine import detect_changes
from revstack.data.warehouse import Warehouse, frame, release_all
from tests._schema import as_before

NOW = dt.datetime(2026, 10, 1, 6)

# What detect_changes stored before migration 023, for every record: the md5 of its
# row as JSON, without lineage columns.
_MD5_STATE = """
DELETE FROM ops.record_state;
INSERT INTO ops.record_state
SELECT 'accounts', account_id, md5(to_json(r)::VARCHAR), NULL, NULL, NULL
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.accounts) r
UNION ALL
SELECT 'contacts', contact_id, md5(to_json(r)::VARCHAR), NULL, NULL, NULL
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.contacts) r
UNION ALL
SELECT 'opportunities', opportunity_id, md5(to_json(r)::VARCHAR), r.stage, r.close_date, NULL
FROM (SELECT * EXCLUDE (import_id, updated_at) FROM crm.opportunities) r
UNION ALL
SELECT 'activities', activity_id, md5(to_json(r)::VARCHAR), NULL, NULL, NULL
FROM (SELECT * EXCLUDE (import_id) FROM crm.activities
      WHERE activity_type = 'meeting' AND status = 'scheduled') r;
"""
_EVENTS = """
SELECT kind, object_type, record_id FROM ops.events
WHERE kind <> 'import' AND created_at = $now ORDER BY ALL
"""


def _copy(small_company: Warehouse, path: Path) -> duckdb.DuckDBPyConnection:
    release_all()
    shutil.copy(small_company.path, path)
    return duckdb.connect(str(path))


def _plant(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Change one account's name and one deal's stage, after the last look; the ids."""
    account = con.execute("SELECT min(account_id) FROM crm.accounts").fetchall()[0][0]
    deal = con.execute(
        "SELECT min(opportunity_id) FROM crm.opportunities WHERE stage <> 'discovery'"
    ).fetchall()[0][0]
    con.execute(
        "UPDATE crm.accounts SET name = name || ' Holdings' WHERE account_id = ?", [account]
    )
    con.execute("UPDATE crm.opportunities SET stage = 'discovery' WHERE opportunity_id = ?", [deal])
    return {"accounts": account, "opportunities": deal}


def _look(path: Path) -> pl.DataFrame:
    wh = Warehouse(path)  # migrates a file left at 022
    with wh.transaction() as con:
        detect_changes(con, now=NOW)
    with wh.connect() as con:
        events = frame(con, _EVENTS, {"now": NOW})
    release_all()
    return events


def test_the_first_look_after_the_upgrade_reports_only_what_changed_since_the_last(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """A file whose last look stored md5 fingerprints (schema 022), then a planted
    change to one account and one deal: after migration 023 the look reports those two
    records (and the deal's stage), as a look with the md5 fingerprints would have, and
    not the other records it would find 'changed' if the stored md5s were kept."""
    path = tmp_path / "wh.duckdb"
    con = _copy(small_company, path)
    con.execute(_MD5_STATE)
    as_before(con, 23)  # a file at 022 has none of the later migrations' columns either
    planted = _plant(con)
    records = con.execute("SELECT count(*) FROM ops.record_state").fetchall()[0][0]
    con.close()

    events = _look(path)
    assert records > 1000
    assert events.sort("kind", "object_type", "record_id").rows() == sorted(
        [
            ("record_changed", "accounts", planted["accounts"]),
            ("record_changed", "opportunities", planted["opportunities"]),
            ("stage_changed", "opportunities", planted["opportunities"]),
        ]
    )
    # the unchanged records' fingerprints are the new ones, the changed ones' too now
    with Warehouse(path).connect() as c:
        md5_left = c.execute(
            "SELECT count(*) FROM ops.record_state WHERE length(fingerprint) = 32 "
            "AND object_type <> 'activities'"
        ).fetchall()[0][0]
    release_all()
    assert md5_left == 0


def test_without_the_migration_every_record_would_look_changed(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """The migration is what keeps the upgrade quiet: md5 fingerprints left as they were
    (its rows removed from the file before the look) differ from every new one."""
    path = tmp_path / "wh.duckdb"
    con = _copy(small_company, path)
    con.execute(_MD5_STATE)
    # a scheduled meeting is an event when it is booked, not when it changes
    n = con.execute(
        "SELECT count(*) FROM ops.record_state WHERE object_type <> 'activities'"
    ).fetchall()[0][0]
    con.close()  # schema 023 already: the md5s stay
    events = _look(path)
    assert n > 1000
    assert len(events.filter(pl.col("kind") == "record_changed")) == n


def test_a_look_after_a_look_finds_nothing_and_then_one_planted_change(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """With the new fingerprints: a second look on the same data records no event, and a
    changed account is the one record a third look reports."""
    path = tmp_path / "wh.duckdb"
    _copy(small_company, path).close()
    wh = Warehouse(path)
    with wh.transaction() as con:
        detect_changes(con, now=NOW - dt.timedelta(hours=2))
    with wh.transaction() as con:
        assert detect_changes(con, now=NOW - dt.timedelta(hours=1)) == 0
        account = con.execute("SELECT max(account_id) FROM crm.accounts").fetchall()[0][0]
        con.execute("UPDATE crm.accounts SET phone = '+1 555 0100' WHERE account_id = ?", [account])
    with wh.transaction() as con:
        detect_changes(con, now=NOW)
    with wh.connect() as con:
        events = frame(con, _EVENTS, {"now": NOW})
    release_all()
    assert events.rows() == [("record_changed", "accounts", account)]
