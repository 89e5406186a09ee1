"""A stand-in agent report (the shape metrics.agents.REPORTS modules return), computed
from the warehouse, to prove the Agents page draws measures it has never seen."""

from __future__ import annotations

from typing import Any

import duckdb

_DECIDED = """
SELECT count(*) FILTER (WHERE status = 'approved'), count(*) FILTER (WHERE status IN ('approved', 'edited', 'rejected'))
FROM ops.proposals WHERE agent = 'filler'
"""
_WEEKLY = """
SELECT date_trunc('week', created_at) AS week, action_type, avg(confidence) AS mean_confidence
FROM ops.proposals WHERE agent = 'filler' GROUP BY ALL ORDER BY 1, 2
"""


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    approved, reviewed = con.execute(_DECIDED).fetchall()[0]
    rows = con.execute(_WEEKLY).fetchall()
    return {
        "precision": approved / reviewed if reviewed else None,
        "reviewed": reviewed,
        "confidence_by_week": [
            {"week": w, "action_type": a, "mean_confidence": c} for w, a, c in rows
        ],
        "about": {"stages": len(definitions.stages)},
    }
