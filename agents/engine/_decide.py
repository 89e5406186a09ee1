"""A named person decides on a proposal: approve, approve with an edit, or reject.

Every decision is one retried transaction that re-reads the proposal first, so
eight reviewers clicking at once produce one decision and one audit row; the
others are told who decided first and nothing changes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from revstack.agents.engine._apply import InvalidValue, apply_one
from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import check_role
from revstack.agents.engine._policy import demote_in
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row

__all__ = ["REASON_CODES", "Decision", "decide", "parse_value"]

# Reasons people give most often for an override, offered first; any short code will do.
REASON_CODES = (
    "wrong_value",
    "wrong_record",
    "stale_source",
    "missing_approval",
    "not_yet",
    "policy",
    "other",
)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_REASON = """
INSERT INTO ops.override_reasons VALUES ($id, $code, $by, $at)
"""

# Everything a decision reads, in one statement (each statement has a fixed cost however
# small: docs/engine.md, Benchmarks):
# the person's role, the proposal (null columns when there is none) and the audit
# chain's head. The row's rowid lets the UPDATE find it without a scan (DuckDB's UPDATE
# does not use the primary key); proposal_id and status still guard it.
_GET = """
SELECT (SELECT role FROM ops.people WHERE name = $by) AS role,
       (SELECT seq FROM ops.audit_head) AS head_seq, (SELECT hash FROM ops.audit_head) AS head,
       (SELECT policy_id FROM ops.continuous_samples WHERE proposal_id = $id) AS sampled_by,
       p.rowid, p.proposal_id, p.agent, p.run_id, p.action_type, p.object_type, p.record_id,
       p.field, p.old_value, p.new_value, p.tier, p.status, p.shadow, p.decided_by, p.decided_at
FROM (SELECT 1) one LEFT JOIN ops.proposals p ON p.proposal_id = $id
"""
_SET = """
UPDATE ops.proposals
SET status = $status, decided_at = $at, decided_by = $by, decision_note = $note,
    final_value = $final
WHERE rowid = $rowid AND proposal_id = $id AND status = $was
"""
# The lease is found by its key (the proposal's field), not by scanning for the id.
_RELEASE = """
UPDATE ops.field_leases SET released_at = $at
WHERE object_type = $object_type AND record_id = $record_id AND field = $field
  AND proposal_id = $id AND released_at IS NULL
"""


@dataclass(frozen=True)
class Decision:
    proposal_id: str
    outcome: str  # approved | edited | rejected | stale | done | dismissed | unchanged
    changed: bool
    message: str


def parse_value(text: str) -> str:
    """A value typed by a person, as JSON text: JSON if it parses ('42', 'null'), else a string."""
    try:
        json.loads(text)
        return text
    except ValueError:
        return to_json(text)


def decide(
    wh: Warehouse,
    proposal_id: str,
    *,
    approve: bool,
    by: str,
    note: str | None = None,
    value: str | None = None,
    reason_code: str | None = None,
) -> Decision:
    """Approve (optionally with an edited ``value``, JSON text) or reject a proposal.

    ``reason_code`` says why an edit or a rejection overrode the agent (``REASON_CODES``
    or any lower-case code of up to 40 letters, digits and underscores)."""
    if reason_code is not None and not _CODE.fullmatch(reason_code):
        raise EngineError(
            f"reason code {reason_code!r} is not a lower-case code (like {REASON_CODES[0]})"
        )
    if reason_code is not None and approve and value is None:
        raise EngineError("a reason code explains an edit or a rejection, not a plain approval")
    if not approve and not (note and note.strip()):
        raise EngineError("a rejection needs a note saying why (--note)")
    if not approve and value is not None:
        raise EngineError("--value edits an approval; a rejection takes only a note")
    return in_transaction(
        wh,
        lambda con: _decide(con, proposal_id, approve, by, note, value, reason_code),
        take_turns=True,  # reviewers' threads in one dashboard: docs/scale.md
    )


def _decide(
    con: duckdb.DuckDBPyConnection,
    proposal_id: str,
    approve: bool,
    by: str,
    note: str | None,
    value: str | None,
    reason_code: str | None = None,
) -> Decision:
    role, head_seq, head, sampled_by, *row = first_row(con, _GET, {"id": proposal_id, "by": by})  # type: ignore[misc]
    check_role(by, role, "reviewer")
    p: dict[str, Any] = dict(
        zip(
            (
                "rowid",
                "proposal_id",
                "agent",
                "run_id",
                "action_type",
                "object_type",
                "record_id",
                "field",
                "old_value",
                "new_value",
                "tier",
                "status",
                "shadow",
                "decided_by",
                "decided_at",
            ),
            row,
            strict=True,
        )
    )
    if p["proposal_id"] is None:
        raise EngineError(f"no proposal {proposal_id!r}")
    if p["shadow"]:
        raise EngineError(
            f"{proposal_id} is a shadow proposal: it records what would happen and cannot be approved"
        )
    if p["status"] not in ("pending", "task"):
        when = (
            f" by {p['decided_by']} at {p['decided_at']:%Y-%m-%d %H:%M:%S}"
            if p["decided_by"]
            else ""
        )
        return Decision(
            proposal_id,
            "unchanged",
            False,
            f"{proposal_id} is already {p['status']}{when}; nothing changed",
        )

    at = now_utc()
    entries: list[AuditEntry] = []
    final: str | None = None
    base = dict(
        object_type=p["object_type"],
        record_id=p["record_id"],
        field=p["field"],
        proposal_id=proposal_id,
        run_id=p["run_id"],
    )
    if p["status"] == "task":  # tier 3: a person acts in the CRM; the engine never writes
        outcome = "done" if approve else "dismissed"
    elif not approve:
        outcome = "rejected"
    elif p["field"] is None:  # output-only action (a flag, a category): acknowledged
        outcome = "approved"
    else:
        final = p["new_value"] if value is None else value
        try:
            done, before, after = apply_one(
                con,
                object_type=p["object_type"],
                record_id=p["record_id"],
                field=p["field"],
                old_value=p["old_value"],
                new_value=final,
                now=at,
            )
        except InvalidValue as exc:
            raise EngineError(
                f"value {final} is not a valid {exc} for {p['object_type']}.{p['field']}"
            ) from None
        if done:
            outcome = "edited" if value is not None and value != p["new_value"] else "approved"
            entries.append(
                AuditEntry(
                    actor=p["agent"],
                    actor_kind="agent",
                    action="apply",
                    before=before,
                    after=after,
                    detail=to_json({"approved_by": by}),
                    **base,
                )
            )
        else:
            outcome = "stale"
            entries.append(
                AuditEntry(
                    actor="engine",
                    actor_kind="system",
                    action="stale",
                    before=p["old_value"],
                    after=before,
                    detail=to_json({"reason": "the record changed since the proposal"}),
                    **base,
                )
            )
    changed = first_row(
        con,
        _SET,
        {
            "status": outcome,
            "at": at,
            "by": by,
            "note": note,
            "final": final,
            "id": proposal_id,
            "was": p["status"],
            "rowid": p["rowid"],
        },
    )
    if not changed or int(changed[0]) != 1:  # someone decided between our read and write
        raise duckdb.TransactionException("Conflict on proposal decision; retry")
    if p["field"] is not None:  # only a proposal on a field holds a lease
        con.execute(
            _RELEASE,
            {
                "at": at,
                "id": proposal_id,
                "object_type": p["object_type"],
                "record_id": p["record_id"],
                "field": p["field"],
            },
        )
    action = {
        "approved": "approve",
        "edited": "edit",
        "rejected": "reject",
        "stale": "approve",
        "done": "done",
        "dismissed": "dismiss",
    }[outcome]
    detail = {"note": note}
    if reason_code is not None and outcome in ("edited", "rejected"):
        con.execute(_REASON, {"id": proposal_id, "code": reason_code, "by": by, "at": at})
        detail["reason_code"] = reason_code
    if outcome == "edited":
        detail["proposed"] = json.loads(p["new_value"])
    if sampled_by is not None and outcome in ("edited", "rejected"):
        # A continuous sample of a graduated action was wrong: back to tier 2 (CSP-1).
        demotion = demote_in(
            con,
            agent=p["agent"],
            action_type=p["action_type"],
            graduation=sampled_by,
            reason=(
                f"a continuous sample of the automatic {p['action_type']} ({proposal_id}) was "
                f"{outcome} by {by}" + (f": {note}" if note else "")
            ),
            evidence={"proposal_id": proposal_id, "outcome": outcome, "decided_by": by},
            at=at,
        )
        if demotion is not None:
            entries.append(demotion)
    entries.insert(
        0,
        AuditEntry(
            actor=by,
            actor_kind="person",
            action=action,
            before=p["old_value"],
            after=final or p["new_value"],
            detail=to_json(detail),
            **base,
        ),
    )
    append(con, entries, at=at, head=None if head_seq is None else (int(head_seq), str(head)))
    target = f"{p['object_type']} {p['record_id']}" + (f".{p['field']}" if p["field"] else "")
    verb = {"stale": "was not applied: the record changed since it was proposed (stale)"}.get(
        outcome, outcome
    )
    return Decision(
        proposal_id, outcome, True, f"{proposal_id} ({p['action_type']} on {target}) {verb}"
    )
