"""The hard part: killed processes, racing writers, and the silent lost update."""

from __future__ import annotations

import ast
import multiprocessing as mp
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from revstack.agents.engine import add_person, decide, verify
from revstack.agents.engine._apply import apply_batch  # noqa: TID251 - white-box: the writer itself
from revstack.agents.engine._units import now_utc  # noqa: TID251
from revstack.data.warehouse import Warehouse, frame
from tests.agents._workload import run_once, seed_accounts
from tests.conftest import ROOT

_CONSISTENCY = {
    # every succeeded run's row count matches the proposals it recorded
    "run counts": """
        SELECT r.run_id FROM ops.runs r LEFT JOIN ops.proposals p USING (run_id)
        WHERE r.status = 'succeeded' GROUP BY r.run_id, r.proposals HAVING count(p.proposal_id) <> r.proposals
    """,
    # no proposal without its run
    "orphan proposals": "SELECT proposal_id FROM ops.proposals WHERE run_id NOT IN (SELECT run_id FROM ops.runs)",
    # every applied proposal has exactly one apply row in the log
    "applied without log": """
        SELECT p.proposal_id FROM ops.proposals p
        LEFT JOIN ops.audit_log l ON l.proposal_id = p.proposal_id AND l.action = 'apply'
        WHERE p.status = 'applied' GROUP BY p.proposal_id HAVING count(l.seq) <> 1
    """,
    # every pending proposal on a field holds its lease
    "pending without lease": """
        SELECT p.proposal_id FROM ops.proposals p ANTI JOIN ops.field_leases l
          ON l.proposal_id = p.proposal_id AND l.released_at IS NULL
        WHERE p.status = 'pending' AND p.field IS NOT NULL
    """,
    # the CRM holds what the last apply wrote (nothing else writes in this test)
    "crm differs from log": """
        SELECT a.account_id FROM crm.accounts a JOIN (
            SELECT record_id, arg_max(after, seq) AS last_after FROM ops.audit_log
            WHERE action = 'apply' AND field = 'employees' GROUP BY record_id
        ) l ON l.record_id = a.account_id
        WHERE to_json(a.employees)::VARCHAR <> l.last_after
    """,
}


def _assert_consistent(wh: Warehouse) -> None:
    with wh.connect() as con:
        for name, sql in _CONSISTENCY.items():
            bad = frame(con, sql)
            assert bad.is_empty(), f"{name}: {bad.head(5)}"
        assert verify(con).ok


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_runs_whole_and_a_rerun_completes(wh: Warehouse) -> None:
    seed_accounts(wh, 20_000)
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.agents._workload", str(wh.path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += child.returncode == -signal.SIGKILL
        _assert_consistent(wh)
    assert kills == 12
    run_once(str(wh.path))  # picks up whatever the killed runs left pending
    _assert_consistent(wh)
    with wh.connect() as con:
        runs = con.execute("SELECT count(*) FROM ops.runs WHERE status = 'succeeded'").fetchall()[
            0
        ][0]
        unconsumed = con.execute(
            "SELECT count(*) FROM ops.events e WHERE kind IN ('record_created', 'record_changed') "
            "AND NOT EXISTS (SELECT 1 FROM ops.event_consumption c WHERE c.event_id = e.event_id)"
        ).fetchall()[0][0]
    assert runs >= 1
    assert unconsumed == 0


def _approver(path: str, stop_at: float, out) -> None:  # child process: a reviewer clicking
    wh = Warehouse(path, busy_timeout=120)
    decided = errors = 0
    # Each child works until the window closes and it has done at least one unit (a busy
    # machine can spend the whole window starting processes), within a hard limit.
    while time.time() < stop_at or (decided == 0 and time.time() < stop_at + 90):
        with wh.connect() as con:
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' LIMIT 20"
                ).fetchall()
            ]
        for pid in ids:
            try:
                decided += decide(wh, pid, approve=True, by="rev").changed
            except Exception:
                errors += 1
        time.sleep(0.01)
    out.put((decided, errors))


def _dashboard(path: str, stop_at: float, out) -> None:  # child process: the app's page reads
    from revstack.agents.engine import audit_rows, list_proposals
    from revstack.metrics.engine import action_outcomes, run_stats

    wh = Warehouse(path, busy_timeout=120)
    renders = errors = 0
    while time.time() < stop_at or (renders == 0 and time.time() < stop_at + 90):
        try:
            with wh.connect() as con:
                action_outcomes(con)
                run_stats(con)
            wh.read(list_proposals)
            wh.read(audit_rows, limit=100)
            renders += 1
        except Exception:
            errors += 1
    out.put((renders, errors))


def _runner(path: str, stop_at: float, out) -> None:  # child process: CLI-style agent runs
    errors = runs = 0
    while time.time() < stop_at or (runs == 0 and time.time() < stop_at + 90):
        try:
            run_once(path)
            runs += 1
        except Exception:
            errors += 1
    out.put((runs, errors))


@pytest.mark.slow
def test_agent_runs_a_reviewer_and_the_dashboard_work_side_by_side(wh: Warehouse) -> None:
    seed_accounts(wh, 2_000)
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    run_once(str(wh.path))  # a first batch of pending industry proposals
    ctx = mp.get_context("spawn")
    out_a, out_r, out_d = ctx.Queue(), ctx.Queue(), ctx.Queue()
    stop_at = time.time() + 6
    procs = [
        ctx.Process(target=_approver, args=(str(wh.path), stop_at, out_a)),
        ctx.Process(target=_runner, args=(str(wh.path), stop_at, out_r)),
        ctx.Process(target=_dashboard, args=(str(wh.path), stop_at, out_d)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    decided, approve_errors = out_a.get(timeout=5)
    runs, run_errors = out_r.get(timeout=5)
    renders, render_errors = out_d.get(timeout=5)
    assert (approve_errors, run_errors, render_errors) == (0, 0, 0)
    assert decided > 0 and runs > 0 and renders > 0
    _assert_consistent(wh)


def test_a_write_after_a_concurrent_commit_raises_instead_of_overwriting(wh: Warehouse) -> None:
    """The silent lost update (docs/design.md): T1 reads, T2 commits, T1 writes."""
    seed_accounts(wh, 3)
    proposal = pl.DataFrame(
        {
            "proposal_id": ["x"],
            "object_type": ["accounts"],
            "record_id": ["A1"],
            "field": ["employees"],
            "old_value": ["1"],
            "new_value": ["100"],
        }
    )
    with wh.connect() as t1, wh.connect() as t2:
        t1.execute("BEGIN TRANSACTION")
        assert t1.execute(
            "SELECT employees FROM crm.accounts WHERE account_id = 'A1'"
        ).fetchall() == [(1,)]
        t2.execute(
            "UPDATE crm.accounts SET employees = 50 WHERE account_id = 'A1'"
        )  # a person, committed
        with pytest.raises(duckdb.TransactionException, match="Conflict"):
            apply_batch(t1, proposal, now=now_utc())
        t1.execute("ROLLBACK")
    with wh.connect() as con:
        assert con.execute(
            "SELECT employees FROM crm.accounts WHERE account_id = 'A1'"
        ).fetchall() == [(50,)]


def _sql_constants(path: Path) -> list[str]:
    """Every string assigned to a module-level name (the SQL constants of a module)."""
    tree = ast.parse(path.read_text())
    return [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def _statements(sql: str) -> list[str]:
    no_comments = re.sub(r"--[^\n]*", "", sql)
    return [s.strip() for s in no_comments.split(";") if s.strip()]


def test_no_engine_write_uses_the_lost_update_patterns() -> None:
    """UPDATE ... RETURNING on an indexed table and DELETE lose updates silently in DuckDB."""
    texts = [(p, t) for p in (ROOT / "agents").rglob("*.py") for t in _sql_constants(p)]
    texts += [(p, p.read_text()) for p in (ROOT / "data" / "migrations").glob("*.sql")]
    writes = [
        (p.name, stmt)
        for p, text in texts
        for stmt in _statements(text)
        if re.match(r"(UPDATE|DELETE)\b", stmt, re.I)
    ]
    assert len(writes) >= 4  # the scan sees the engine's real UPDATE statements
    bad = [
        (name, s[:80])
        for name, s in writes
        if s.upper().startswith("DELETE") or re.search(r"\bRETURNING\b", s, re.I)
    ]
    assert bad == []
