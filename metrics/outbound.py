"""Outbound measures: drafts created, blocked by each guardrail, approved, edited and
rejected by people, and the reply-rate fields a sequencer's report fills in; on a
generated company, the drafts truth says reach nobody (the person had left, or the
address had changed, before the data the draft was written from)."""

from __future__ import annotations

from typing import Any

import duckdb

from revstack.agents.outbound import GUARDRAILS
from revstack.data.warehouse import frame, scalar

__all__ = ["blocked", "decisions", "replies", "report", "stale_recipients"]

_DRAFTS = """
SELECT count(*) AS drafts, count(DISTINCT recipient) AS people,
       count(*) FILTER (WHERE sequence_step = 1) AS first_touches,
       count(*) FILTER (WHERE sequence_step > 1) AS follow_ups
FROM ops.drafts
"""
_BLOCKED = """
SELECT guardrail, count(*) AS candidates
FROM ops.draft_blocks GROUP BY guardrail ORDER BY guardrail
"""
_BLOCKED_ANY = "SELECT count(*) FROM (SELECT DISTINCT contact_id, sequence, sequence_step FROM ops.draft_blocks)"
# A draft's task: done = a person approved it, dismissed = rejected, task = waiting,
# expired = nobody acted on it within its contract's days (no one's verdict).
_DECISIONS = """
WITH t AS (
    SELECT d.draft_id, p.status, p.decided_by,
           EXISTS (SELECT 1 FROM ops.draft_edits e WHERE e.draft_id = d.draft_id) AS edited
    FROM ops.drafts d LEFT JOIN ops.proposals p
      ON p.agent = 'outbound' AND p.action_type = 'draft_email' AND p.new_value->>'draft_id' = d.draft_id
)
SELECT count(*) FILTER (WHERE status = 'task') AS waiting,
       count(*) FILTER (WHERE status = 'done' AND decided_by IS NOT NULL) AS approved,
       count(*) FILTER (WHERE status = 'done' AND decided_by IS NOT NULL AND edited) AS approved_edited,
       count(*) FILTER (WHERE edited) AS edited,
       count(*) FILTER (WHERE status = 'dismissed') AS rejected,
       count(*) FILTER (WHERE status = 'expired') AS expired,
       count(*) FILTER (WHERE status NOT IN ('task', 'done', 'dismissed', 'expired')
                        OR status IS NULL) AS other
FROM t
"""
_REPLIES = """
SELECT count(DISTINCT draft_id) FILTER (WHERE event = 'sent') AS sent,
       count(DISTINCT draft_id) FILTER (WHERE event = 'replied') AS replied,
       count(DISTINCT draft_id) FILTER (WHERE event = 'bounced') AS bounced,
       count(DISTINCT draft_id) FILTER (WHERE event = 'opted_out') AS opted_out
FROM ops.draft_outcomes
"""


_HAS_TRUTH = "SELECT count(*) FROM truth.contact_changes"
# A draft written from data as of T to someone who had left before T (or whose address had
# changed before T) reaches nobody; `marked` says whether the CRM knew (the guardrails
# should have stopped those), `silent` that it could not have known.
_STALE = """
WITH c AS (
    SELECT contact_id, field, min(changed_at) AS changed_at, bool_and(in_crm) AS in_crm
    FROM truth.contact_changes WHERE field IN ('is_active', 'email')
    GROUP BY contact_id, field
)
SELECT count(*) AS drafts,
       count(*) FILTER (WHERE l.contact_id IS NOT NULL) AS to_leavers,
       count(*) FILTER (WHERE l.contact_id IS NOT NULL AND l.in_crm) AS to_leavers_marked,
       count(*) FILTER (WHERE l.contact_id IS NULL AND e.contact_id IS NOT NULL) AS to_old_address
FROM ops.drafts d
LEFT JOIN c l ON l.contact_id = d.contact_id AND l.field = 'is_active' AND l.changed_at <= d.data_as_of
LEFT JOIN c e ON e.contact_id = d.contact_id AND e.field = 'email' AND e.changed_at <= d.data_as_of
"""


def stale_recipients(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """Drafts to people who had already left, or to an address they no longer used, as
    truth knows (None without truth): the harm silent decay does through outbound."""
    if not int(scalar(con, _HAS_TRUTH) or 0):
        return None
    r = frame(con, _STALE).row(0, named=True)
    drafts = r["drafts"]
    return {
        **r,
        "to_leavers_silent": r["to_leavers"] - r["to_leavers_marked"],
        "reach_nobody_share": None
        if not drafts
        else round((r["to_leavers"] + r["to_old_address"]) / drafts, 4),
    }


def blocked(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Candidates each guardrail stopped (one candidate may trip several), and in all."""
    by = dict(frame(con, _BLOCKED).iter_rows())
    return {
        **{g: int(by.get(g, 0)) for g in GUARDRAILS},
        "any": int(con.execute(_BLOCKED_ANY).fetchall()[0][0]),
    }


def decisions(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    d = frame(con, _DECISIONS).row(0, named=True)
    reviewed = d["approved"] + d["rejected"]
    return {**d, "approval_rate": None if not reviewed else round(d["approved"] / reviewed, 4)}


def replies(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Reply and bounce rates over drafts the sequencer reported as sent (None until it has)."""
    r = frame(con, _REPLIES).row(0, named=True)
    sent = r["sent"]
    return {
        **r,
        "reply_rate": None if not sent else round(r["replied"] / sent, 4),
        "bounce_rate": None if not sent else round(r["bounced"] / sent, 4),
        "opt_out_rate": None if not sent else round(r["opted_out"] / sent, 4),
    }


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    return {
        "drafts": frame(con, _DRAFTS).row(0, named=True),
        "blocked": blocked(con),
        "decisions": decisions(con),
        "replies": replies(con),
        "stale_recipients": stale_recipients(con),
    }
