"""How well the pipeline health agent's signals and model foresee slips and losses.

``signal_quality(backtest, budget)`` gives one row per signal (each rule, the model,
the naive "no activity in 30 days" baseline and "any rule"): how many snapshot rows
it flagged, precision, recall, F1, precision and recall at an alert budget of
``budget`` deals per manager per week, PR-AUC next to the base rate, dollar-weighted
recall and the median days of warning before the slip or loss. ``report`` is what
``revstack metrics --agent pipeline_health`` prints; ``stored_quality`` and
``stored_report`` read the figures ``revstack backtest`` stored, for the dashboard.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import polars as pl

from revstack.agents.pipeline_health import MODEL_THRESHOLD
from revstack.data.clock import now_utc
from revstack.data.warehouse import frame, registered, scalar
from revstack.metrics.pipeline_backtest import (
    ANY_RULE,
    BUDGET,
    NAIVE,
    QUALITY_SCHEMA,
    Backtest,
    in_memory_copy,
    run_backtest,
    signal_quality,
)
from revstack.metrics.pipeline_maven import maven_report

__all__ = [
    "signal_quality",
    "summarize",
    "report",
    "stored_report",
    "store_quality",
    "stored_quality",
    "MODEL_THRESHOLD",
    "BUDGET",
    "QUALITY_SCHEMA",
]


_HAS_TRUTH = "SELECT count(*) FROM truth.deal_outcomes"
_MAVEN = "SELECT count(*) FROM ops.imports WHERE format = 'maven'"
_STORED = """
SELECT * FROM ops.risk_backtests
WHERE backtest_id = (SELECT max(backtest_id) FROM ops.risk_backtests) AND population = $population
"""
_LATEST_SETUP = """
SELECT backtest_id, any_value(setup) FROM ops.risk_backtests
WHERE backtest_id = (SELECT max(backtest_id) FROM ops.risk_backtests) GROUP BY backtest_id
"""
_STORE = """
INSERT INTO ops.risk_backtests BY NAME SELECT * FROM quality_rows
"""


def _r(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def _rows(q: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _r(v) for k, v in r.items()} for r in q.iter_rows(named=True)]


def _side_by_side(live: pl.DataFrame) -> dict[str, Any]:
    """The model, the best rule by three measures and the naive baseline, one row each."""
    rules = live.filter(~pl.col("signal").is_in(["model", NAIVE, ANY_RULE]))
    pick = {
        "model": live.filter(signal="model").row(0, named=True),
        "best_rule_by_precision_at_k": rules.sort(
            "precision_at_k", descending=True, nulls_last=True
        ).row(0, named=True),
        "best_rule_by_recall": rules.sort("recall", descending=True, nulls_last=True).row(
            0, named=True
        ),
        "best_rule_by_f1": rules.sort("f1", descending=True, nulls_last=True).row(0, named=True),
        "naive": live.filter(signal=NAIVE).row(0, named=True),
    }
    return {name: {k: _r(r[k]) for k in _SIDE_BY_SIDE} for name, r in pick.items()}


def summarize(bt: Backtest, live: pl.DataFrame, every: pl.DataFrame) -> dict[str, Any]:
    """The figures ``revstack metrics`` and ``revstack backtest`` print."""
    base_rate = live.filter(signal="model")["base_rate"][0]
    dead = bt.scored.filter("already_lost")
    phantom = (
        bt.scored.filter(pl.col("phantom").is_not_null())
        if "phantom" in bt.scored.columns
        else dead.clear()
    )
    return {
        "available": True,
        "setup": bt.setup,
        "label": _label(bt.setup),
        "budget_per_manager_week": BUDGET,
        "model_threshold": MODEL_THRESHOLD,
        "rows": len(bt.scored),
        "live_rows": int((~bt.scored["already_lost"]).sum()),
        "base_rate_live": _r(base_rate),
        "side_by_side_live": _side_by_side(live),
        "signals_live": _rows(live),
        "signals_all": _rows(every),
        "already_lost_still_open": {
            "rows": len(dead),
            "phantom_precision": _r(phantom["already_lost"].mean()) if len(phantom) else None,
            "phantom_recall": _r(phantom["already_lost"].sum() / len(dead)) if len(dead) else None,
        },
    }


def _label(setup: dict[str, Any]) -> str:
    return (
        f"slipped out of its quarter, reached its quarter's end still open, or lost, "
        f"within {setup['horizon_days']} days"
    )


_SIDE_BY_SIDE = (
    "signal",
    "precision_at_k",
    "recall_at_k",
    "precision",
    "recall",
    "f1",
    "pr_auc",
    "dollar_recall",
    "median_warning_days",
)


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """Backtest on this warehouse against truth.* (a generated company) and the figures."""
    if not scalar(con, _HAS_TRUTH):
        if scalar(con, _MAVEN):  # real data whose export holds its own outcomes
            return {"available": True, "data": "maven_crm", **maven_report(con, definitions)}
        return {
            "available": False,
            "why": "no truth.* in this warehouse and no outcomes in the export to "
            "backtest against; see docs/pipeline_health.md",
        }
    mem = in_memory_copy(con)
    try:
        bt = run_backtest(mem, definitions)
    finally:
        mem.close()
    return summarize(bt, signal_quality(bt), signal_quality(bt, live_only=False))


def stored_report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """The figures of the latest stored backtest (``revstack backtest``), for the
    dashboard: the backtest replays every week of the company, a minute on mid and far
    more on a large company, too long to run while a page draws. Without truth.* the
    live report (a maven import's own outcomes, small, or why there is nothing)."""
    if not scalar(con, _HAS_TRUTH):
        return report(con, definitions)
    live = stored_quality(con, "live")
    if live.is_empty():
        return {
            "available": False,
            "why": "no backtest stored yet: `revstack backtest` replays every week against "
            "truth and stores its figures here",
        }
    every = stored_quality(con, "all")
    backtest_id, setup = con.execute(_LATEST_SETUP).fetchall()[0]
    setup = json.loads(setup)
    figures = list(QUALITY_SCHEMA)
    return {
        "available": True,
        "measured_at": live["measured_at"][0],
        "backtest_id": int(backtest_id),
        "setup": setup,
        "label": _label(setup),
        "budget_per_manager_week": BUDGET,
        "model_threshold": MODEL_THRESHOLD,
        "base_rate_live": _r(live.filter(signal="model")["base_rate"][0]),
        "side_by_side_live": _side_by_side(live),
        "signals_live": _rows(live.select(figures)),
        "signals_all": _rows(every.select(figures)),
    }


def store_quality(
    con: duckdb.DuckDBPyConnection, bt: Backtest, live: pl.DataFrame, every: pl.DataFrame
) -> int:
    """Record both populations' figures as one backtest in ops.risk_backtests; its id."""
    backtest_id = int(scalar(con, "SELECT nextval('ops.risk_backtest_seq')"))
    rows = pl.concat(
        [live.with_columns(population=pl.lit("live")), every.with_columns(population=pl.lit("all"))]
    )
    rows = rows.with_columns(
        backtest_id=pl.lit(backtest_id),
        measured_at=pl.lit(now_utc()),
        setup=pl.lit(json.dumps(bt.setup, default=str)),
    )
    with registered(con, "quality_rows", rows):
        con.execute(_STORE)
    return backtest_id


def stored_quality(con: duckdb.DuckDBPyConnection, population: str = "live") -> pl.DataFrame:
    """The latest stored backtest's per-signal figures (empty before any backtest)."""
    rows = frame(con, _STORED, {"population": population})
    if rows.is_empty():
        return pl.DataFrame(schema={"measured_at": pl.Datetime("us"), **QUALITY_SCHEMA})
    return rows.select("measured_at", *QUALITY_SCHEMA).sort(
        "precision_at_k", descending=True, nulls_last=True
    )
