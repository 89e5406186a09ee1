"""Reviewers approve, edit and reject; every decision is logged once, whoever races."""

from __future__ import annotations

import multiprocessing as mp
import threading

import pytest

from revstack.agents.engine import EngineError, decide, parse_value, verify
from revstack.data.warehouse import Warehouse, first_row, frame
from tests.agents.conftest import insert_proposal


def _state(wh: Warehouse, pid: str) -> tuple:
    with wh.connect() as con:
        return first_row(
            con,
            "SELECT status, decided_by, decision_note, final_value FROM ops.proposals"
            " WHERE proposal_id = $id",
            {"id": pid},
        )  # type: ignore[return-value]


def _crm(wh: Warehouse, account: str, field: str) -> object:
    with wh.connect() as con:
        return first_row(
            con, f"SELECT {field} FROM crm.accounts WHERE account_id = $a", {"a": account}
        )[0]  # type: ignore[index]


def _log(wh: Warehouse) -> list[dict]:
    with wh.connect() as con:
        return frame(
            con,
            "SELECT actor, action, record_id, field, before, after, detail FROM ops.audit_log WHERE action NOT IN ('policy') ORDER BY seq",
        ).to_dicts()


def test_approve_writes_the_crm_and_logs_person_and_agent(engine_wh: Warehouse) -> None:
    d = decide(engine_wh, "p1", approve=True, by="rev", note="checked the website")
    assert (d.outcome, d.changed) == ("approved", True)
    assert _crm(engine_wh, "a1", "industry") == "Software"
    assert _state(engine_wh, "p1") == ("approved", "rev", "checked the website", '"Software"')
    log = _log(engine_wh)
    assert [(r["actor"], r["action"]) for r in log] == [
        ("rev", "approve"),
        ("crm_hygiene", "apply"),
    ]
    assert (log[1]["before"], log[1]["after"]) == ("null", '"Software"')


def test_edit_is_recorded_as_an_override(engine_wh: Warehouse) -> None:
    d = decide(engine_wh, "p3", approve=True, by="rev", value=parse_value("42"))
    assert d.outcome == "edited"
    assert _crm(engine_wh, "a3", "employees") == 42
    log = _log(engine_wh)
    assert log[0]["action"] == "edit" and '"proposed":35' in log[0]["detail"]


def test_reject_needs_a_note_and_changes_nothing_in_crm(engine_wh: Warehouse) -> None:
    with pytest.raises(EngineError, match="needs a note"):
        decide(engine_wh, "p2", approve=False, by="rev")
    d = decide(engine_wh, "p2", approve=False, by="rev", note="Globex is a retailer")
    assert d.outcome == "rejected"
    assert _crm(engine_wh, "a2", "industry") == "Retail"
    assert _state(engine_wh, "p2")[0] == "rejected"


def test_a_changed_record_makes_the_proposal_stale(engine_wh: Warehouse) -> None:
    with engine_wh.connect() as con:  # a person edits the CRM after the agent proposed
        con.execute("UPDATE crm.accounts SET industry = 'Wholesale' WHERE account_id = 'a2'")
    d = decide(engine_wh, "p2", approve=True, by="rev")
    assert d.outcome == "stale"
    assert _crm(engine_wh, "a2", "industry") == "Wholesale"
    assert [r["action"] for r in _log(engine_wh)] == ["approve", "stale"]


def test_deciding_twice_says_so_and_changes_nothing(engine_wh: Warehouse) -> None:
    decide(engine_wh, "p1", approve=True, by="rev")
    again = decide(engine_wh, "p1", approve=False, by="ana", note="too late")
    assert (again.outcome, again.changed) == ("unchanged", False)
    assert "already approved by rev" in again.message
    assert _state(engine_wh, "p1")[0] == "approved"
    assert len(_log(engine_wh)) == 2


@pytest.mark.parametrize(
    ("by", "message"),
    [("vic", "vic is a viewer"), ("nobody", "'nobody' is not a known person")],
)
def test_viewers_and_strangers_cannot_decide(engine_wh: Warehouse, by: str, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        decide(engine_wh, "p1", approve=True, by=by)
    assert _state(engine_wh, "p1")[0] == "pending"


def test_shadow_proposals_are_not_approvable(engine_wh: Warehouse) -> None:
    insert_proposal(engine_wh, "s1", "a1", "industry", "null", '"X"', status="shadow", shadow=True)
    with pytest.raises(EngineError, match="shadow"):
        decide(engine_wh, "s1", approve=True, by="rev")
    assert _crm(engine_wh, "a1", "industry") is None


def test_tier3_task_is_never_written_by_the_engine(engine_wh: Warehouse) -> None:
    insert_proposal(engine_wh, "t1", "a1", "industry", "null", '"Energy"', tier=3, status="task")
    d = decide(engine_wh, "t1", approve=True, by="rev", note="done in Salesforce")
    assert d.outcome == "done"
    assert _crm(engine_wh, "a1", "industry") is None


def test_a_value_of_the_wrong_type_is_refused(engine_wh: Warehouse) -> None:
    with pytest.raises(EngineError, match="not a valid INTEGER"):
        decide(engine_wh, "p3", approve=True, by="rev", value=parse_value("lots"))
    assert _state(engine_wh, "p3")[0] == "pending"


def test_eight_threads_approving_at_once_make_one_decision(engine_wh: Warehouse) -> None:
    barrier = threading.Barrier(8)
    results, errors = [], []

    def click(i: int) -> None:
        barrier.wait()
        try:
            results.append(
                decide(Warehouse(engine_wh.path), "p1", approve=i % 2 == 0, by="rev", note=f"n{i}")
            )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.changed for r in results) == 1
    log = [r for r in _log(engine_wh) if r["action"] in ("approve", "reject")]
    assert len(log) == 1
    with engine_wh.connect() as con:
        assert verify(con).ok


def _approve_in_process(path: str, barrier, i: int, out) -> None:  # child process
    barrier.wait()
    d = decide(Warehouse(path, busy_timeout=60), "p2", approve=True, by="rev", note=f"proc {i}")
    out.put(d.changed)


@pytest.mark.slow
def test_eight_processes_approving_at_once_make_one_decision(engine_wh: Warehouse) -> None:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=_approve_in_process, args=(str(engine_wh.path), barrier, i, out))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    changed = [out.get(timeout=5) for _ in procs]
    # One assertion, so a failure shows both: two winners with one logged decision
    # would be a lost commit; two logged decisions, two processes in the file at once.
    assert (changed.count(True), [r["action"] for r in _log(engine_wh)]) == (
        1,
        ["approve", "apply"],
    )
    assert _crm(engine_wh, "a2", "industry") == "Banking"
