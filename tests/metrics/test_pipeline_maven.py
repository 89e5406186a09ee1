"""The pipeline health backtest on the real maven_crm export: the engaging periods it
rebuilds, and what the stage-age signal says about real outcomes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from revstack.contracts import load_definitions
from revstack.data.ingest import ingest
from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.pipeline_maven import maven_input, maven_report


@pytest.mark.slow
def test_maven_is_backtested_on_what_it_supports(wh: Warehouse, shared_data: Path) -> None:
    ingest(wh, "maven", shared_data / "maven_crm")
    with wh.connect() as con:
        mem = maven_input(con)
        history = frame(mem, "SELECT * FROM crm.opportunity_history")
        mem.close()
        report = maven_report(con, load_definitions(), eval_weeks=8)
    # one row when the deal started engaging, one when it closed (won 4,238 + lost 2,473)
    assert history.filter(pl.col("stage") == "discovery").height == 8300
    assert history.filter(pl.col("stage").is_in(["closed_won", "closed_lost"])).height == 6711
    assert history.filter(pl.col("stage") == "discovery")["amount"].is_null().all()
    signals = {s["signal"]: s for s in report["signals"]}
    assert set(signals) == {"model", "stage_age_outlier", "naive_no_activity_30d", "any_rule"}
    assert "gone_quiet" in report["not_supported"] and report["rows"] > 1000
    assert 0 < report["base_rate"] < 0.5
    # Real data: deals engaging longer than won deals did rarely go on to win.
    eventual = {r["flagged"]: r for r in report["stage_age_eventual_outcome"]}
    assert eventual[True]["won"] < eventual[False]["won"] / 2
