"""The feedback channel in numbers: flags per agent, where they stand, how fast they close."""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["feedback_by_agent"]

_BY_AGENT = """
SELECT agent,
       count(*) AS flags,
       count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
       count(*) FILTER (WHERE status = 'addressed') AS addressed,
       median(epoch(addressed_at - flagged_at) / 86400.0) AS median_days_to_address
FROM ops.feedback
GROUP BY agent ORDER BY agent
"""


def feedback_by_agent(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per agent that has been flagged: how many flags, open, acknowledged and
    addressed, and the median days from a flag to its answer."""
    return frame(con, _BY_AGENT)
