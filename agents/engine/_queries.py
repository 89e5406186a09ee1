"""Read-side views of the engine's tables for the CLI and the dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["list_proposals", "count_proposals", "audit_rows", "get_proposal"]

_PROPOSALS = """
SELECT proposal_id, agent, action_type, object_type, record_id, field, old_value, new_value,
       round(confidence, 3) AS confidence, tier, status, shadow, reason, tier_reason,
       evidence, created_at, decided_by, decided_at, run_id
FROM ops.proposals
WHERE ($status IS NULL OR status = $status)
  AND ($agent IS NULL OR agent = $agent)
  AND ($tier IS NULL OR tier = $tier)
ORDER BY created_at DESC, proposal_id DESC
LIMIT $limit
"""

_COUNTS = """
SELECT agent, count(*) AS proposals FROM ops.proposals
WHERE status = $status GROUP BY agent ORDER BY agent
"""

_AUDIT = """
SELECT seq, logged_at, actor, actor_kind, action, object_type, record_id, field, before,
       after, proposal_id, run_id, detail
FROM ops.audit_log
WHERE ($actor IS NULL OR actor = $actor)
  AND ($record IS NULL OR record_id = $record)
  AND ($field IS NULL OR field = $field)
  AND ($action IS NULL OR action = $action)
  AND ($since IS NULL OR logged_at >= $since)
  AND ($until IS NULL OR logged_at <= $until)
ORDER BY seq DESC
LIMIT $limit
"""


def list_proposals(
    con: duckdb.DuckDBPyConnection,
    *,
    status: str | None = "pending",
    agent: str | None = None,
    tier: int | None = None,
    limit: int = 200,
) -> pl.DataFrame:
    """Proposals, newest first, filtered by status (None = all), agent and tier."""
    params = {"status": status, "agent": agent, "tier": tier, "limit": limit}
    return frame(con, _PROPOSALS, params)


def count_proposals(con: duckdb.DuckDBPyConnection, *, status: str) -> pl.DataFrame:
    """How many proposals of ``status`` each agent has (agent, proposals): what a page
    counts, where ``list_proposals`` fetches only the newest for its cards."""
    return frame(con, _COUNTS, {"status": status})


def audit_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    actor: str | None = None,
    record: str | None = None,
    field: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 500,
) -> pl.DataFrame:
    """Audit log rows matching every given filter, newest first."""
    params = {
        "actor": actor,
        "record": record,
        "field": field,
        "action": action,
        "since": since,
        "until": until,
        "limit": limit,
    }
    return frame(con, _AUDIT, params)


_ONE = "SELECT * FROM ops.proposals WHERE proposal_id = $id"


def get_proposal(con: duckdb.DuckDBPyConnection, proposal_id: str) -> dict[str, Any] | None:
    """One proposal as a dict, or None when there is no such id."""
    rows = frame(con, _ONE, {"id": proposal_id}).to_dicts()
    return rows[0] if rows else None
