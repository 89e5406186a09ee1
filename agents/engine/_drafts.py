"""Outbound drafts as people handle them: edit, approve (the tier-3 task), export, outcomes.

Nothing here sends an email. A person approves a draft by marking its ``draft_email``
task done (``revstack approve ID`` or ``revstack drafts approve DRAFT_ID``); approved
drafts are exported as a sequencer import CSV (Outreach / Salesloft style: one row per
prospect with the step's subject and body), and the sequencer sends. What it reports
back (sent, replied, bounced, opted out) is appended to ``ops.draft_outcomes`` for reply
rates. Edits and outcomes are appended, never updated (docs/design.md, The silent lost
update).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine._audit import AuditEntry, append
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._decide import Decision, decide
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.csvwriter import write_csv
from revstack.data.errors import InputError, Problem
from revstack.data.textfile import read_utf8
from revstack.data.warehouse import Warehouse, frame, registered

__all__ = [
    "SEQUENCER_COLUMNS",
    "approve_draft",
    "draft_queue",
    "edit_draft",
    "export_drafts",
    "load_outcomes",
]

SEQUENCER_COLUMNS = (
    "Email",
    "First Name",
    "Last Name",
    "Title",
    "Company",
    "Website",
    "Sequence",
    "Sequence Step",
    "Subject",
    "Body",
    "Owner Email",
    "External ID",
)
OUTCOME_EVENTS = ("sent", "replied", "bounced", "opted_out")

# A draft with its task (the proposal that names it) and its latest edit.
_QUEUE = """
WITH edits AS (
    SELECT draft_id, arg_max(subject, edited_at) AS subject, arg_max(body, edited_at) AS body,
           count(*) AS edits
    FROM ops.draft_edits GROUP BY draft_id
)
SELECT d.draft_id, p.proposal_id, p.status, p.decided_by, p.decided_at, d.contact_id,
       d.email, d.owner_id, d.sequence, d.sequence_step,
       coalesce(e.subject, d.subject) AS subject, coalesce(e.body, d.body) AS body,
       coalesce(e.edits, 0) AS edits, d.created_at
FROM ops.drafts d
LEFT JOIN ops.proposals p
  ON p.agent = 'outbound' AND p.action_type = 'draft_email'
 AND p.new_value->>'draft_id' = d.draft_id
LEFT JOIN edits e USING (draft_id)
WHERE ($status IS NULL OR p.status = $status)
ORDER BY d.created_at, d.draft_id
"""
_ONE = (
    "SELECT * FROM ("
    + _QUEUE.replace("ORDER BY d.created_at, d.draft_id", "")
    + ") WHERE draft_id = $id"
)
_EDIT = "INSERT INTO ops.draft_edits VALUES ($id, $by, $at, $subject, $body)"
# Approved: a person marked the task done. An auto-applied proposal (if someone ever
# configured the action below tier 3) has no person's decision and is never exported.
_APPROVED = (
    """
SELECT q.email AS "Email", c.first_name AS "First Name", c.last_name AS "Last Name",
       c.title AS "Title", a.name AS "Company", a.website AS "Website",
       q.sequence AS "Sequence", q.sequence_step AS "Sequence Step", q.subject AS "Subject",
       q.body AS "Body", u.email AS "Owner Email", q.draft_id AS "External ID"
FROM ("""
    + _QUEUE
    + """) q
JOIN crm.contacts c USING (contact_id)
LEFT JOIN crm.accounts a ON a.account_id = c.account_id
LEFT JOIN crm.users u ON u.user_id = q.owner_id
WHERE q.decided_by IS NOT NULL AND q.decided_at BETWEEN $since AND $until
ORDER BY q.decided_at, q.draft_id
"""
)
_KNOWN = "SELECT draft_id FROM ops.drafts"
_OUTCOMES = (
    "INSERT INTO ops.draft_outcomes SELECT draft_id, event, occurred_at, $source, $at FROM incoming"
)


def draft_queue(wh: Warehouse, *, status: str | None = None) -> pl.DataFrame:
    """Drafts with their task status and latest edit (status: task, done, dismissed)."""
    with wh.connect() as con:
        return frame(con, _QUEUE, {"status": status})


def _draft(con: duckdb.DuckDBPyConnection, draft_id: str) -> dict[str, object]:
    df = frame(con, _ONE, {"id": draft_id, "status": None})
    if df.is_empty():
        raise EngineError(f"no draft {draft_id!r}")
    return df.row(0, named=True)


def edit_draft(
    wh: Warehouse, draft_id: str, *, by: str, subject: str | None = None, body: str | None = None
) -> None:
    """A reviewer rewrites a draft before approving it (appended; the latest one counts)."""
    if subject is None and body is None:
        raise EngineError("an edit needs a new subject or body")

    def work(con: duckdb.DuckDBPyConnection) -> None:
        require_role(con, by, "reviewer")
        d = _draft(con, draft_id)
        if d["status"] != "task":
            raise EngineError(
                f"draft {draft_id} is {d['status']}; only an undecided draft can be edited"
            )
        new = {"subject": subject or d["subject"], "body": body or d["body"]}
        at = now_utc()
        con.execute(_EDIT, {"id": draft_id, "by": by, "at": at, **new})
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="edit",
                    object_type="drafts",
                    record_id=draft_id,
                    field="body",
                    before=json.dumps({"subject": d["subject"], "body": d["body"]}),
                    after=json.dumps(new),
                    proposal_id=str(d["proposal_id"]),
                )
            ],
            at=at,
        )

    in_transaction(wh, work)


def approve_draft(
    wh: Warehouse, draft_id: str, *, by: str, approve: bool = True, note: str | None = None
) -> Decision:
    """Approve (or reject) a draft: decides its tier-3 task. The engine writes nothing."""
    with wh.connect() as con:
        d = _draft(con, draft_id)
    if d["proposal_id"] is None:
        raise EngineError(f"draft {draft_id} has no task to decide")
    return decide(wh, str(d["proposal_id"]), approve=approve, by=by, note=note)


def export_drafts(
    wh: Warehouse, out: Path, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> int:
    """Write approved drafts (latest edit applied) as a sequencer import CSV; returns rows."""
    with wh.connect() as con:
        rows = frame(
            con,
            _APPROVED,
            {
                "status": "done",
                "since": since or dt.datetime.min,
                "until": until or dt.datetime.max,
            },
        )
    write_csv(rows.select(list(SEQUENCER_COLUMNS)), out)
    return len(rows)


def load_outcomes(wh: Warehouse, path: Path) -> int:
    """Append what a sequencer reported (CSV: External ID, Event, Occurred At), all or nothing."""
    records = list(csv.DictReader(io.StringIO(read_utf8(path), newline="")))
    with wh.connect() as con:
        known = set(frame(con, _KNOWN)["draft_id"].to_list())
    rows, problems = [], []
    for line, r in enumerate(records, start=2):
        did = (r.get("External ID") or "").strip()
        event = (r.get("Event") or "").strip().lower()
        when = r.get("Occurred At") or ""
        where: dict[str, Any] = {"file": str(path), "line": line}
        if did not in known:
            problems.append(Problem(**where, column="External ID", message=f"no draft {did!r}"))
        elif event not in OUTCOME_EVENTS:
            problems.append(
                Problem(
                    **where, column="Event", message=f"must be one of {', '.join(OUTCOME_EVENTS)}"
                )
            )
        else:
            try:
                rows.append(
                    {
                        "draft_id": did,
                        "event": event,
                        "occurred_at": dt.datetime.fromisoformat(when.strip()),
                    }
                )
            except ValueError:
                problems.append(
                    Problem(**where, column="Occurred At", message=f"not an ISO time: {when!r}")
                )
    if problems:
        raise InputError(f"{len(problems)} bad outcome row(s)", problems)
    if rows:
        incoming = pl.DataFrame(
            rows,
            schema={"draft_id": pl.String, "event": pl.String, "occurred_at": pl.Datetime("us")},
        )

        def work(con: duckdb.DuckDBPyConnection) -> None:
            with registered(con, "incoming", incoming):
                con.execute(_OUTCOMES, {"source": path.name, "at": now_utc()})

        in_transaction(wh, work)
    return len(rows)
