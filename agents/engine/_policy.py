"""Policy changes made by named people: tier and threshold overrides, agent modes.

Each change is a new row (older ones for the same agent and action are marked
inactive, never deleted) and an audit row. Overrides sit on top of the contract
at routing time; nothing can make the engine execute a tier-3 action.
"""

from __future__ import annotations

import uuid

import duckdb
import polars as pl

from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row, frame

__all__ = ["set_policy", "set_mode", "active_policy", "demote_in", "MODES"]

MODES = ("live", "shadow")

_CURRENT = """
SELECT tier, min_confidence FROM ops.policy
WHERE agent = $agent AND action_type = $action AND active
"""
_DEACTIVATE = """
UPDATE ops.policy SET active = false
WHERE agent = $agent AND action_type = $action AND active
"""
_INSERT = """
INSERT INTO ops.policy VALUES ($id, $agent, $action, $tier, $min_conf, $by, $at, $reason, true)
"""
_ACTIVE_ROW = """
SELECT policy_id, tier, min_confidence FROM ops.policy
WHERE agent = $agent AND action_type = $action AND active
"""
_ACTIVE = """
SELECT agent, action_type, tier, min_confidence, changed_by, changed_at, reason
FROM ops.policy WHERE active ORDER BY agent, action_type
"""
_MODE_GET = "SELECT mode FROM ops.agent_modes WHERE agent = $agent"
_MODE_SET = """
INSERT INTO ops.agent_modes VALUES ($agent, $mode, $by, $at)
ON CONFLICT (agent) DO UPDATE SET mode = excluded.mode, changed_by = excluded.changed_by,
    changed_at = excluded.changed_at
"""


def set_policy(
    wh: Warehouse,
    *,
    agent: str,
    action_type: str,
    by: str,
    reason: str,
    tier: int | None = None,
    min_confidence: float | None = None,
    contract_tier: int | None = None,
) -> str:
    """Override an action's tier and/or threshold; returns the policy id.

    ``contract_tier`` is the action's tier in the agent's contract, when known: a
    tier-3 action cannot be overridden at all.
    """
    if tier is None and min_confidence is None:
        raise EngineError("a policy change sets --tier, --min-confidence or both")
    if tier is not None and tier not in (1, 2, 3):
        raise EngineError(f"tier must be 1, 2 or 3, got {tier}")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise EngineError(f"min_confidence must be within 0..1, got {min_confidence}")
    if contract_tier == 3:
        raise EngineError(
            f"{agent}.{action_type} is tier 3 in its contract: a person must always act; no policy can change that"
        )
    if not reason.strip():
        raise EngineError("a policy change needs a reason")
    policy_id = "pol-" + uuid.uuid4().hex[:10]

    def work(con: duckdb.DuckDBPyConnection) -> str:
        require_role(con, by, "admin")
        before = first_row(con, _CURRENT, {"agent": agent, "action": action_type})
        con.execute(_DEACTIVATE, {"agent": agent, "action": action_type})
        at = now_utc()
        con.execute(
            _INSERT,
            {
                "id": policy_id,
                "agent": agent,
                "action": action_type,
                "tier": tier,
                "min_conf": min_confidence,
                "by": by,
                "at": at,
                "reason": reason,
            },
        )
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="policy",
                    object_type="agent_action",
                    record_id=f"{agent}.{action_type}",
                    field="tier/min_confidence",
                    before=to_json(
                        None if before is None else {"tier": before[0], "min_confidence": before[1]}
                    ),
                    after=to_json({"tier": tier, "min_confidence": min_confidence}),
                    detail=to_json({"reason": reason, "policy_id": policy_id}),
                )
            ],
            at=at,
        )
        return policy_id

    return in_transaction(wh, work)


def demote_in(
    con: duckdb.DuckDBPyConnection,
    *,
    agent: str,
    action_type: str,
    graduation: str,
    reason: str,
    evidence: dict[str, object],
    at: object,
) -> AuditEntry | None:
    """Inside the caller's transaction: put ``agent.action_type`` back to tier 2 if the
    graduation ``graduation`` is still the policy in force; the audit entry to append
    (the engine is the actor, ``evidence`` says what it saw), or None if a person has
    changed the policy since."""
    current = first_row(con, _ACTIVE_ROW, {"agent": agent, "action": action_type})
    if current is None or current[0] != graduation or current[1] != 1:
        return None
    policy_id = "pol-" + uuid.uuid4().hex[:10]
    con.execute(_DEACTIVATE, {"agent": agent, "action": action_type})
    con.execute(
        _INSERT,
        {
            "id": policy_id,
            "agent": agent,
            "action": action_type,
            "tier": 2,
            "min_conf": current[2],
            "by": "engine",
            "at": at,
            "reason": reason,
        },
    )
    return AuditEntry(
        actor="engine",
        actor_kind="system",
        action="policy",
        object_type="agent_action",
        record_id=f"{agent}.{action_type}",
        field="tier/min_confidence",
        before=to_json({"tier": 1, "min_confidence": current[2]}),
        after=to_json({"tier": 2, "min_confidence": current[2]}),
        detail=to_json(
            {"reason": reason, "policy_id": policy_id, "demotes": graduation, **evidence}
        ),
    )


def set_mode(wh: Warehouse, *, agent: str, mode: str, by: str) -> None:
    """Put an agent in shadow or live mode (admins only; logged)."""
    if mode not in MODES:
        raise EngineError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")

    def work(con: duckdb.DuckDBPyConnection) -> None:
        require_role(con, by, "admin")
        before = first_row(con, _MODE_GET, {"agent": agent})
        at = now_utc()
        con.execute(_MODE_SET, {"agent": agent, "mode": mode, "by": by, "at": at})
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="policy",
                    object_type="agent",
                    record_id=agent,
                    field="mode",
                    before=to_json(before[0] if before else None),
                    after=to_json(mode),
                )
            ],
            at=at,
        )

    in_transaction(wh, work)


def active_policy(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every override in force."""
    return frame(con, _ACTIVE)
