"""Agent outputs (forecast snapshots, briefings, flags): written by the engine, in the
run's transaction, only to the ops tables the contract declares."""

from __future__ import annotations

import datetime as dt

import polars as pl

from revstack.agents.engine import (
    Agent,
    AgentResult,
    AgentSpec,
    Context,
    empty_proposals,
    run_agents,
)
from revstack.data.warehouse import Warehouse, frame
from tests.agents.test_runs import POLICY


def _flags(n: int, **extra: object) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(n)],
            "signal": ["gone_quiet"] * n,
            "flagged_at": [dt.datetime(2026, 10, 1)] * n,
            "reason": ["no two-way activity in 40 days"] * n,
            **{k: [v] * n for k, v in extra.items()},
        }
    )


class Flagger(Agent):
    name = "flagger"
    version = "1.0"

    def __init__(self, outputs: dict[str, pl.DataFrame]) -> None:
        self.outputs = outputs

    def run(self, ctx: Context) -> AgentResult:
        ctx.table("crm.accounts")
        return AgentResult(empty_proposals(), {}, self.outputs)


def _spec(
    outputs: dict[str, pl.DataFrame], declared: tuple[str, ...], replaces: tuple[str, ...] = ()
) -> AgentSpec:
    return AgentSpec(
        name="flagger",
        version="1.0",
        contract_version="1",
        owner="ops@x",
        mode="live",
        depends_on=(),
        triggers=("record_created",),
        reads={"crm.accounts": ["account_id"]},
        policy=POLICY,
        factory=lambda: Flagger(outputs),
        outputs=declared,
        replaces=replaces,
    )


def _stored(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, "SELECT * FROM ops.risk_flags ORDER BY opportunity_id")


def test_declared_outputs_are_stored_with_the_run_id_and_logged(run_wh: Warehouse) -> None:
    [result] = run_agents(run_wh, [_spec({"ops.risk_flags": _flags(3)}, ("ops.risk_flags",))])
    assert result.status == "succeeded"
    stored = _stored(run_wh)
    assert stored["opportunity_id"].to_list() == ["o0", "o1", "o2"]
    assert set(stored["run_id"]) == {result.run_id}
    with run_wh.connect() as con:
        detail = con.execute(
            "SELECT detail->>'$.outputs' FROM ops.audit_log WHERE run_id = $r AND action = 'read'",
            {"r": result.run_id},
        ).fetchall()[0][0]
    assert detail == '{"ops.risk_flags":3}'
    with run_wh.connect() as con:
        queried = con.execute(
            "SELECT detail->>'$.queried_in_warehouse' FROM ops.audit_log "
            "WHERE run_id = $r AND action = 'read'",
            {"r": result.run_id},
        ).fetchall()[0][0]
    assert queried == "[]"  # it read its table as a frame


def test_an_undeclared_output_fails_the_run_and_writes_nothing(run_wh: Warehouse) -> None:
    [result] = run_agents(run_wh, [_spec({"ops.risk_flags": _flags(2)}, ())])
    assert result.status == "failed"
    assert "does not declare" in result.message
    assert _stored(run_wh).is_empty()


def test_outputs_cannot_go_to_the_engines_own_tables(run_wh: Warehouse) -> None:
    rows = pl.DataFrame({"proposal_id": ["x"]})
    [result] = run_agents(run_wh, [_spec({"ops.proposals": rows}, ("ops.risk_flags",))])
    assert result.status == "failed" and "ops.proposals" in result.message


def test_an_output_that_does_not_fit_its_table_rolls_the_whole_run_back(run_wh: Warehouse) -> None:
    unknown = _spec({"ops.risk_flags": _flags(1, colour="red")}, ("ops.risk_flags",))
    [result] = run_agents(run_wh, [unknown])
    assert result.status == "failed" and "colour" in result.message
    # A NOT NULL column left empty fails inside the transaction: nothing of the run stays.
    broken = _flags(2).with_columns(reason=pl.lit(None, pl.String))
    [result] = run_agents(run_wh, [_spec({"ops.risk_flags": broken}, ("ops.risk_flags",))])
    assert result.status == "failed" and "could not be stored" in result.message
    assert _stored(run_wh).is_empty()
    with run_wh.connect() as con:
        runs = con.execute("SELECT status, count(*) FROM ops.runs GROUP BY 1").fetchall()
        pending = con.execute(
            "SELECT count(*) FROM ops.event_consumption WHERE agent = 'flagger'"
        ).fetchall()[0][0]
    assert runs == [("failed", 2)] and pending == 0


def test_a_replaced_output_holds_only_the_latest_runs_rows(run_wh: Warehouse) -> None:
    """A cache (the forecast's backtest) is read back by the next run: it must not grow."""
    declared = ("ops.risk_flags",)
    [first] = run_agents(run_wh, [_spec({"ops.risk_flags": _flags(3)}, declared, declared)])
    [second] = run_agents(
        run_wh, [_spec({"ops.risk_flags": _flags(2)}, declared, declared)], only="flagger"
    )
    stored = _stored(run_wh)
    assert first.status == second.status == "succeeded"
    assert stored["opportunity_id"].to_list() == ["o0", "o1"]
    assert set(stored["run_id"]) == {second.run_id}
    # A run that fails leaves the last one's rows.
    broken = _flags(1).with_columns(reason=pl.lit(None, pl.String))
    [third] = run_agents(
        run_wh, [_spec({"ops.risk_flags": broken}, declared, declared)], only="flagger"
    )
    assert third.status == "failed" and len(_stored(run_wh)) == 2


class Querier(Agent):
    name = "flagger"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        ctx.warehouse_sql(
            "SELECT count(*) AS n FROM crm.accounts", tables={"crm.accounts": ["account_id"]}
        )
        return AgentResult(empty_proposals(), {}, {})


def test_the_run_log_names_tables_queried_where_they_lie(run_wh: Warehouse) -> None:
    """Rows a warehouse query reads never reach the agent's frames, so ``rows_read`` does
    not count them; the audit row names the tables instead."""
    queried = AgentSpec(**{**_spec({}, ()).__dict__, "factory": Querier})
    [result] = run_agents(run_wh, [queried])
    assert result.status == "succeeded"
    with run_wh.connect() as con:
        detail = con.execute(
            "SELECT detail->>'$.rows_read', detail->>'$.queried_in_warehouse' "
            "FROM ops.audit_log WHERE run_id = $r AND action = 'read'",
            {"r": result.run_id},
        ).fetchall()[0]
    assert detail == ("{}", '["crm.accounts"]')
