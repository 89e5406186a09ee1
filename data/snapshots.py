"""Writers for ops snapshot tables (data-quality audits)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import polars as pl

from revstack.data.warehouse import frame, registered, scalar

__all__ = ["save_quality_snapshot", "quality_history"]

_NEXT_ID = "SELECT nextval('ops.dq_snapshot_seq')"
_INSERT_SNAPSHOT = """
INSERT INTO ops.dq_snapshots (snapshot_id, taken_at, as_of, score, summary)
VALUES ($id, $taken_at, $as_of, $score, $summary)
"""
_INSERT_METRICS = """
INSERT INTO ops.dq_metrics
SELECT $id, check_kind, object_type, item, numerator, denominator, value FROM metrics_frame
"""
_HISTORY = """
SELECT s.snapshot_id, s.taken_at, s.as_of, s.score, m.check_kind, m.object_type, m.item,
       m.numerator, m.denominator, m.value
FROM ops.dq_snapshots s JOIN ops.dq_metrics m USING (snapshot_id)
ORDER BY s.snapshot_id, m.check_kind, m.object_type, m.item
"""


def save_quality_snapshot(
    con: duckdb.DuckDBPyConnection,
    *,
    taken_at: dt.datetime,
    as_of: dt.datetime | None,
    score: float,
    summary: dict[str, Any],
    metrics: pl.DataFrame,
) -> int:
    """Store one audit (its score, summary and every figure) in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        snapshot_id = int(scalar(con, _NEXT_ID))
        con.execute(
            _INSERT_SNAPSHOT,
            {
                "id": snapshot_id,
                "taken_at": taken_at,
                "as_of": as_of,
                "score": score,
                "summary": json.dumps(summary, default=str),
            },
        )
        with registered(con, "metrics_frame", metrics):
            con.execute(_INSERT_METRICS, {"id": snapshot_id})
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return snapshot_id


def quality_history(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stored audit figure, oldest snapshot first."""
    return frame(con, _HISTORY)
