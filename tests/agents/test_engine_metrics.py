"""The engine's measures count what really happened, decision by decision."""

from __future__ import annotations

import polars as pl

from revstack.agents.engine import decide, parse_value, run_agents
from revstack.data.warehouse import Warehouse
from revstack.metrics.engine import action_outcomes, run_stats
from tests.agents.test_runs import FillIndustry, _spec


def test_outcomes_and_override_rate_follow_the_decisions(run_wh: Warehouse) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    with run_wh.connect() as con:
        pending = con.execute(
            "SELECT proposal_id, action_type FROM ops.proposals WHERE status = 'pending' AND run_id <> 'run-t' ORDER BY 1"
        ).fetchall()
    emp = [p for p, a in pending if a == "fill_employees"]
    assert len(emp) == 4
    decide(run_wh, emp[0], approve=True, by="rev")
    decide(run_wh, emp[1], approve=True, by="rev", value=parse_value("99"))
    decide(run_wh, emp[2], approve=False, by="rev", note="wrong")
    with run_wh.connect() as con:
        out = action_outcomes(con).filter(pl.col("agent") == "filler")
        runs = run_stats(con)
    row = out.filter(pl.col("action_type") == "fill_employees").row(0, named=True)
    assert (row["approved_unchanged"], row["edited"], row["rejected"], row["pending"]) == (
        1,
        1,
        1,
        1,
    )
    assert abs(row["override_rate"] - 2 / 3) < 1e-9
    fill = out.filter(pl.col("action_type") == "fill_industry").row(0, named=True)
    assert fill["auto_applied"] == 1 and fill["reviewed"] == 0 and fill["override_rate"] is None
    assert runs.filter(pl.col("agent") == "filler")["runs"].item() == 1
