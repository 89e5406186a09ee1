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
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from revstack.agents.engine._audit import append
from revstack.data.warehouse import frame, registered

if TYPE_CHECKING:
    from revstack.agents.engine._run import AgentSpec

__all__ = ["expire_tasks"]

_EXPIRE = """
UPDATE ops.proposals p SET status = 'expired', decided_at = $now
FROM task_limits l
WHERE p.status = 'task' AND p.agent = l.agent AND p.action_type = l.action_type
  AND p.created_at <= $now - to_days(l.days)
RETURNING proposal_id, agent, action_type, object_type, record_id, field, run_id
"""


def expire_tasks(
    con: duckdb.DuckDBPyConnection, specs: Sequence[AgentSpec], *, now: dt.datetime
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
        gone = frame(con, _EXPIRE, {"now": now})
    if gone.is_empty():
        return 0
    gone = gone.join(table, on=["agent", "action_type"], how="left").sort("proposal_id")
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
