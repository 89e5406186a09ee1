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

import json
from typing import Any

import duckdb
import polars as pl
from sklearn.metrics import average_precision_score

from data.warehouse import frame, scalar
from metrics._pipeline_backtest import NAIVE, Backtest, run_backtest

__all__ = ["signal_quality", "report", "stored_quality", "MODEL_THRESHOLD", "BUDGET",
           "QUALITY_SCHEMA"]  # fmt: skip

MODEL_THRESHOLD = 0.5  # the model flags a deal when its calibrated risk is at least this
BUDGET = 5  # alerts per manager per week
ANY_RULE = "any_rule"
QUALITY_SCHEMA = {
    "signal": pl.String, "flagged": pl.Int64, "precision": pl.Float64, "recall": pl.Float64,
    "f1": pl.Float64, "precision_at_k": pl.Float64, "recall_at_k": pl.Float64,
    "pr_auc": pl.Float64, "base_rate": pl.Float64, "dollar_recall": pl.Float64,
    "median_warning_days": pl.Float64,
}  # fmt: skip
_HAS_TRUTH = "SELECT count(*) FROM truth.deal_outcomes"
_STORED = """
SELECT * FROM ops.risk_backtests
WHERE backtest_id = (SELECT max(backtest_id) FROM ops.risk_backtests)
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


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """Backtest on this warehouse against truth.* (a generated company) and the figures."""
    if not scalar(con, _HAS_TRUTH):
        return {"available": False,
                "why": "no truth.* in this warehouse: outcomes of real data cannot be backtested "
                       "here; see docs/pipeline_health.md for maven_crm"}  # fmt: skip
    bt = run_backtest(con, definitions)
    q = signal_quality(bt)
    rules = q.filter(~pl.col("signal").is_in(["model", NAIVE, ANY_RULE]))
    best = rules.sort("precision_at_k", descending=True, nulls_last=True).row(0, named=True)
    model = q.filter(signal="model").row(0, named=True)
    naive = q.filter(signal=NAIVE).row(0, named=True)
    return {
        "available": True,
        "setup": bt.setup,
        "label": f"slipped out of its quarter or lost within {bt.setup['horizon_days']} days",
        "budget_per_manager_week": BUDGET,
        "model_threshold": MODEL_THRESHOLD,
        "rows": len(bt.scored),
        "base_rate": _r(model["base_rate"]),
        "signals": [{k: _r(v) for k, v in r.items()} for r in q.iter_rows(named=True)],
        "side_by_side": {
            name: {
                k: _r(r[k])
                for k in (
                    "signal",
                    "precision_at_k",
                    "recall_at_k",
                    "precision",
                    "recall",
                    "f1",
                    "pr_auc",
                )
            }
            for name, r in (("model", model), ("best_rule", best), ("naive", naive))
        },  # fmt: skip
    }


def stored_quality(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest stored backtest's per-signal figures (empty before any backtest)."""
    rows = frame(con, _STORED)
    if rows.is_empty():
        return pl.DataFrame(schema={"measured_at": pl.Datetime("us"), **QUALITY_SCHEMA})
    return rows.select("measured_at", *QUALITY_SCHEMA)


def quality_rows(bt: Backtest, q: pl.DataFrame) -> pl.DataFrame:
    """Rows for ops.risk_backtests (without the id and time the caller adds)."""
    return q.with_columns(setup=pl.lit(json.dumps(bt.setup, default=str)))
