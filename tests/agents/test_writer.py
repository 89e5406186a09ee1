"""The one writer: idempotency without a unique index, and the audit chain's head.

Migration 007 dropped the UNIQUE index on ops.proposals.idempotency_key and added
ops.audit_head. These tests race real writers to show that a key still lands once,
that the chain cannot fork, that the head catches a log cut short, and that a
warehouse written before 007 upgrades with its log and proposals intact.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import polars as pl
import pytest

import revstack.agents.engine._run as run_module  # noqa: TID251 - races a step inside a run
from revstack.agents.engine import (
    PROPOSAL_INPUT,
    Agent,
    AgentResult,
    AuditEntry,
    Context,
    append,
    run_agents,
    verify,
)
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.agents._workload import SPEC, seed_accounts
from tests.agents.test_audit_log import _digest, _legacy_rows, _rebuild, _sha
from tests.agents.test_crash_and_concurrency import _assert_consistent
from tests.conftest import ROOT

_KEYS = """
SELECT count(*) AS proposals, count(DISTINCT idempotency_key) AS keys FROM ops.proposals
"""


def _keys(wh: Warehouse) -> tuple[int, int]:
    with wh.connect() as con:
        row = frame(con, _KEYS).row(0)
    return int(row[0]), int(row[1])


class _Quiet(Agent):
    name = "bumper"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        return AgentResult(pl.DataFrame(schema=PROPOSAL_INPUT))


def test_a_run_racing_another_with_the_same_proposals_records_them_once(wh: Warehouse) -> None:
    """T1 routes (its snapshot sees no proposals), T2 records the same ones and commits,
    then T1 writes. In shadow mode with no events left, nothing else the two runs write
    can collide (no CRM row, no lease, no consumption): only moving the audit chain's
    head makes T1 conflict, re-run, and drop every key T2 recorded."""
    seed_accounts(wh, 50)
    run_agents(wh, [replace(SPEC, factory=_Quiet)], only="bumper")  # consumes the events
    real_route, raced, attempts = run_module.route, [], []

    def route_then_let_another_run_commit(*args, **kwargs):
        attempts.append(1)
        if not raced:
            raced.append(1)
            other = threading.Thread(
                target=run_agents,
                args=(Warehouse(wh.path), [SPEC]),
                kwargs={"only": "bumper", "shadow": True},
            )
            other.start()
            other.join(60)
            assert not other.is_alive()
        return real_route(*args, **kwargs)

    run_module.route = route_then_let_another_run_commit
    try:
        [mine] = run_agents(wh, [SPEC], only="bumper", shadow=True)
    finally:
        run_module.route = real_route
    assert mine.status == "succeeded"
    assert len(attempts) == 3  # mine, the other run's, and mine again after the conflict
    assert mine.counts.get("shadow", 0) == 0  # on the re-run every key was known
    proposals, keys = _keys(wh)
    assert proposals == keys == 100  # 50 employee bumps + 50 industries, each once
    _assert_consistent(wh)


def test_eight_threads_running_one_agent_at_once_record_each_key_once(wh: Warehouse) -> None:
    seed_accounts(wh, 300)
    barrier, errors, results = threading.Barrier(8), [], []

    def run() -> None:
        barrier.wait()
        try:
            results.extend(run_agents(Warehouse(wh.path), [SPEC], only="bumper"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert [r.status for r in results] == ["succeeded"] * 8
    proposals, keys = _keys(wh)
    assert proposals == keys >= 600
    _assert_consistent(wh)


def test_only_the_run_commit_inserts_proposals() -> None:
    """Uniqueness of the key is kept by that one writer; a second path must earn a test."""
    inserts = []
    for path in [
        *(ROOT / "agents").rglob("*.py"),
        *(ROOT / "revstack").rglob("*.py"),
        *(ROOT / "metrics").rglob("*.py"),
        *(ROOT / "data").rglob("*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.search(r"INSERT\s+INTO\s+ops\.proposals\b", node.value, re.I)
            ):
                inserts.append(path.relative_to(ROOT).as_posix())
    assert inserts == ["agents/engine/_run.py"]


def test_two_appenders_at_once_cannot_both_commit(wh: Warehouse) -> None:
    entry = [AuditEntry(actor="t", actor_kind="system", action="policy")]
    with wh.connect() as t1, wh.connect() as t2:
        t1.execute("BEGIN TRANSACTION")
        t1.execute("SELECT * FROM ops.audit_head").fetchall()  # t1's snapshot starts
        t2.execute("BEGIN TRANSACTION")
        append(t2, entry)
        t2.execute("COMMIT")
        with pytest.raises(duckdb.TransactionException, match="[Cc]onflict"):
            append(t1, entry)
        t1.execute("ROLLBACK")
    with wh.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.audit_log").fetchone() == (1,)
        assert verify(con).ok


def test_units_that_collided_take_turns_instead_of_colliding_again(wh: Warehouse) -> None:
    """Every write unit appends to the chain's one head row, so units of one process in
    flight together conflict. Retried freely, the losers kept colliding with each other:
    twenty reviewer threads in one process made 2.2 decisions/s with p95 20 s, fifty 1.7/s
    with p95 42 s (docs/scale.md). Eight units here all read the head before any writes,
    so seven lose their first attempt; each then has two more (the first to retry may
    still meet the winner's commit), and every one commits."""
    from revstack.agents.engine._units import in_transaction  # noqa: TID251 - attempts per unit

    barrier, errors = threading.Barrier(8), []
    first = threading.local()

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SELECT * FROM ops.audit_head").fetchall()  # the snapshot starts
        if not getattr(first, "done", False):
            first.done = True
            barrier.wait(30)  # all eight have their snapshot before anyone writes
        time.sleep(0.05)  # a unit's work, long enough for the retries to overlap
        append(con, [AuditEntry(actor="t", actor_kind="system", action="policy")])

    def unit() -> None:
        try:
            in_transaction(wh, work, attempts=3)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=unit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with wh.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.audit_log").fetchone() == (8,)
        assert verify(con).ok


def _blocks(wh: Warehouse) -> None:
    for n in (3, 4, 2):  # blocks 1-3, 4-7, 8-9
        with wh.transaction() as con:
            append(
                con,
                [
                    AuditEntry(
                        actor="t", actor_kind="system", action="policy", detail=f'{{"n":{i}}}'
                    )
                    for i in range(n)
                ],
            )


@pytest.mark.parametrize(("keep", "seq"), [("seq <= 7", 8), ("seq <= 3", 4)])
def test_whole_blocks_cut_off_the_end_are_named(wh: Warehouse, keep: str, seq: int) -> None:
    _blocks(wh)
    with wh.connect() as con:
        _rebuild(con, keep=keep)
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, seq)
    assert "missing" in (report.problem or "") and "ends at row 9" in (report.problem or "")


def test_a_row_added_past_the_head_is_named(wh: Warehouse) -> None:
    _blocks(wh)
    with wh.connect() as con:
        _rebuild(con)
        tail = con.execute("SELECT hash FROM ops.audit_log WHERE seq = 9").fetchone()[0]
        row = (
            10,
            "2026-11-01T09:00:00.000000",
            "mallory",
            "person",
            "approve",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
        con.execute(
            "INSERT INTO ops.audit_log VALUES ($1, $2::TIMESTAMP, $3, $4, $5, $6, $7, $8, $9, "
            "$10, $11, $12, $13, $14, $15, NULL)",
            [*row, tail, _sha(tail + _digest((*row, None, None, None)))],
        )  # a well-formed block of one, chained to the end, but the head was not moved
        report = verify(con)
    assert (report.ok, report.first_bad_seq) == (False, 10)
    assert "not in the chain" in (report.problem or "")


def test_a_warehouse_from_before_007_upgrades_with_its_log_and_proposals(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    Warehouse(path)._migrate(con, upto=6)  # the file revstack left behind before 007
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_head'"
    ).fetchone() == (0,)
    _legacy_rows(con, 6, head=False)  # six rows chained row by row, as the old engine wrote them
    con.execute(
        "INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type, "
        "record_id, field, old_value, new_value, confidence, reason, tier, tier_reason, status, "
        "shadow, idempotency_key, created_at) VALUES ('R000001-1', 'R000001', 'bumper', "
        "'set_employees', 'accounts', 'A1', 'employees', '1', '2', 0.9, 'bump', 1, 't', "
        "'applied', false, $key, now())",
        {"key": "k1"},
    )
    con.close()

    wh = Warehouse(path)
    assert wh.schema_version() >= 7
    with wh.connect() as con:
        head = con.execute("SELECT seq, hash FROM ops.audit_head").fetchall()
        tail = con.execute("SELECT seq, hash FROM ops.audit_log ORDER BY seq DESC LIMIT 1")
        assert head == tail.fetchall() and head[0][0] == 6
        assert verify(con).ok
        kept = frame(con, "SELECT proposal_id, idempotency_key, status FROM ops.proposals")
    assert kept.rows() == [("R000001-1", "k1", "applied")]
    seed_accounts(wh, 20)
    for _ in range(2):  # the second run re-proposes the pending industries: dropped as known
        run_agents(wh, [SPEC], only="bumper")
    release_all()
    proposals, keys = _keys(wh)
    assert proposals == keys
    with wh.connect() as con:
        report = verify(con)
        head = con.execute("SELECT seq FROM ops.audit_head").fetchone()[0]
        last = con.execute("SELECT max(seq) FROM ops.audit_log").fetchone()[0]
    assert report.ok and head == last == report.rows > 6
    assert proposals == 1 + 20 + 20 + 20  # the old one, 2 x 20 employee bumps, 20 industries


_CASES = [  # object, record, field, old, new: applied, stale, gone, typed, composite key
    ("accounts", "A1", "employees", "1", "7"),
    ("accounts", "A2", "employees", "99", "7"),
    ("accounts", "nope", "industry", "null", '"Retail"'),
    ("accounts", "A3", "annual_revenue", "null", "2500000"),
    ("entity_map", "accounts:A1", "entity_id", '"E1"', '"E9"'),
]


def test_a_decision_applies_exactly_as_a_run_would(wh: Warehouse) -> None:
    """apply_one (decisions, bound values) and apply_batch (runs, a frame) agree on every
    outcome and leave the same CRM behind."""
    from revstack.agents.engine._apply import apply_batch, apply_one  # noqa: TID251 - white-box
    from revstack.agents.engine._units import now_utc  # noqa: TID251

    seed_accounts(wh, 5)
    with wh.connect() as con:
        con.execute(
            "INSERT INTO foundation.entity_map VALUES ('accounts', 'A1', 'E1', 0.9, 'x', now())"
        )
    results, states = [], []
    for one in (True, False):
        with wh.connect() as con:
            con.execute("BEGIN TRANSACTION")
            if one:
                got = [
                    apply_one(
                        con,
                        object_type=o,
                        record_id=r,
                        field=f,
                        old_value=a,
                        new_value=b,
                        now=now_utc(),
                    )
                    for o, r, f, a, b in _CASES
                ]
            else:
                batch = pl.DataFrame(
                    [(str(i), *c) for i, c in enumerate(_CASES)],
                    orient="row",
                    schema=[
                        "proposal_id",
                        "object_type",
                        "record_id",
                        "field",
                        "old_value",
                        "new_value",
                    ],
                )
                out = apply_batch(con, batch, now=now_utc()).sort(pl.col("proposal_id").cast(int))
                got = [(r["applied"], r["before"], r["after"]) for r in out.iter_rows(named=True)]
            results.append(got)
            states.append(
                con.execute(
                    "SELECT account_id, employees, industry, annual_revenue FROM crm.accounts "
                    "UNION ALL SELECT record_id, NULL, entity_id, NULL FROM foundation.entity_map "
                    "ORDER BY 1, 3"
                ).fetchall()
            )
            con.execute("ROLLBACK")
    assert results[0] == results[1]
    assert [r[0] for r in results[0]] == [True, False, False, True, True]
    assert results[0][3] == (True, "null", "2500000.0")  # as stored: a DOUBLE
    assert results[0][1][1] == "2"  # a stale one reports what the record holds
    assert states[0] == states[1]


class _Industry(Agent):
    """Proposes one industry for account A1 (tier 2: a reviewer decides, the field leased)."""

    name = "bumper"
    version = "1.0"

    def __init__(self, value: str) -> None:
        self.value = value

    def run(self, ctx: Context) -> AgentResult:
        row = {
            "action_type": "set_industry",
            "object_type": "accounts",
            "record_id": "A1",
            "field": "industry",
            "old_value": "null",
            "new_value": f'"{self.value}"',
            "confidence": 0.7,
            "evidence": "{}",
            "reason": "guess",
        }
        return AgentResult(pl.DataFrame([row], schema=PROPOSAL_INPUT))


def test_a_released_lease_is_taken_again_by_the_next_proposal(wh: Warehouse) -> None:
    from revstack.agents.engine import add_person, decide

    seed_accounts(wh, 3)
    add_person(wh, "rev", "admin", by="rev")

    def propose(value: str) -> dict[str, int]:
        [r] = run_agents(wh, [replace(SPEC, factory=lambda: _Industry(value))], only="bumper")
        return r.counts

    def leases() -> list[tuple]:
        with wh.connect() as con:
            return con.execute(
                "SELECT proposal_id, released_at IS NULL FROM ops.field_leases "
                "WHERE record_id = 'A1' AND field = 'industry'"
            ).fetchall()

    assert propose("Retail")["pending"] == 1
    [(first, held)] = leases()
    assert held
    assert propose("Banking")["deferred"] == 1  # held: not recorded
    decide(wh, first, approve=False, by="rev", note="no")
    assert leases() == [(first, False)]  # released by marking, the row kept
    assert propose("Banking")["pending"] == 1
    [(second, held)] = leases()  # the same row, taken again
    assert held and second != first
    _assert_consistent(wh)
