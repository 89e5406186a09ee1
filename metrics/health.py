"""Stack health for the weekly review: activity, overrides, errors and uptime over time.

Pure reads of ops.* (and row counts of crm.*) returning polars frames. Hours of work
automated are in metrics/effort.py; the data-quality trend comes from the stored
audit snapshots.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from revstack.data.warehouse import first_row, frame

__all__ = [
    "weekly_activity",
    "records_touched",
    "weekly_runs",
    "agent_uptime",
    "score_trend",
    "last_change",
]

_WEEKLY = """
SELECT date_trunc('week', created_at) AS week, agent,
       count(*) FILTER (WHERE NOT shadow) AS proposals,
       count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL) AS auto_applied,
       count(*) FILTER (WHERE status IN ('approved', 'edited', 'rejected')) AS reviewed,
       count(*) FILTER (WHERE status = 'approved') AS approved_unchanged,
       count(*) FILTER (WHERE status = 'edited') AS edited,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status IN ('edited', 'rejected')) AS overridden,
       count(*) FILTER (WHERE status = 'rolled_back') AS rolled_back,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE shadow) AS shadow,
       median(epoch(decided_at - created_at) / 3600)
           FILTER (WHERE status IN ('approved', 'edited', 'rejected')) AS median_decision_hours
FROM ops.proposals WHERE created_at >= $since
GROUP BY ALL ORDER BY week, agent
"""

_TOUCHED = """
WITH totals AS (
    SELECT 'accounts' AS object_type, count(*) AS n FROM crm.accounts
    UNION ALL SELECT 'contacts', count(*) FROM crm.contacts
    UNION ALL SELECT 'opportunities', count(*) FROM crm.opportunities
), touched AS (
    SELECT object_type, count(DISTINCT record_id) AS touched FROM ops.audit_log
    WHERE action = 'apply'
      AND logged_at >= (SELECT max(logged_at) FROM ops.audit_log) - to_days(CAST($days AS INTEGER))
    GROUP BY object_type
)
SELECT t.object_type, t.n AS records, coalesce(x.touched, 0) AS touched_30d
FROM totals t LEFT JOIN touched x USING (object_type) ORDER BY t.object_type
"""

_WEEKLY_RUNS = """
SELECT date_trunc('week', started_at) AS week, agent, count(*) AS runs,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM ops.runs WHERE started_at >= $since
GROUP BY ALL ORDER BY week, agent
"""

# Each run's outcome holds from the moment it finished until the next run of the same
# agent finished (the last one until now): the agent is "up" while its latest run
# succeeded. The span before the first run is not counted.
_UPTIME = """
WITH spans AS (
    SELECT agent, run_id, status, finished_at, error,
           lead(finished_at, 1, $now) OVER (PARTITION BY agent ORDER BY finished_at, run_id)
               AS until
    FROM ops.runs
)
SELECT agent,
       sum(epoch(greatest(until - finished_at, INTERVAL 0 SECOND)))
           FILTER (WHERE status = 'succeeded') AS up_seconds,
       sum(epoch(greatest(until - finished_at, INTERVAL 0 SECOND))) AS seconds,
       first(status ORDER BY finished_at DESC, run_id DESC) AS last_status,
       max(finished_at) AS last_run,
       max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
       first(error ORDER BY finished_at DESC, run_id DESC) AS last_error
FROM spans GROUP BY agent ORDER BY agent
"""

_SCORES = """
SELECT snapshot_id, taken_at, as_of, score FROM ops.dq_snapshots ORDER BY snapshot_id
"""

# Everything the dashboard shows changes one of these: decisions, runs, policy and
# people changes append audit rows; audits add snapshots; imports add import rows;
# a regenerated warehouse restarts the counts.
_LAST_CHANGE = """
SELECT (SELECT max(seq) FROM ops.audit_log), (SELECT count(*) FROM ops.audit_log),
       (SELECT max(snapshot_id) FROM ops.dq_snapshots), (SELECT max(import_id) FROM ops.imports),
       (SELECT count(*) FROM ops.proposals), (SELECT max(run_id) FROM ops.runs),
       (SELECT count(*) FROM ops.runs)
"""


def _rate(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def weekly_activity(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime = dt.datetime.min
) -> pl.DataFrame:
    """Per week (of proposal) and agent: proposals (live), auto-applied, reviewed, approved
    unchanged, edited, rejected, rolled back, pending, shadow, the override rate
    (edited + rejected) / reviewed, the reviewers' agreement (approved unchanged /
    reviewed) and the median hours from proposal to decision."""
    out = frame(con, _WEEKLY, {"since": since})
    return out.with_columns(
        override_rate=_rate("overridden", "reviewed"),
        agreement=_rate("approved_unchanged", "reviewed"),
    )


def records_touched(con: duckdb.DuckDBPyConnection, *, days: int = 30) -> pl.DataFrame:
    """Share of CRM records an agent wrote in the last ``days`` days of the audit log (up
    to its latest row, not the wall clock: a warehouse looked at a month after its last
    run, or a simulated quarter, still shows its last month's work)."""
    out = frame(con, _TOUCHED, {"days": days})
    return out.with_columns(share=_rate("touched_30d", "records").fill_null(0.0))


def weekly_runs(
    con: duckdb.DuckDBPyConnection, *, since: dt.datetime = dt.datetime.min
) -> pl.DataFrame:
    """Per week and agent: runs, failed runs and the error rate."""
    out = frame(con, _WEEKLY_RUNS, {"since": since})
    return out.with_columns(error_rate=_rate("failed", "runs"))


def agent_uptime(con: duckdb.DuckDBPyConnection, *, now: dt.datetime | None = None) -> pl.DataFrame:
    """Per agent that has run: uptime (share of time since its first run during which
    its latest run had succeeded), last status, last run, last success, last error."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    out = frame(con, _UPTIME, {"now": now})
    # A single run that just finished spans no time yet: its status is the whole story.
    return out.with_columns(
        uptime=pl.when(pl.col("seconds") > 0)
        .then(pl.col("up_seconds").fill_null(0.0) / pl.col("seconds"))
        .otherwise((pl.col("last_status") == "succeeded").cast(pl.Float64))
    ).drop("up_seconds", "seconds")


def score_trend(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The data-quality score of every stored audit, oldest first."""
    return frame(con, _SCORES)


def last_change(con: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """A cheap fingerprint of the warehouse's state: equal fingerprints, equal pages.

    The dashboard keys its caches on it, so a decision, a run, an audit or an import
    shows on the next render; it never serves data older than the last change.
    """
    return first_row(con, _LAST_CHANGE) or ()
