"""How well the pipeline health agent's signals and model foresee slips and losses.

``signal_quality(backtest, budget)`` gives one row per signal (each rule, the model,
the naive "no activity in 30 days" baseline and "any rule"): how many snapshot rows
it flagged, precision, recall, F1, precision and recall at an alert budget of
``budget`` deals per manager per week, PR-AUC next to the base rate, dollar-weighted
recall and the median days of warning before the slip or loss. ``report`` is what
``revstack metrics --agent pipeline_health`` prints; ``stored_quality`` reads the
figures ``revstack backtest`` stored for the dashboard.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import polars as pl
from sklearn.metrics import average_precision_score

from agents.pipeline_health import MODEL_THRESHOLD
from data.warehouse import frame, registered, scalar
from metrics._pipeline_backtest import NAIVE, Backtest, in_memory_copy, run_backtest

__all__ = ["signal_quality", "summarize", "report", "store_quality", "stored_quality",
           "MODEL_THRESHOLD", "BUDGET", "QUALITY_SCHEMA"]  # fmt: skip


BUDGET = 5  # alerts per manager per week
ANY_RULE = "any_rule"
QUALITY_SCHEMA = {
    "signal": pl.String, "flagged": pl.Int64, "precision": pl.Float64, "recall": pl.Float64,
    "f1": pl.Float64, "precision_at_k": pl.Float64, "recall_at_k": pl.Float64,
    "pr_auc": pl.Float64, "base_rate": pl.Float64, "dollar_recall": pl.Float64,
    "median_warning_days": pl.Float64,
}  # fmt: skip
_HAS_TRUTH = "SELECT count(*) FROM truth.deal_outcomes"
_MAVEN = "SELECT count(*) FROM ops.imports WHERE format = 'maven'"
_STORED = """
SELECT * FROM ops.risk_backtests
WHERE backtest_id = (SELECT max(backtest_id) FROM ops.risk_backtests) AND population = $population
"""
_STORE = """
INSERT INTO ops.risk_backtests BY NAME SELECT * FROM quality_rows
"""


def _flag_columns(bt: Backtest) -> pl.DataFrame:
    """Each signal as a severity (null = not flagged); the model flags at the threshold."""
    rules = [s for s in bt.signals if s not in ("model", NAIVE)]
    return bt.scored.with_columns(
        pl.when(pl.col("model") >= MODEL_THRESHOLD).then("model").otherwise(None).alias("_model"),
        pl.sum_horizontal([pl.col(r).is_not_null().cast(pl.Float64) for r in rules])
        .replace(0.0, None).alias(ANY_RULE),
    )  # fmt: skip


def _one(d: pl.DataFrame, col: str, rank_col: str, budget: int, positives: int,
         dollars: float) -> dict[str, Any]:  # fmt: skip
    flagged = d.filter(pl.col(col).is_not_null())
    tp = flagged.filter("label")
    precision = len(tp) / len(flagged) if len(flagged) else None
    recall = len(tp) / positives if positives else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision and recall else 0.0 if precision is not None else None)  # fmt: skip
    # The budget: each manager sees their top ``budget`` deals of the week by this signal.
    top = (
        d.filter(pl.col(rank_col).is_not_null())
        .sort(rank_col, descending=True)
        .group_by("as_of", "manager_id", maintain_order=True)
        .head(budget)
    )
    score = d[rank_col].fill_null(-1e12).to_numpy()  # not flagged: below every flag
    y = d["label"].to_numpy()
    warning = (
        tp.group_by("opportunity_id", "event_at")
        .agg(days=(pl.col("event_at") - pl.col("as_of")).max().dt.total_days())
        ["days"].median()
    )  # fmt: skip
    return {
        "signal": col, "flagged": len(flagged), "precision": precision, "recall": recall,
        "f1": f1, "precision_at_k": top["label"].mean() if len(top) else None,
        "recall_at_k": top["label"].sum() / positives if positives else None,
        "pr_auc": float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else None,
        "base_rate": positives / len(d) if len(d) else None,
        "dollar_recall": float(tp["amount"].sum()) / dollars if dollars else None,
        "median_warning_days": warning,
    }  # fmt: skip


def signal_quality(bt: Backtest, budget: int = BUDGET, *, live_only: bool = True) -> pl.DataFrame:
    """One row per signal, best precision at the budget first (see module doc).

    ``live_only`` leaves out snapshot rows of deals already lost in reality while the
    CRM still shows them open: flagging those is phantom detection (measured apart),
    not warning of what is coming, and they would fill any budget with easy hits."""
    d = _flag_columns(bt).with_columns(pl.col("label").fill_null(False))
    if live_only:
        d = d.filter(~pl.col("already_lost"))
    positives = int(d["label"].sum())
    dollars = float(d.filter("label")["amount"].sum())
    rows = []
    for col in [*bt.signals, ANY_RULE]:
        flag_col = "_model" if col == "model" else col
        one = _one(d, flag_col, col, budget, positives, dollars)
        one["signal"] = col
        rows.append(one)
    out = pl.DataFrame(rows, schema=QUALITY_SCHEMA, orient="row")
    return out.sort("precision_at_k", descending=True, nulls_last=True)


def _r(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def _rows(q: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _r(v) for k, v in r.items()} for r in q.iter_rows(named=True)]


def summarize(bt: Backtest, live: pl.DataFrame, every: pl.DataFrame) -> dict[str, Any]:
    """The figures ``revstack metrics`` and ``revstack backtest`` print."""
    rules = live.filter(~pl.col("signal").is_in(["model", NAIVE, ANY_RULE]))
    pick = {
        "model": live.filter(signal="model").row(0, named=True),
        "best_rule_by_precision_at_k": rules.sort("precision_at_k", descending=True,
                                                  nulls_last=True).row(0, named=True),
        "best_rule_by_recall": rules.sort("recall", descending=True, nulls_last=True).row(0, named=True),
        "best_rule_by_f1": rules.sort("f1", descending=True, nulls_last=True).row(0, named=True),
        "naive": live.filter(signal=NAIVE).row(0, named=True),
    }  # fmt: skip
    keys = ("signal", "precision_at_k", "recall_at_k", "precision", "recall", "f1", "pr_auc",
            "dollar_recall", "median_warning_days")  # fmt: skip
    dead = bt.scored.filter("already_lost")
    phantom = (
        bt.scored.filter(pl.col("phantom").is_not_null())
        if "phantom" in bt.scored.columns
        else dead.clear()
    )
    return {
        "available": True,
        "setup": bt.setup,
        "label": f"slipped out of its quarter, reached its quarter's end still open, or lost, "
                 f"within {bt.setup['horizon_days']} days",
        "budget_per_manager_week": BUDGET, "model_threshold": MODEL_THRESHOLD,
        "rows": len(bt.scored), "live_rows": int((~bt.scored["already_lost"]).sum()),
        "base_rate_live": _r(pick["model"]["base_rate"]),
        "side_by_side_live": {name: {k: _r(r[k]) for k in keys} for name, r in pick.items()},
        "signals_live": _rows(live),
        "signals_all": _rows(every),
        "already_lost_still_open": {
            "rows": len(dead),
            "phantom_precision": _r(phantom["already_lost"].mean()) if len(phantom) else None,
            "phantom_recall": _r(phantom["already_lost"].sum() / len(dead)) if len(dead) else None,
        },
    }  # fmt: skip


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """Backtest on this warehouse against truth.* (a generated company) and the figures."""
    if not scalar(con, _HAS_TRUTH):
        if scalar(con, _MAVEN):  # real data whose export holds its own outcomes
            from metrics.pipeline_maven import maven_report

            return {"available": True, "data": "maven_crm", **maven_report(con, definitions)}
        return {"available": False,
                "why": "no truth.* in this warehouse and no outcomes in the export to "
                       "backtest against; see docs/pipeline_health.md"}  # fmt: skip
    mem = in_memory_copy(con)
    try:
        bt = run_backtest(mem, definitions)
    finally:
        mem.close()
    return summarize(bt, signal_quality(bt), signal_quality(bt, live_only=False))


def store_quality(
    con: duckdb.DuckDBPyConnection, bt: Backtest, live: pl.DataFrame, every: pl.DataFrame
) -> int:
    """Record both populations' figures as one backtest in ops.risk_backtests; its id."""
    backtest_id = int(scalar(con, "SELECT nextval('ops.risk_backtest_seq')"))  # type: ignore[arg-type]
    rows = pl.concat([live.with_columns(population=pl.lit("live")),
                      every.with_columns(population=pl.lit("all"))])  # fmt: skip
    rows = rows.with_columns(
        backtest_id=pl.lit(backtest_id), measured_at=pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
        setup=pl.lit(json.dumps(bt.setup, default=str)),
    )  # fmt: skip
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
