"""The audit log is append-only and its hash chain names the first tampered row."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from agents.engine import AuditEntry, append, to_json, verify
from data.warehouse import Warehouse


def _entries(n: int, start: int = 0) -> list[AuditEntry]:
    return [
        AuditEntry(
            actor="crm_hygiene",
            actor_kind="agent",
            action="apply",
            object_type="accounts",
            record_id=f"A{i}",
            field="industry",
            before=to_json(None if i % 3 == 0 else ""),
            after=to_json({"v": i, "ok": True}),
            run_id="run-1",
        )
        for i in range(start, start + n)
    ]


def test_values_keep_type_and_null_differs_from_empty() -> None:
    assert to_json(None) == "null"
    assert to_json("") == '""'
    assert to_json(5) == "5"
    assert to_json("5") == '"5"'
    assert to_json(dt.date(2026, 1, 2)) == '"2026-01-02"'


def test_chain_verifies_across_batches(wh: Warehouse) -> None:
    with wh.transaction() as con:
        assert append(con, _entries(250)) == 250
    with wh.transaction() as con:
        append(con, _entries(10, start=250))
    with wh.connect() as con:
        report = verify(con, chunk=64)  # small chunks cross chunk borders
        stored = con.execute("SELECT before FROM ops.audit_log WHERE seq IN (1, 2) ORDER BY seq")
        assert [r[0] for r in stored.fetchall()] == ["null", '""']
    assert report.ok and report.rows == 260


def test_update_and_delete_are_refused(wh: Warehouse) -> None:
    with wh.transaction() as con:
        append(con, _entries(3))
    with wh.connect() as con:
        with pytest.raises(duckdb.Error, match="append-only"):
            con.execute("UPDATE ops.audit_log SET actor = 'mallory' WHERE seq = 2")
        with pytest.raises(duckdb.Error, match="append-only"):
            con.execute("DELETE FROM ops.audit_log WHERE seq = 3")
        assert con.execute("SELECT count(*), min(actor) FROM ops.audit_log").fetchone() == (
            3,
            "crm_hygiene",
        )


def test_tampering_is_detected_at_the_first_bad_row(wh: Warehouse) -> None:
    with wh.transaction() as con:
        append(con, _entries(20))
    # Someone bypasses the triggers by rebuilding the table with one value changed.
    with wh.connect() as con:
        con.execute("CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log")
        con.execute("DROP TABLE ops.audit_log")
        con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")
        con.execute("UPDATE ops.audit_log SET after = '\"forged\"' WHERE seq = 7")
        report = verify(con)
    assert not report.ok
    assert report.first_bad_seq == 7
    assert "content" in (report.problem or "")


def test_a_removed_row_is_named(wh: Warehouse) -> None:
    with wh.transaction() as con:
        append(con, _entries(5))
    with wh.connect() as con:
        con.execute("CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log WHERE seq <> 4")
        con.execute("DROP TABLE ops.audit_log")
        con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, 4)
