"""Walk-forward backtest of the pipeline health agent against what really happened.

Weekly snapshots of every open deal are rebuilt with ``agents.features``; the agent's
rules and model score each one using only what was known then (benchmarks from deals
won before the block, the model trained on snapshots whose four-week outcome was
already visible, from CRM history alone); then ``truth.*`` says which deals really
slipped out of their quarter or were lost within the horizon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

from revstack.agents.features import TABLES, deal_states, weekly_moments
from revstack.agents.pipeline_health import (
    HORIZON_DAYS,
    MODEL_THRESHOLD,
    RiskModel,
    closed_outcomes,
    feature_matrix,
    learn_benchmarks,
    outcome_labels,
    rule_flags,
)
from revstack.data.progress import Progress, report
from revstack.data.warehouse import frame, scalar, scratch

__all__ = [
    "ANY_RULE",
    "BUDGET",
    "NAIVE",
    "QUALITY_SCHEMA",
    "Backtest",
    "in_memory_copy",
    "run_backtest",
    "signal_quality",
    "truth_labels",
]

NAIVE = "naive_no_activity_30d"
_HISTORY = "crm.opportunity_history"  # the baseline: no completed activity at all in 30 days
_MANAGERS = """
SELECT user_id AS owner_id, CASE WHEN role = 'manager' THEN user_id
                                 ELSE coalesce(manager_id, user_id) END AS manager_id
FROM crm.users
"""
_OUTCOMES = "SELECT opportunity_id, outcome, outcome_date FROM truth.deal_outcomes"
_SLIPS = "SELECT opportunity_id, slipped_at, new_close_date FROM truth.slips"


# What a backtest reads: copied into memory in one short unit of work, so the warehouse
# file is not held while the models train (docs/warehouse.md).
_COPY = {
    **{t: cols for t, cols in TABLES.items()},
    "crm.users": ["user_id", "role", "manager_id"],
    "ops.imports": ["as_of"],
    "truth.deal_outcomes": ["opportunity_id", "outcome", "outcome_date"],
    "truth.slips": ["opportunity_id", "slipped_at", "new_close_date"],
}


def in_memory_copy(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the tables and columns a backtest reads."""
    mem = scratch()
    for table, cols in _COPY.items():
        schema, name = table.split(".")
        data = frame(con, f"SELECT {', '.join(cols)} FROM {table}")  # names: _COPY
        mem.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        mem.register("_copy", data)
        mem.execute(f"CREATE TABLE {table} AS SELECT * FROM _copy")
        mem.unregister("_copy")
    return mem


@dataclass
class Backtest:
    """Every scored snapshot row and how the run was set up."""

    scored: pl.DataFrame  # as_of, opportunity_id, manager_id, amount, label, event_at, <signal>...
    signals: list[str]
    setup: dict[str, Any]


def truth_labels(
    con: duckdb.DuckDBPyConnection, states: pl.DataFrame, horizon_days: int
) -> pl.DataFrame:
    """Per snapshot row: did the deal, within ``horizon_days``, get lost (really, by
    truth.deal_outcomes; already lost counts), or move its close date into a later
    quarter than the one it had at the snapshot (truth.slips, or a win in a later
    quarter), or reach the end of that quarter still open? ``event_at``: when the first of those happened."""
    h = pl.duration(days=horizon_days)
    base = states.select("as_of", "opportunity_id", q=pl.col("close_date").dt.truncate("1q"))
    out = frame(con, _OUTCOMES)
    lost = (
        base.join(out.filter(outcome="lost"), on="opportunity_id")
        .filter(pl.col("outcome_date").cast(pl.Datetime("us")) <= pl.col("as_of") + h)
        .select(
            "as_of",
            "opportunity_id",
            event_at=pl.max_horizontal(pl.col("outcome_date").cast(pl.Datetime("us")), "as_of"),
        )
    )
    won_late = (
        base.join(out.filter(outcome="won"), on="opportunity_id")
        .filter(
            (pl.col("outcome_date").cast(pl.Datetime("us")) > pl.col("as_of"))
            & (pl.col("outcome_date").cast(pl.Datetime("us")) <= pl.col("as_of") + h)
            & (pl.col("outcome_date").dt.truncate("1q") > pl.col("q"))
        )
        .select("as_of", "opportunity_id", event_at=pl.col("outcome_date").cast(pl.Datetime("us")))
    )
    slipped = (
        base.join(frame(con, _SLIPS), on="opportunity_id")
        .filter(
            (pl.col("slipped_at") > pl.col("as_of"))
            & (pl.col("slipped_at") <= pl.col("as_of") + h)
            & (pl.col("new_close_date").dt.truncate("1q") > pl.col("q"))
        )
        .select("as_of", "opportunity_id", event_at="slipped_at")
    )
    # Its quarter ended while the deal was still open (not won or lost by then).
    ended = (
        base.join(out, on="opportunity_id")
        .with_columns(q_end=pl.col("q").dt.offset_by("1q").cast(pl.Datetime("us")))
        .filter(
            (pl.col("q_end") <= pl.col("as_of") + h)
            & (
                pl.col("outcome_date").is_null()
                | (pl.col("outcome_date").cast(pl.Datetime("us")) >= pl.col("q_end"))
            )
        )
        .select("as_of", "opportunity_id", event_at=pl.max_horizontal("q_end", "as_of"))
    )
    events = (
        pl.concat([lost, won_late, slipped, ended])
        .group_by("as_of", "opportunity_id")
        .agg(pl.col("event_at").min())
    )
    dead = lost.filter(pl.col("event_at") == pl.col("as_of")).select(
        "as_of", "opportunity_id", already_lost=pl.lit(True)
    )
    return (
        states.select("as_of", "opportunity_id")
        .join(events, on=["as_of", "opportunity_id"], how="left")
        .join(dead, on=["as_of", "opportunity_id"], how="left")
        .with_columns(
            label=pl.col("event_at").is_not_null(),
            already_lost=pl.col("already_lost").fill_null(False),
        )
    )


def _blocks(moments: list[dt.datetime], weeks: int) -> list[list[dt.datetime]]:
    return [moments[i : i + weeks] for i in range(0, len(moments), weeks)]


def run_backtest(
    con: duckdb.DuckDBPyConnection,
    definitions: Any,
    *,
    eval_weeks: int = 52,
    train_weeks: int = 104,
    retrain_weeks: int = 13,
    horizon_days: int = HORIZON_DAYS,
    max_train_rows: int = 100_000,
    seed: int = 0,
    model_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Backtest:
    """Score the last ``eval_weeks`` weekly snapshots whose horizon has passed by the
    data's as-of, retraining the model every ``retrain_weeks`` on up to ``train_weeks``
    of earlier snapshots (labels from CRM history visible at the block start).
    ``model_params`` go to ``RiskModel`` (tests use fewer trees)."""
    as_of = scalar(con, "SELECT max(as_of) FROM ops.imports")
    start = scalar(con, "SELECT min(changed_at) FROM crm.opportunity_history")
    if as_of is None or start is None:
        raise ValueError("the warehouse holds no CRM history to backtest on")
    h = dt.timedelta(days=horizon_days)
    every = weekly_moments(start.date() + dt.timedelta(days=28), as_of.date())
    evaluable = [m for m in every if m + h <= as_of][-eval_weeks:]
    if not evaluable:
        raise ValueError("not enough history for a backtest: no week whose horizon has passed")
    first_needed = evaluable[0] - dt.timedelta(weeks=train_weeks) - h
    moments = [m for m in every if m >= first_needed]
    states = deal_states(con, moments, definitions=definitions, open_only=True)
    # Every deal's close-out at the as-of: history columns only (the other tables empty).
    final = closed_outcomes(
        {
            t: frame(con, f"SELECT {', '.join(c)} FROM {t}" + ("" if t == _HISTORY else " LIMIT 0"))
            for t, c in TABLES.items()  # names: agents.features.TABLES
        },
        as_of,
        definitions,
    )
    stages = [s.key for s in definitions.stages]
    rng = np.random.default_rng(seed)
    scored_parts, models = [], []
    blocks = _blocks(evaluable, retrain_weeks)
    for i, block in enumerate(blocks):
        report(progress, "backtest blocks", i, len(blocks))
        b0 = block[0]
        known = final.filter(pl.col("is_won") & (pl.col("stage_entered_at") < b0))
        past = states.filter(pl.col("as_of") < b0)
        bench = learn_benchmarks(past, known["opportunity_id"], definitions)
        # Training snapshots: the outcome window closed before the block starts.
        train = past.filter(
            (pl.col("as_of") + h <= b0) & (pl.col("as_of") >= b0 - dt.timedelta(weeks=train_weeks))
        )
        visible = final.with_columns(  # what the CRM showed at b0: deals closed later are open
            is_closed=pl.col("is_closed") & (pl.col("stage_entered_at") < b0)
        )
        labels = outcome_labels(
            past.filter(pl.col("as_of") >= train["as_of"].min()), visible, horizon_days
        ).join(train.select("as_of", "opportunity_id"), on=["as_of", "opportunity_id"])
        train = train.join(labels, on=["as_of", "opportunity_id"])
        if len(train) > max_train_rows:
            train = train[np.sort(rng.choice(len(train), max_train_rows, replace=False))]
        model = RiskModel(random_state=seed, **(model_params or {})).fit(
            feature_matrix(train, bench, stages),
            train["label"].to_numpy(),
            time=train["as_of"].to_physical().to_numpy(),
        )
        models.append(
            {
                "block_start": b0.date().isoformat(),
                "n_train": len(train),
                "train_base_rate": round(float(train["label"].mean()), 4),
            }
        )
        now = states.filter(pl.col("as_of").is_in(block))
        flags = rule_flags(now, definitions, bench)
        wide = flags.pivot(on="signal", index=["as_of", "opportunity_id"], values="severity")
        scored_parts.append(
            now.select(
                "as_of",
                "opportunity_id",
                "owner_id",
                "amount",
                "stage",
                "close_date",
                "days_since_activity",
            )
            .with_columns(model=model.risk(feature_matrix(now, bench, stages)))
            .join(wide, on=["as_of", "opportunity_id"], how="left")
        )
    report(progress, "backtest blocks", len(blocks), len(blocks))
    scored = pl.concat(scored_parts, how="diagonal_relaxed")
    scored = scored.with_columns(
        pl.when(pl.col("days_since_activity") > 30)
        .then(pl.col("days_since_activity"))
        .cast(pl.Float64)
        .alias(NAIVE)
    )
    truth = truth_labels(con, scored, horizon_days)
    scored = (
        scored.join(truth, on=["as_of", "opportunity_id"], how="left")
        .join(frame(con, _MANAGERS), on="owner_id", how="left")
        .with_columns(pl.col("amount").fill_null(0.0))
    )
    signals = [c for c in scored.columns if c not in _NOT_SIGNALS]
    setup = {
        "as_of": as_of.isoformat(),
        "horizon_days": horizon_days,
        "eval_weeks": len(evaluable),
        "first_week": evaluable[0].date().isoformat(),
        "last_week": evaluable[-1].date().isoformat(),
        "retrain_weeks": retrain_weeks,
        "train_weeks": train_weeks,
        "models": models,
        "seed": seed,
    }
    return Backtest(scored, signals, setup)


_NOT_SIGNALS = {
    "as_of",
    "opportunity_id",
    "owner_id",
    "amount",
    "stage",
    "days_since_activity",
    "close_date",
    "event_at",
    "label",
    "manager_id",
    "already_lost",
}


BUDGET = 5  # alerts per manager per week
ANY_RULE = "any_rule"
QUALITY_SCHEMA = {
    "signal": pl.String,
    "flagged": pl.Int64,
    "precision": pl.Float64,
    "recall": pl.Float64,
    "f1": pl.Float64,
    "precision_at_k": pl.Float64,
    "recall_at_k": pl.Float64,
    "pr_auc": pl.Float64,
    "base_rate": pl.Float64,
    "dollar_recall": pl.Float64,
    "median_warning_days": pl.Float64,
}


def _flag_columns(bt: Backtest) -> pl.DataFrame:
    """Each signal as a severity (null = not flagged); the model flags at the threshold."""
    rules = [s for s in bt.signals if s not in ("model", NAIVE)]
    return bt.scored.with_columns(
        pl.when(pl.col("model") >= MODEL_THRESHOLD).then("model").otherwise(None).alias("_model"),
        pl.sum_horizontal([pl.col(r).is_not_null().cast(pl.Float64) for r in rules])
        .replace(0.0, None)
        .alias(ANY_RULE),
    )


def _one(
    d: pl.DataFrame, col: str, rank_col: str, budget: int, positives: int, dollars: float
) -> dict[str, Any]:
    flagged = d.filter(pl.col(col).is_not_null())
    tp = flagged.filter("label")
    precision = len(tp) / len(flagged) if len(flagged) else None
    recall = len(tp) / positives if positives else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision and recall
        else 0.0
        if precision is not None
        else None
    )
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
        .agg(days=(pl.col("event_at") - pl.col("as_of")).max().dt.total_days())["days"]
        .median()
    )
    return {
        "signal": col,
        "flagged": len(flagged),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "precision_at_k": top["label"].mean() if len(top) else None,
        "recall_at_k": top["label"].sum() / positives if positives else None,
        "pr_auc": float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else None,
        "base_rate": positives / len(d) if len(d) else None,
        "dollar_recall": float(tp["amount"].sum()) / dollars if dollars else None,
        "median_warning_days": warning,
    }


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
