"""Briefings as people use them: find one, read it, and the mark that it was opened.

An open is one appended row of ``ops.briefing_opens`` (who, when, where): nothing is
updated, so two people opening briefings at once cannot lose each other's marks
(docs/design.md, The silent lost update). Anyone known to ``ops.people`` may open a briefing.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row, frame

__all__ = [
    "CHANNELS",
    "briefing",
    "deal_exists",
    "latest_briefing",
    "list_briefings",
    "record_open",
]

CHANNELS = ("cli", "dashboard")
_ONE = """
SELECT briefing_id, opportunity_id, account_id, meeting_id, meeting_at, data_as_of,
       generated_at, statements, cited, warnings, prose, markdown, html, citations
FROM ops.briefings WHERE briefing_id = $id
"""
_LATEST = """
SELECT briefing_id FROM ops.briefings
WHERE opportunity_id = $opp AND ($meeting IS NULL OR meeting_id = $meeting)
ORDER BY generated_at DESC, briefing_id DESC LIMIT 1
"""
_EXISTS = "SELECT 1 FROM ops.briefings WHERE briefing_id = $id"
_DEAL = "SELECT 1 FROM crm.opportunities WHERE opportunity_id = $id"
_OPEN = "INSERT INTO ops.briefing_opens VALUES ($id, $by, $at, $channel)"
_LIST = """
SELECT b.briefing_id, b.opportunity_id, b.meeting_id, b.meeting_at, b.generated_at,
       b.statements, b.warnings, b.prose, count(o.briefing_id) AS opens
FROM ops.briefings b LEFT JOIN ops.briefing_opens o USING (briefing_id)
WHERE ($opp IS NULL OR b.opportunity_id = $opp)
GROUP BY ALL ORDER BY b.meeting_at NULLS LAST, b.generated_at DESC LIMIT $limit
"""


def briefing(wh: Warehouse, briefing_id: str) -> dict[str, object]:
    """One briefing, every column; an unknown id is refused."""
    with wh.connect() as con:
        df = frame(con, _ONE, {"id": briefing_id})
    if df.is_empty():
        raise EngineError(f"no briefing {briefing_id!r}")
    return df.row(0, named=True)


def deal_exists(wh: Warehouse, opportunity_id: str) -> bool:
    with wh.connect() as con:
        return first_row(con, _DEAL, {"id": opportunity_id}) is not None


def latest_briefing(
    wh: Warehouse, opportunity_id: str, meeting_id: str | None = None
) -> str | None:
    """The id of the newest briefing of a deal (for one meeting, if given)."""
    with wh.connect() as con:
        row = first_row(con, _LATEST, {"opp": opportunity_id, "meeting": meeting_id})
    return None if row is None else str(row[0])


def list_briefings(
    wh: Warehouse, *, opportunity_id: str | None = None, limit: int = 200
) -> pl.DataFrame:
    """Briefings with how often each was opened, upcoming meetings first."""
    with wh.connect() as con:
        return frame(con, _LIST, {"opp": opportunity_id, "limit": limit})


def record_open(wh: Warehouse, briefing_id: str, *, by: str, channel: str = "cli") -> None:
    """Append that ``by`` opened the briefing (utilization)."""
    if channel not in CHANNELS:
        raise EngineError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")

    def work(con: duckdb.DuckDBPyConnection) -> None:
        require_role(con, by, "viewer")
        if first_row(con, _EXISTS, {"id": briefing_id}) is None:
            raise EngineError(f"no briefing {briefing_id!r}")
        con.execute(_OPEN, {"id": briefing_id, "by": by, "at": now_utc(), "channel": channel})

    in_transaction(wh, work)
