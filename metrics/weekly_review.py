"""The weekly review's one table: every agent's precision and recall, and their trend.

Precision is measured against the generator's truth where there is a verdict for the
agent's proposals (``metrics.verdicts``) or a stored backtest (pipeline health's flags),
else against people: the share of the agent's proposals that people judged one by one
and approved unchanged, or for a task (an outbound draft) marked done (the rest of a
batch, decided in one act, is not a judgement of its own). Recall needs to know what the agent
should have found, so it comes only from truth: the injected defects the hygiene agent
caught, and pipeline health's latest stored backtest (its learned score's recall at the
alert budget). Each row also carries the precision of the last eight weeks, by the
week the proposals were made (truth) or decided (people), for a sparkline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine import wilson
from revstack.data.warehouse import frame, scalar
from revstack.metrics.hygiene import defects_found
from revstack.metrics.remembered import remembered
from revstack.metrics.verdicts import truth_verdicts

__all__ = ["agent_quality"]

_AGENTS = "SELECT DISTINCT agent FROM ops.proposals ORDER BY agent"
_PROPOSED = """
SELECT proposal_id, agent, date_trunc('week', created_at) AS week FROM ops.proposals
WHERE NOT shadow
"""
_JUDGED = """
SELECT agent, date_trunc('week', decided_at) AS week, status IN ('approved', 'done') AS right_
FROM ops.proposals p
WHERE NOT shadow AND status IN ('approved', 'edited', 'rejected', 'done', 'dismissed')
  AND decided_at IS NOT NULL
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""
_BACKTEST = """
SELECT precision_at_k, recall_at_k FROM ops.risk_backtests
WHERE backtest_id = (SELECT max(backtest_id) FROM ops.risk_backtests)
  AND population = 'live' AND signal = 'model'
"""
_HAS_DEFECTS = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = 'truth' AND table_name = 'defects'
"""
_WEEKS = 8


def _trend(rows: pl.DataFrame, until: dt.datetime | None) -> list[float | None]:
    """The share right per week for the last eight weeks (None where nothing counted)."""
    if rows.is_empty() or until is None:
        return []
    weekly = dict(rows.group_by("week").agg(pl.col("right_").mean()).iter_rows())
    start = until - dt.timedelta(weeks=_WEEKS - 1)
    weeks = [start + dt.timedelta(weeks=i) for i in range(_WEEKS)]
    return [None if weekly.get(w) is None else float(weekly[w]) for w in weeks]


@remembered  # what truth judged, by agent and week: no decision changes it
def _by_truth(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    verdicts = truth_verdicts(con).rename({"correct": "right_"})
    return frame(con, _PROPOSED).join(verdicts, on="proposal_id")


def agent_quality(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per agent that has proposed anything (see the module doc)."""
    agents = frame(con, _AGENTS)["agent"].to_list()
    by_truth = _by_truth(con)
    by_people = frame(con, _JUDGED)
    weeks = [*by_truth["week"].drop_nulls().to_list(), *by_people["week"].drop_nulls().to_list()]
    latest: dt.datetime | None = max(weeks, default=None)
    recall: dict[str, tuple[float | None, str]] = {}
    if int(scalar(con, _HAS_DEFECTS) or 0):
        found = defects_found(con)
        caught = sum(r["found"] for r in found.values())
        injected = sum(r["injected"] for r in found.values())
        if injected:
            recall["crm_hygiene"] = (caught / injected, "truth: injected defects caught")
    backtest = frame(con, _BACKTEST)
    backtested: dict[str, float] = {}
    if not backtest.is_empty():
        recall["pipeline_health"] = (
            backtest["recall_at_k"][0],
            "truth: latest backtest, the learned score at the alert budget",
        )
        backtested["pipeline_health"] = backtest["precision_at_k"][0]
    rows: list[dict[str, Any]] = []
    for agent in agents:
        t = by_truth.filter(pl.col("agent") == agent)
        source, part = (
            ("truth", t) if len(t) else ("people", by_people.filter(pl.col("agent") == agent))
        )
        n, right = len(part), int(part["right_"].sum()) if len(part) else 0
        interval = wilson(right, n)
        rec, rec_source = recall.get(agent, (None, None))
        if agent in backtested and not len(t):  # its flags are judged by the backtest
            rows.append(
                {
                    "agent": agent,
                    "precision": backtested[agent],
                    "precision_low": None,
                    "precision_high": None,
                    "judged": None,
                    "precision_from": "truth: backtest",
                    "recall": rec,
                    "recall_from": rec_source,
                    "weekly_precision": [],
                }
            )
            continue
        rows.append(
            {
                "agent": agent,
                "precision": right / n if n else None,
                "precision_low": interval[0] if interval else None,
                "precision_high": interval[1] if interval else None,
                "judged": n,
                "precision_from": source if n else None,
                "recall": rec,
                "recall_from": rec_source,
                "weekly_precision": _trend(part, latest) if n else [],
            }
        )
    schema = {
        "agent": pl.String(),
        "precision": pl.Float64(),
        "precision_low": pl.Float64(),
        "precision_high": pl.Float64(),
        "judged": pl.Int64(),
        "precision_from": pl.String(),
        "recall": pl.Float64(),
        "recall_from": pl.String(),
        "weekly_precision": pl.List(pl.Float64()),
    }
    return pl.DataFrame(rows, schema=pl.Schema(schema))
