"""Per-agent activity over time: which agents exist, and trigger-to-action latency.

Latency is measured from the oldest event a run consumed (the trigger: an import, a
changed record, a booked meeting, a schedule tick) to the moment the action took
effect: the end of the run for what the engine applied on its own, the decision for
what a person approved. A run with no events (forced, ``run --agent``) counts from
its start.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from revstack.data.warehouse import frame, registered
from revstack.metrics.remembered import remembered

__all__ = ["agents_seen", "trigger_latency", "agent_measures"]

_SEEN = """
SELECT agent FROM ops.runs UNION SELECT agent FROM ops.proposals ORDER BY agent
"""

_TRIGGERED = """
SELECT c.run_id, min(e.occurred_at) AS triggered_at
FROM ops.event_consumption c JOIN ops.events e USING (event_id)
GROUP BY c.run_id
"""
# ``triggered``: _TRIGGERED's rows, registered (each run's oldest event).
_LATENCY = """
WITH acted AS (
    SELECT p.agent, p.decided_by IS NULL AS automatic,
           CASE WHEN p.decided_by IS NULL THEN r.finished_at ELSE p.decided_at END AS acted_at,
           coalesce(t.triggered_at, r.started_at) AS triggered_at
    FROM ops.proposals p
    JOIN ops.runs r USING (run_id)
    LEFT JOIN triggered t USING (run_id)
    WHERE NOT p.shadow AND p.status IN ('applied', 'approved', 'edited', 'done')
)
SELECT CASE WHEN $by_week THEN date_trunc('week', acted_at) END AS week, agent, automatic,
       count(*) AS actions,
       median(epoch(acted_at - triggered_at)) AS median_seconds,
       quantile_cont(epoch(acted_at - triggered_at), 0.95) AS p95_seconds
FROM acted WHERE acted_at >= $since
GROUP BY ALL ORDER BY week, agent, automatic DESC
"""


def agents_seen(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every agent that has run or proposed anything (contracted or not)."""
    return frame(con, _SEEN)["agent"].to_list()


def trigger_latency(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime = dt.datetime.min, by_week: bool = True
) -> pl.DataFrame:
    """Per week (or the whole window, ``by_week=False``), agent and path (automatic or
    decided by a person): actions taken, median and p95 seconds from trigger to action."""
    with registered(con, "triggered", _triggered(con)):
        out = frame(con, _LATENCY, {"since": since, "by_week": by_week})
    return out if by_week else out.drop("week")


@remembered  # each run's oldest event: written by runs, read anew after a decision otherwise
def _triggered(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, _TRIGGERED)


def agent_measures(con: duckdb.DuckDBPyConnection, agent: str) -> dict[str, Any] | None:
    """The agent's own measures against truth and reviewers (``metrics.agents.REPORTS``),
    or None where it has none yet. An agent registering a report shows on the Agents
    page with no change to the page."""
    from revstack.contracts import load_definitions
    from revstack.metrics.agents import agent_report

    return agent_report(con, agent, load_definitions(), known={agent}, stored=True)["measures"]
