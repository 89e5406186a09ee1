"""The feedback channel: a person flags an agent's output, the agent's people answer.

``flag_output`` is open to every signed-in person, viewers too: whoever sees a wrong
risk flag, briefing statement, forecast, applied change or draft says so where they see
it. Reviewers and admins ``acknowledge`` a flag and ``address`` it, saying what changed.
Every step is one transaction with its audit row.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row, frame, scalar

__all__ = ["FEEDBACK_KINDS", "acknowledge", "address", "feedback", "flag_output"]

FEEDBACK_KINDS = ("risk_flag", "briefing", "forecast", "change", "draft", "proposal")

_NEXT = "SELECT 'fb-' || nextval('ops.feedback_seq')"
_INSERT = """
INSERT INTO ops.feedback (feedback_id, agent, output_kind, output_ref, note, flagged_by,
    flagged_at, status)
VALUES ($id, $agent, $kind, $ref, $note, $by, $at, 'open')
"""
_GET = "SELECT status, agent, output_kind, output_ref FROM ops.feedback WHERE feedback_id = $id"
_ACK = """
UPDATE ops.feedback SET status = 'acknowledged', acknowledged_by = $by, acknowledged_at = $at
WHERE feedback_id = $id AND status = 'open'
"""
_ADDRESS = """
UPDATE ops.feedback SET status = 'addressed', addressed_by = $by, addressed_at = $at,
    resolution = $resolution,
    acknowledged_by = coalesce(acknowledged_by, $by), acknowledged_at = coalesce(acknowledged_at, $at)
WHERE feedback_id = $id AND status IN ('open', 'acknowledged')
"""
_LIST = """
SELECT * FROM ops.feedback
WHERE ($status IS NULL OR status = $status) AND ($agent IS NULL OR agent = $agent)
ORDER BY flagged_at DESC, feedback_id DESC
"""


def _entry(
    by: str, action: str, feedback_id: str, row: tuple[str, str, str, str], detail: dict[str, str]
) -> AuditEntry:
    _, agent, kind, ref = row
    return AuditEntry(
        actor=by,
        actor_kind="person",
        action=action,
        object_type=f"feedback:{kind}",
        record_id=ref,
        proposal_id=feedback_id,
        detail=to_json({"agent": agent, **detail}),
    )


def flag_output(wh: Warehouse, *, by: str, agent: str, kind: str, ref: str, note: str) -> str:
    """Flag an agent's output with a note; the new flag's id."""
    if kind not in FEEDBACK_KINDS:
        raise EngineError(f"unknown output kind {kind!r}; one of {', '.join(FEEDBACK_KINDS)}")
    if not note.strip():
        raise EngineError("a flag needs a note saying what is wrong (--note)")
    if not (agent.strip() and ref.strip()):
        raise EngineError("a flag names the agent and the output it is about")

    def work(con: duckdb.DuckDBPyConnection) -> str:
        require_role(con, by, "viewer")
        feedback_id = str(scalar(con, _NEXT))
        at = now_utc()
        params = {"id": feedback_id, "agent": agent, "kind": kind, "ref": ref, "note": note}
        con.execute(_INSERT, {**params, "by": by, "at": at})
        append(
            con,
            [_entry(by, "feedback", feedback_id, ("open", agent, kind, ref), {"note": note})],
            at=at,
        )
        return feedback_id

    return in_transaction(wh, work)


def _move(
    wh: Warehouse, feedback_id: str, by: str, sql: str, action: str, detail: dict[str, str]
) -> None:
    def work(con: duckdb.DuckDBPyConnection) -> None:
        require_role(con, by, "reviewer")
        row = first_row(con, _GET, {"id": feedback_id})
        if row is None:
            raise EngineError(f"no feedback {feedback_id!r}")
        at = now_utc()
        changed = first_row(con, sql, {"id": feedback_id, "by": by, "at": at, **detail})
        if not changed or int(changed[0]) != 1:
            raise EngineError(f"{feedback_id} is already {row[0]}; nothing changed")
        append(con, [_entry(by, action, feedback_id, tuple(row), detail)], at=at)

    in_transaction(wh, work)


def acknowledge(wh: Warehouse, feedback_id: str, *, by: str) -> None:
    """Someone responsible has seen the flag (reviewers and admins)."""
    _move(wh, feedback_id, by, _ACK, "feedback_ack", {})


def address(wh: Warehouse, feedback_id: str, *, by: str, resolution: str) -> None:
    """Close a flag saying what changed (a threshold, a contract, a fix, or why nothing)."""
    if not resolution.strip():
        raise EngineError("addressing a flag says what changed (--resolution)")
    _move(wh, feedback_id, by, _ADDRESS, "feedback_addressed", {"resolution": resolution})


def feedback(
    con: duckdb.DuckDBPyConnection, *, status: str | None = None, agent: str | None = None
) -> pl.DataFrame:
    """Flags, newest first, filtered by status and agent."""
    return frame(con, _LIST, {"status": status, "agent": agent})
