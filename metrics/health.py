"""Stack health for the weekly review: activity, overrides and errors over time."""

from __future__ import annotations

import duckdb
import polars as pl

from data.warehouse import frame

__all__ = ["weekly_activity", "records_touched"]

_WEEKLY = """
SELECT date_trunc('week', created_at) AS week, agent,
       count(*) AS proposals,
       count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL) AS auto_applied,
       count(*) FILTER (WHERE status IN ('approved', 'edited', 'rejected')) AS reviewed,
       count(*) FILTER (WHERE status IN ('edited', 'rejected')) AS overridden
FROM ops.proposals WHERE NOT shadow
GROUP BY ALL ORDER BY week, agent
"""

_TOUCHED = """
WITH totals AS (
    SELECT 'accounts' AS object_type, count(*) AS n FROM crm.accounts
    UNION ALL SELECT 'contacts', count(*) FROM crm.contacts
    UNION ALL SELECT 'opportunities', count(*) FROM crm.opportunities
), touched AS (
    SELECT object_type, count(DISTINCT record_id) AS touched FROM ops.audit_log
    WHERE action = 'apply' AND logged_at >= now()::TIMESTAMP - INTERVAL 30 DAY
    GROUP BY object_type
)
SELECT t.object_type, t.n AS records, coalesce(x.touched, 0) AS touched_30d
FROM totals t LEFT JOIN touched x USING (object_type) ORDER BY t.object_type
"""


def weekly_activity(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per week and agent: proposals, auto-applied, reviewed, overridden, override rate."""
    out = frame(con, _WEEKLY)
    return out.with_columns(
        override_rate=pl.when(pl.col("reviewed") > 0)
        .then(pl.col("overridden") / pl.col("reviewed"))
        .otherwise(None)
    )


def records_touched(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Share of CRM records an agent wrote in the last 30 days, per object."""
    out = frame(con, _TOUCHED)
    return out.with_columns(
        share=pl.when(pl.col("records") > 0)
        .then(pl.col("touched_30d") / pl.col("records"))
        .otherwise(0.0)
    )
