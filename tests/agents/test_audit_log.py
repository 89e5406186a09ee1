"""The audit log is append-only and its hash chain names the first tampered row."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pytest

from revstack.agents.engine import AuditEntry, append, to_json, verify
from revstack.data.warehouse import Warehouse


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


# The chain as docs/engine.md states it, recomputed here without the engine's SQL.
_FIELDS = (
    "actor",
    "actor_kind",
    "action",
    "object_type",
    "record_id",
    "field",
    "before",
    "after",
    "proposal_id",
    "run_id",
    "detail",
)
_ROWS = f"SELECT seq, strftime(logged_at, '%Y-%m-%dT%H:%M:%S.%f'), {', '.join(_FIELDS)}, os_user, prev_hash, hash FROM ops.audit_log ORDER BY seq"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(row: tuple) -> str:
    """A row's digest as documented: seq, time, every field (NUL for none), then the OS
    user where the row has one (rows written before it was recorded have none)."""
    seq, logged, *values, os_user = row[:-2]
    fields = [str(seq), logged, *(chr(0) if v is None else v for v in values)]
    return _sha(chr(31).join(fields + ([] if os_user is None else [os_user])))


def _rebuild(con: duckdb.DuckDBPyConnection, keep: str = "TRUE") -> None:
    """Bypass the append-only triggers the way a tamperer would: rebuild the table."""
    con.execute(f"CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log WHERE {keep}")
    con.execute("DROP TABLE ops.audit_log")
    con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")


def _legacy_rows(con: duckdb.DuckDBPyConnection, n: int, *, head: bool = True) -> None:
    """Rows as the row-by-row chain wrote them before blocks: hash = sha256(prev + digest)."""
    prev = "0" * 64
    for i in range(n):
        row = (
            i + 1,
            "2026-11-01T09:00:00.000000",
            "crm_hygiene",
            "agent",
            "apply",
            "accounts",
            f"L{i}",
            "industry",
            "null",
            to_json(f"v{i}"),
            None,
            "run-0",
            None,
        )
        h = _sha(prev + _digest((*row, None, None, None)))  # no OS user: written before 011
        con.execute(
            f"INSERT INTO ops.audit_log (seq, logged_at, {', '.join(_FIELDS)}, prev_hash, hash) "
            "VALUES ($1, $2::TIMESTAMP, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            [*row, prev, h],
        )
        prev = h
    if head:  # migration 007 seeds the chain head from rows written before it; do the same
        con.execute("UPDATE ops.audit_head SET seq = $n, hash = $h", {"n": n, "h": prev})


def _mixed_log(wh: Warehouse) -> None:
    """5 legacy rows, then blocks of 10, 1 and 8 rows."""
    with wh.transaction() as con:
        _legacy_rows(con, 5)
    for n, start in ((10, 0), (1, 10), (8, 11)):
        with wh.transaction() as con:
            append(con, _entries(n, start=start))


def test_blocks_chain_exactly_as_documented_and_legacy_rows_still_verify(wh: Warehouse) -> None:
    _mixed_log(wh)
    with wh.connect() as con:
        rows = con.execute(_ROWS).fetchall()
        assert verify(con, chunk=3) == verify(con) == type(verify(con))(True, 24)
    chain, blocks = "0" * 64, [(i, i + 1) for i in range(5)] + [(5, 15), (15, 16), (16, 24)]
    for first, end in blocks:
        block = rows[first:end]
        digests = [_digest(r) for r in block]
        assert {r[-2] for r in block} == {chain}  # every row stores the chain value before it
        assert [r[-1] for r in block[:-1]] == digests[:-1]  # the others store their digest
        chain = _sha(chain + "".join(digests))  # the last row stores the block digest
        assert block[-1][-1] == chain


@pytest.mark.slow
@pytest.mark.parametrize("seq", [1, 5, 6, 10, 15, 16, 17, 24])  # each end of each kind
def test_a_changed_row_is_named_wherever_it_is(wh: Warehouse, seq: int) -> None:
    _mixed_log(wh)
    with wh.connect() as con:
        _rebuild(con)
        con.execute("UPDATE ops.audit_log SET after = '\"forged\"' WHERE seq = $s", {"s": seq})
        report = verify(con, chunk=4)
    assert (report.ok, report.first_bad_seq, report.rows) == (False, seq, seq - 1)
    assert "content" in (report.problem or "")


@pytest.mark.parametrize("seq", [4, 6, 12, 15, 16, 24])
def test_a_removed_row_is_named_even_the_last_row_of_a_block(wh: Warehouse, seq: int) -> None:
    _mixed_log(wh)
    with wh.connect() as con:
        _rebuild(con, keep=f"seq <> {seq}")
        report = verify(con, chunk=5)
    assert (report.ok, report.first_bad_seq) == (False, seq)
    assert "missing" in (report.problem or "")


def test_a_row_changed_with_its_own_hash_breaks_its_block(wh: Warehouse) -> None:
    _mixed_log(wh)
    with wh.connect() as con:
        _rebuild(con)
        row = list(con.execute(_ROWS + " OFFSET 8 LIMIT 1").fetchone())  # seq 9, inside 6-15
        row[9] = '"forged"'  # after
        con.execute(
            "UPDATE ops.audit_log SET after = $a, hash = $h WHERE seq = 9",
            {"a": row[9], "h": _digest(tuple(row))},
        )
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, 15)
    assert "rows 6-15" in (report.problem or "")


@pytest.mark.parametrize(("seq", "moved_to"), [(3, "prev_hash"), (9, "hash"), (16, "prev_hash")])
def test_a_row_moved_to_another_chain_value_is_named(
    wh: Warehouse, seq: int, moved_to: str
) -> None:
    """A legacy row joined to the block before it, a block's row split off, a block of one merged."""
    _mixed_log(wh)
    with wh.connect() as con:
        _rebuild(con)
        before = con.execute(f"SELECT {moved_to} FROM ops.audit_log WHERE seq = $s - 1", {"s": seq})
        con.execute(
            "UPDATE ops.audit_log SET prev_hash = $p WHERE seq = $s",
            {"p": before.fetchone()[0], "s": seq},
        )
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, seq)


def _wipe(con: duckdb.DuckDBPyConnection) -> None:
    """What someone with DuckDB at hand can do: empty the log, triggers and all, and
    reset the head, so the chain that is left is whole."""
    con.execute("CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log WHERE false")
    con.execute("DROP TABLE ops.audit_log")
    con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")
    con.execute("UPDATE ops.audit_head SET seq = 0, hash = repeat('0', 64)")


def test_an_anchor_catches_a_log_cut_and_rebuilt_head_and_all(engine_wh: Warehouse) -> None:
    from revstack.agents.engine import anchor, decide

    decide(engine_wh, "p1", approve=True, by="rev")
    decide(engine_wh, "p2", approve=False, by="rev", note="wrong")
    with engine_wh.connect() as con:
        kept = anchor(con)
        assert verify(con, anchor=kept).ok and kept["seq"] > 0
        _wipe(con)
        bare, anchored = verify(con), verify(con, anchor=kept)
    # without an anchor the empty chain is whole, but the decisions it lost are not
    assert not bare.ok and "2 decided proposal(s) have no audit row" in (bare.problem or "")
    assert "p1 by rev" in (bare.problem or "")
    # with one, the cut itself is named
    assert not anchored.ok and anchored.first_bad_seq == 1
    assert f"before the anchored row {kept['seq']}" in (anchored.problem or "")


def test_an_anchor_catches_a_log_rewritten_to_the_same_length(engine_wh: Warehouse) -> None:
    from revstack.agents.engine import anchor

    with engine_wh.transaction() as con:
        append(con, _entries(10))
    with engine_wh.connect() as con:
        kept = anchor(con)
        n = kept["seq"]
        _wipe(con)
    with engine_wh.transaction() as con:  # a new history, as long as the old one
        append(con, _entries(n, start=100))
    with engine_wh.connect() as con:
        assert verify(con).ok  # a whole chain: only the anchor can tell it is another one
        report = verify(con, anchor=kept)
    assert not report.ok and report.first_bad_seq == n
    assert "not the row that was anchored" in (report.problem or "")


def test_log_anchor_and_verify_from_the_command_line(engine_wh: Warehouse, tmp_path: Path) -> None:
    import subprocess
    import sys

    from revstack.data.warehouse import release_all
    from tests.conftest import ROOT

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "revstack", *args, "--db", str(engine_wh.path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    release_all()
    kept = tmp_path / "anchor.json"
    assert run("log", "anchor", "--out", str(kept)).returncode == 0
    assert run("log", "verify", "--anchor", str(kept)).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = run("log", "verify", "--anchor", str(bad))
    assert refused.returncode == 2 and "not an anchor" in refused.stderr


def test_every_row_names_the_os_user_that_wrote_it_and_changing_it_breaks_the_chain(
    wh: Warehouse,
) -> None:
    import getpass

    with wh.transaction() as con:
        append(con, _entries(3))  # a few rows: bound lists
        append(con, _entries(100, start=3))  # many: a frame
    with wh.connect() as con:
        users = {u for (u,) in con.execute("SELECT DISTINCT os_user FROM ops.audit_log").fetchall()}
        assert users == {getpass.getuser()} and verify(con).ok
        _rebuild(con, "true")
        con.execute("UPDATE ops.audit_log SET os_user = 'someone_else' WHERE seq = 50")
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, 50)


def test_a_big_block_hashed_in_parts_chains_exactly_as_documented(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's block of many rows is hashed a part at a time (the block digest fed as it
    goes): each row still stores its own digest and the last the block digest over all of
    them, as one pass would, and verify agrees."""
    from revstack.agents.engine import _audit  # noqa: TID251 (the part size is private)

    monkeypatch.setattr(_audit, "_HASH_PART", 7)
    with wh.transaction() as con:
        append(con, _entries(3))
        append(con, _entries(200, start=3))  # more than a few: the frame path, 29 parts
    with wh.connect() as con:
        rows = con.execute(_ROWS).fetchall()
        assert verify(con) == type(verify(con))(True, 203)
    block, chain = rows[3:], rows[2][-1]
    digests = [_digest(r) for r in block]
    assert {r[-2] for r in block} == {chain}
    assert [r[-1] for r in block[:-1]] == digests[:-1]
    assert block[-1][-1] == _sha(chain + "".join(digests))


def test_a_check_since_a_checkpoint_rehashes_the_new_rows_and_agrees_with_a_whole_check(
    wh: Warehouse,
) -> None:
    with wh.transaction() as con:
        append(con, _entries(20))
    with wh.connect() as con:
        first = verify(con, checkpoint=True)
    with wh.transaction() as con:
        append(con, _entries(5, start=20))
    with wh.transaction() as con:
        append(con, _entries(1, start=25))
    with wh.connect() as con:
        since = verify(con, since=first, checkpoint=True, chunk=4)
        whole = verify(con, checkpoint=True)
    assert (first.ok, first.rows, first.rehashed_from) == (True, 20, 1)
    assert (since.ok, since.rows, since.rehashed_from) == (True, 26, 21)
    # the checkpoint it leaves is the one a whole check leaves
    assert (since.chain, since.checksum) == (whole.chain, whole.checksum)
    with wh.connect() as con:
        plain = verify(con)  # a report without a checkpoint cannot start a check
    with pytest.raises(ValueError, match="good report"), wh.connect() as con:
        verify(con, since=plain)


@pytest.mark.parametrize(
    ("change", "bad"),
    [
        ("UPDATE ops.audit_log SET after = '\"forged\"' WHERE seq = 23", 23),  # after it
        ("UPDATE ops.audit_log SET after = '\"forged\"' WHERE seq = 7", 7),  # before it
        ("UPDATE ops.audit_log SET actor = 'mallory' WHERE seq = 20", 20),  # its last row
        ("DELETE FROM ops.audit_log WHERE seq = 4", 4),  # a row removed before it
    ],
)
def test_tampering_is_found_by_a_check_since_a_checkpoint_as_by_a_whole_check(
    wh: Warehouse, change: str, bad: int
) -> None:
    with wh.transaction() as con:
        append(con, _entries(20))
    with wh.connect() as con:
        first = verify(con, checkpoint=True)
    with wh.transaction() as con:
        append(con, _entries(5, start=20))
    with wh.connect() as con:
        _rebuild(con)  # bypass the triggers as a tamperer would, then change it
        con.execute(change)
        since = verify(con, since=first)
        whole = verify(con)
    assert not since.ok
    assert since.first_bad_seq == bad
    assert (since.first_bad_seq, since.problem) == (whole.first_bad_seq, whole.problem)


def test_a_rewritten_log_whose_rows_all_hash_right_fails_the_check_since_a_checkpoint(
    wh: Warehouse,
) -> None:
    """A log rebuilt from the start with every hash recomputed passes a whole check
    without an anchor; against the checkpoint its rows are not the rows re-hashed."""
    with wh.transaction() as con:
        append(con, _entries(10))
    with wh.connect() as con:
        first = verify(con, checkpoint=True)
        con.execute("CREATE TABLE ops.tmp AS SELECT * FROM ops.audit_log LIMIT 0")
        con.execute("DROP TABLE ops.audit_log")
        con.execute("ALTER TABLE ops.tmp RENAME TO audit_log")
        con.execute("UPDATE ops.audit_head SET seq = 0, hash = $g", {"g": "0" * 64})
        append(con, _entries(10, start=100))  # ten other rows, properly chained
        assert verify(con).ok  # only an anchor or a checkpoint can tell
        since = verify(con, since=first)
    assert not since.ok and since.first_bad_seq is None
    assert "rewritten" in (since.problem or "")
