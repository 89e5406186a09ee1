"""What the engine did, per agent and action type: the raw material of the trust ramp
and of stack health. Pure reads of ops.* returning polars frames."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["action_outcomes", "run_stats"]

# One row per agent and action type. "approved_unchanged" and "edited" are the
# reviewer's verdicts on tier-2 proposals; rolled_back counts applied writes undone.
_OUTCOMES = """
SELECT agent, action_type,
       count(*) AS proposals,
       count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL) AS auto_applied,
       count(*) FILTER (WHERE status = 'approved') AS approved_unchanged,
       count(*) FILTER (WHERE status = 'edited') AS edited,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'stale') AS stale,
       count(*) FILTER (WHERE status = 'blocked') AS blocked,
       count(*) FILTER (WHERE status = 'superseded') AS superseded,
       count(*) FILTER (WHERE status = 'rolled_back') AS rolled_back,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status IN ('task', 'done', 'dismissed', 'expired')) AS tasks,
       count(*) FILTER (WHERE status = 'expired') AS expired,
       count(*) FILTER (WHERE shadow) AS shadow
FROM ops.proposals
WHERE created_at >= $since
GROUP BY ALL
ORDER BY agent, action_type
"""

_RUNS = """
SELECT agent, count(*) AS runs,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       median(epoch(finished_at - started_at)) AS median_seconds,
       quantile_cont(epoch(finished_at - started_at), 0.95) AS p95_seconds,
       sum(events) AS events, sum(proposals) AS proposals, max(finished_at) AS last_run
FROM ops.runs
WHERE started_at >= $since
GROUP BY agent ORDER BY agent
"""


def action_outcomes(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime = dt.datetime.min
) -> pl.DataFrame:
    """Counts of every outcome per agent and action type, with the override rate.

    override_rate = (edited + rejected) / reviewed, where reviewed counts the
    tier-2 proposals a person decided on.
    """
    out = frame(con, _OUTCOMES, {"since": since})
    reviewed = pl.col("approved_unchanged") + pl.col("edited") + pl.col("rejected")
    return out.with_columns(
        reviewed=reviewed,
        override_rate=pl.when(reviewed > 0)
        .then((pl.col("edited") + pl.col("rejected")) / reviewed)
        .otherwise(None),
    )


def run_stats(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime = dt.datetime.min
) -> pl.DataFrame:
    """Runs per agent: count, failures (error rate), duration median and p95, last run."""
    out = frame(con, _RUNS, {"since": since})
    return out.with_columns(error_rate=pl.col("failed") / pl.col("runs"))
