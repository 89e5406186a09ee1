"""Tier-3 tasks that nobody acted on leave the list after their contract's days.

A task is work for a person outside the stack (a draft to send, a call to make). Left
alone, the list only grows: a simulated quarter of the mid company ended with 28,327
drafts waiting, two thousand more a week. An action type whose contract sets
``expires_after_days`` has its waiting tasks marked ``expired`` at the start of the next
run after that age, each with a system row in the audit log. Expired is no one's
verdict: it is not an override, not a dismissal, and counts in no reviewer's figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

import duckdb
import polars as pl

from revstack.agents.engine._audit import append
from revstack.data.warehouse import frame, registered

__all__ = ["expire_tasks"]


class Expiring(Protocol):
    """What expiry reads of an agent's spec (``AgentSpec``; _run imports this module, so
    naming that class here would make an import cycle)."""

    @property
    def name(self) -> str: ...

    @property
    def expiry(self) -> Mapping[str, int]: ...


_DUE = """
SELECT p.proposal_id, p.agent, p.action_type, p.object_type, p.record_id, p.field, p.run_id,
       l.days
FROM ops.proposals p JOIN task_limits l ON p.agent = l.agent AND p.action_type = l.action_type
WHERE p.status = 'task' AND p.created_at <= $now - to_days(l.days)
ORDER BY p.proposal_id
"""
# Read, then a plain UPDATE of what was read: a decision another transaction made
# meanwhile raises a conflict here (the unit runs again and sees it). UPDATE ...
# RETURNING on ops.proposals (indexed) would overwrite it with no error
# (docs/design.md, The silent lost update).
_EXPIRE = """
UPDATE ops.proposals SET status = 'expired', decided_at = $now
WHERE proposal_id IN (SELECT proposal_id FROM due) AND status = 'task'
"""


def expire_tasks(
    con: duckdb.DuckDBPyConnection, specs: Sequence[Expiring], *, now: dt.datetime
) -> int:
    """Mark the tasks past their action type's age expired, inside the caller's
    transaction; returns how many."""
    limits = [(s.name, action, days) for s in specs for action, days in s.expiry.items()]
    if not limits:
        return 0
    table = pl.DataFrame(
        limits,
        schema={"agent": pl.String, "action_type": pl.String, "days": pl.Int32},
        orient="row",
    )
    with registered(con, "task_limits", table):
        gone = frame(con, _DUE, {"now": now})
    if gone.is_empty():
        return 0
    with registered(con, "due", gone.select("proposal_id")):
        [(changed,)] = con.execute(_EXPIRE, {"now": now}).fetchall()
    if changed != len(gone):  # one audit row per task marked, or the unit runs again
        raise duckdb.TransactionException("Conflict on an expiring task; retry")
    entries = gone.select(
        actor=pl.lit("engine"),
        actor_kind=pl.lit("system"),
        action=pl.lit("expire"),
        object_type="object_type",
        record_id="record_id",
        field="field",
        proposal_id="proposal_id",
        run_id="run_id",
        detail=pl.concat_str(
            pl.lit('{"reason": "no one acted on it in '),
            pl.col("days").cast(pl.String),
            pl.lit(' days"}'),
        ),
    )
    return append(con, entries, at=now)
