"""Tier-3 tasks past their contract's age leave the list at the next run, as no one's
verdict: audited, not an override, not counted against anyone."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from pydantic import ValidationError

from revstack.agents.engine import (
    POLICY_SCHEMA,
    Agent,
    AgentResult,
    AgentSpec,
    Context,
    add_person,
    decide,
    run_agents,
    verify,
)
from revstack.agents.engine._expiry import expire_tasks  # noqa: TID251 - the unit alone
from revstack.agents.engine._units import (  # noqa: TID251 - the unit and its conflict test
    in_transaction,
    is_conflict,
)
from revstack.agents.registry import specs
from revstack.contracts._model import Action
from revstack.data import clock
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics.engine import action_outcomes
from tests.agents._workload import seed_accounts

START = dt.datetime(2026, 3, 2, 9, 0)


class Caller(Agent):
    """One tier-3 task per account: call it."""

    name = "caller"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        a = ctx.table("crm.accounts", ["account_id"])
        return AgentResult(
            a.select(
                action_type=pl.lit("call_account"),
                object_type=pl.lit("accounts"),
                record_id="account_id",
                field=pl.lit(None, pl.String),
                old_value=pl.lit(None, pl.String),
                new_value=pl.lit('"call"'),
                confidence=pl.lit(0.9),
                evidence=pl.lit("{}"),
                reason=pl.lit("call them"),
            )
        )


SPEC = AgentSpec(
    name="caller",
    version="1.0",
    contract_version="1",
    owner="t",
    mode="live",
    depends_on=(),
    triggers=("record_created", "record_changed"),
    reads={"crm.accounts": ["account_id"]},
    policy=pl.DataFrame(
        [("call_account", "accounts", None, 3, 0.0)], schema=POLICY_SCHEMA, orient="row"
    ),
    factory=Caller,
    expiry={"call_account": 7},
)


def _statuses(wh: Warehouse) -> dict[str, int]:
    with wh.connect() as con:
        rows = frame(con, "SELECT status, count(*) AS n FROM ops.proposals GROUP BY status")
    return dict(rows.iter_rows())


def test_tasks_expire_after_their_days_and_count_as_no_ones_verdict(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    seed_accounts(wh, 40)
    add_person(wh, "ana", "admin", by="ana")
    sim = clock.SimulatedClock(START)
    with clock.using(sim):
        [first] = run_agents(wh, [SPEC], only="caller")
        assert first.status == "succeeded" and _statuses(wh) == {"task": 40}
        with wh.connect() as con:
            [done_id, dismissed_id] = frame(
                con, "SELECT proposal_id FROM ops.proposals ORDER BY proposal_id LIMIT 2"
            )["proposal_id"].to_list()
        sim.advance(dt.timedelta(days=3))
        decide(wh, done_id, approve=True, by="ana")
        decide(wh, dismissed_id, approve=False, by="ana", note="not now")
        run_agents(wh, [SPEC], only="caller")  # three days old: nothing expires yet
        assert _statuses(wh) == {"task": 38, "done": 1, "dismissed": 1}

        sim.advance(dt.timedelta(days=4, hours=1))  # seven days and an hour
        run_agents(wh, [SPEC], only="caller")
        assert _statuses(wh) == {"expired": 38, "done": 1, "dismissed": 1}
        late = decide(wh, _an_expired(wh), approve=True, by="ana")
    assert late.outcome == "unchanged" and "expired" in late.message

    with wh.connect() as con:
        audit = frame(
            con,
            "SELECT actor, actor_kind, detail FROM ops.audit_log WHERE action = 'expire'",
        )
        outcomes = action_outcomes(con).row(0, named=True)
        assert verify(con).ok
    release_all()
    assert len(audit) == 38 and set(audit["actor_kind"]) == {"system"}
    assert audit["detail"].str.contains("7 days").all()
    assert outcomes["tasks"] == 40 and outcomes["expired"] == 38
    assert outcomes["rejected"] == 0 and outcomes["reviewed"] == 0


def _an_expired(wh: Warehouse) -> str:
    with wh.connect() as con:
        return str(
            frame(con, "SELECT proposal_id FROM ops.proposals WHERE status = 'expired' LIMIT 1")[
                "proposal_id"
            ][0]
        )


def test_only_tier_3_tasks_may_expire() -> None:
    with pytest.raises(ValidationError, match="only tier 3 tasks expire"):
        Action(name="fix", description="d", tier=2, about="accounts", expires_after_days=5)
    with pytest.raises(ValidationError):
        Action(name="fix", description="d", tier=3, about="accounts", expires_after_days=0)


def test_the_outbound_contract_lets_unsent_drafts_lapse_with_its_window() -> None:
    [outbound] = [s for s in specs() if s.name == "outbound"]
    assert outbound.expiry == {"draft_email": 30}
    assert all(not s.expiry for s in specs() if s.name != "outbound")


def test_an_expiry_never_overwrites_a_decision_made_meanwhile(tmp_path: Path) -> None:
    """A person marks a task done while the run's expiry is under way: the expiry's write
    raises a conflict (its unit runs again and sees the decision) rather than overwriting
    it. An UPDATE ... RETURNING on ops.proposals (indexed) raised nothing and the
    decision, committed after, was lost (docs/design.md, The silent lost update)."""
    wh = Warehouse(tmp_path / "w.duckdb")
    seed_accounts(wh, 10)
    sim = clock.SimulatedClock(START)
    with clock.using(sim):
        run_agents(wh, [SPEC], only="caller")
        sim.advance(dt.timedelta(days=8))
        with wh.connect() as con:
            pid = str(frame(con, "SELECT min(proposal_id) AS p FROM ops.proposals")["p"][0])
        with wh.connect() as person, wh.connect() as run:
            person.execute("BEGIN TRANSACTION")  # what decide() writes for a task done
            person.execute(
                "UPDATE ops.proposals SET status = 'done', decided_by = 'ana', "
                "decided_at = $at WHERE proposal_id = $id AND status = 'task'",
                {"id": pid, "at": clock.now_utc()},
            )
            run.execute("BEGIN TRANSACTION")
            with pytest.raises(duckdb.Error) as raised:
                expire_tasks(run, [SPEC], now=clock.now_utc())
            run.execute("ROLLBACK")
            person.execute("COMMIT")
        assert is_conflict(raised.value)
        expired = in_transaction(wh, lambda con: expire_tasks(con, [SPEC], now=clock.now_utc()))
    assert expired == 9
    assert _statuses(wh) == {"done": 1, "expired": 9}
    with wh.connect() as con:
        gone = frame(con, "SELECT proposal_id FROM ops.audit_log WHERE action = 'expire'")
    release_all()
    assert len(gone) == 9 and pid not in gone["proposal_id"].to_list()


def test_a_run_of_one_agent_expires_only_that_agents_tasks(tmp_path: Path) -> None:
    """`revstack run --agent X` and `revstack brief` touch X alone: another agent's due
    tasks wait for a run that includes it."""
    other = dataclasses.replace(SPEC, name="other", factory=None, expiry={})
    wh = Warehouse(tmp_path / "w.duckdb")
    seed_accounts(wh, 5)
    sim = clock.SimulatedClock(START)
    with clock.using(sim):
        run_agents(wh, [SPEC, other], only="caller")
        sim.advance(dt.timedelta(days=8))
        run_agents(wh, [SPEC, other], only="other")
        assert _statuses(wh) == {"task": 5}
        run_agents(wh, [SPEC, other])
    release_all()
    assert _statuses(wh) == {"expired": 5}
