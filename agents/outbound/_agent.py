"""The outbound personalization agent: drafts grounded in rows, for a person to send.

Candidates come from ``_targets`` (prospects and customers without an open deal, at
the step their email history puts them), drafts from ``_compose`` (a template filled
with facts, each naming its source row), and every draft passes ``_guardrails``
before it is queued. A queued draft is a row of ``ops.drafts`` plus a ``draft_email``
proposal, which the contract makes tier 3: a task for a person, never executed.
This package sends nothing and imports nothing that could (a test checks both).

At most ``MAX_PER_OWNER`` drafts per sender per run, follow-ups first, so the queue
is one a person can work through. An optional ``rewriter`` (a function from texts to
texts) may reword drafts; its text must pass the same guardrails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from revstack.agents.engine import Agent, AgentResult, Context, empty_proposals
from revstack.agents.outbound._compose import Draft, compose
from revstack.agents.outbound._guardrails import GUARDRAILS, check, placeholders, screen
from revstack.agents.outbound._targets import candidates, recent_activities
from revstack.agents.outbound._texts import texts
from revstack.data.clock import now_utc
from revstack.data.normalize import domain_from_website

__all__ = ["MAX_PER_ACCOUNT", "MAX_PER_OWNER", "Outbound"]

MAX_PER_OWNER = 10
MAX_PER_ACCOUNT = 2
_MAP_SCHEMA: dict[str, pl.DataType] = {
    "object_type": pl.String(),
    "record_id": pl.String(),
    "entity_id": pl.String(),
}


def _keys(c: dict[str, Any], entity: dict[str, str]) -> tuple[str, ...]:
    """Every key that names this person across duplicate records (entity, email, name)."""
    keys = []
    if c["contact_id"] in entity:
        keys.append(f"entity:{entity[c['contact_id']]}")
    if c.get("email"):
        keys.append(f"email:{c['email'].strip().lower()}")
    if c.get("first_name") and c.get("last_name") and c.get("account_id"):
        keys.append(f"name:{c['account_id']}|{c['first_name'].lower()}|{c['last_name'].lower()}")
    return tuple(keys) or (f"contact:{c['contact_id']}",)


class Outbound(Agent):
    name = "outbound"
    version = "1.0.0"

    def __init__(self, *, rewriter: Callable[[Sequence[str]], Sequence[str]] | None = None) -> None:
        self.rewriter = rewriter

    def run(self, ctx: Context) -> AgentResult:
        accounts = ctx.table("crm.accounts").with_columns(
            domain=domain_from_website(pl.col("website"))
        )
        contacts = ctx.table("crm.contacts")
        em = ctx.validated(
            "foundation.entity_map",
            ctx.table("foundation.entity_map"),
            _MAP_SCHEMA,
            key="record_id",
        )
        mapped = em.filter(pl.col("object_type").str.starts_with("contact"))
        entity = dict(
            zip(mapped["record_id"].to_list(), mapped["entity_id"].to_list(), strict=True)
        )
        cand = candidates(ctx, accounts, contacts)
        drafts = ctx.table(
            "ops.drafts", ["contact_id", "account_id", "sequence", "sequence_step", "data_as_of"]
        )
        # Rows only of the people a run can touch (candidates, people already drafted):
        # a dict of every contact was a third of the agent's time on mid.
        wanted = pl.concat([cand["contact_id"], drafts["contact_id"]]).unique().implode()
        people = {
            r["contact_id"]: r
            for r in contacts.filter(pl.col("contact_id").is_in(wanted)).iter_rows(named=True)
        }
        blocked_people: dict[str, str] = {}
        for r in contacts.filter(pl.col("do_not_contact") | pl.col("email_opt_out")).iter_rows(
            named=True
        ):
            label = "do not contact" if r["do_not_contact"] else "opted out of email"
            for k in _keys(r, entity):
                blocked_people.setdefault(k, f"{r['contact_id']} is marked {label}")
        taken = {
            (k, s, n)
            for cid, s, n in drafts.select("contact_id", "sequence", "sequence_step").iter_rows()
            if cid in people
            for k in _keys(people[cid], entity)
        }
        already = {
            tuple(r)
            for r in ctx.table(
                "ops.draft_blocks", ["contact_id", "sequence", "sequence_step", "guardrail"]
            ).iter_rows()
        }
        first_win = self._first_wins(ctx)
        now = now_utc()
        ids = cand["contact_id"].to_list()
        keys_of = [_keys(people[cid], entity) for cid in ids]
        screened: list[list[tuple[str, str]]] | None = None
        if self.rewriter is None:
            # Without a rewrite, what blocks a candidate is its text and its person: both
            # known without composing it, from texts built for every candidate at once.
            # Only a candidate that passes is composed (check() then sees it whole).
            text = texts(
                cand,
                contacts,
                accounts,
                ctx.table("crm.users"),
                ctx.table("ref.news").filter(pl.col("news_id").is_in(cand["news_id"].implode())),
                recent_activities(ctx),
                first_win,
            )
            screened = [
                (placeholders(subject, body) if braces else [])
                + screen(
                    subject,
                    body,
                    people[cid],
                    blocked_people=blocked_people,
                    person_keys=keys,
                    taken=False,
                )
                for cid, keys, subject, body, braces in zip(
                    ids, keys_of, text["subject"], text["body"], text["braces"], strict=True
                )
            ]
            passed = pl.Series([not p for p in screened], dtype=pl.Boolean)
            lookup = self._lookup(ctx, accounts, contacts, cand.filter(passed))
        else:
            lookup = self._lookup(ctx, accounts, contacts, cand)
        wins = dict(first_win.select("account_id", "opportunity_id").iter_rows())

        queued: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        # drafts already made from this data count against the account's share
        per_account: Counter[str] = Counter(
            drafts.filter(pl.col("data_as_of") == ctx.as_of)["account_id"].drop_nulls().to_list()
        )
        per_owner: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for i, (cid, account_id, seq, n) in enumerate(
            cand.select("contact_id", "account_id", "sequence", "step").iter_rows()
        ):
            keys, step = keys_of[i], int(n)
            is_taken = any((k, seq, step) in taken for k in keys)
            # an account with its share of drafts is done, except that a duplicate record
            # of someone drafted is still checked, so it is caught and counted, not skipped
            if per_account[account_id] >= MAX_PER_ACCOUNT and not is_taken:
                continue
            counts["candidates"] += 1
            owner = self._owner(lookup, account_id)
            sender = (owner or {}).get("user_id") or "-"
            draft: Draft | None = None
            c: dict[str, Any] = {}
            if screened is None or not (screened[i] or is_taken):
                if screened is not None and per_owner[sender] >= MAX_PER_OWNER:
                    # it passes (check() would find nothing more): no need to compose it
                    counts["over_owner_cap"] += 1
                    continue
                c = cand.row(i, named=True)
                draft = compose(c, self._rows(c, people[cid], owner, lookup, wins))
                template = None
                if self.rewriter is not None:
                    draft, template = self._rewrite(draft)
                problems = check(
                    draft,
                    people[cid],
                    lookup=lookup,
                    blocked_people=blocked_people,
                    person_keys=keys,
                    taken=is_taken,
                    template_text=template,
                )
            else:
                # the same guardrails check() runs after `untraceable`, with this run's drafts
                problems = screened[i]
                if is_taken:
                    subject, body, _ = text.row(i)
                    problems = placeholders(subject, body) + screen(
                        subject,
                        body,
                        people[cid],
                        blocked_people=blocked_people,
                        person_keys=keys,
                        taken=True,
                    )
            if problems:
                counts["blocked"] += 1
                for guardrail, detail in {g: d for g, d in problems}.items():
                    counts[f"blocked_{guardrail}"] += 1
                    if (cid, seq, step, guardrail) not in already:
                        blocks.append(
                            {
                                "contact_id": cid,
                                "sequence": seq,
                                "sequence_step": step,
                                "guardrail": guardrail,
                                "detail": detail,
                                "blocked_at": now,
                            }
                        )
                continue
            assert draft is not None
            if per_owner[sender] >= MAX_PER_OWNER:
                counts["over_owner_cap"] += 1
                continue
            per_owner[sender] += 1
            per_account[account_id] += 1
            taken.update((k, seq, step) for k in keys)
            queued.append(self._row(ctx, c, draft, keys[0], owner, now))
        counts["drafted"] = len(queued)
        out = pl.DataFrame(queued, schema=_DRAFTS) if queued else pl.DataFrame(schema=_DRAFTS)
        blocked = pl.DataFrame(blocks, schema=_BLOCKS) if blocks else pl.DataFrame(schema=_BLOCKS)
        return AgentResult(
            _proposals(out) if queued else empty_proposals(),
            {**{g: counts.get(f"blocked_{g}", 0) for g in GUARDRAILS}, **counts},
            {"ops.drafts": out, "ops.draft_blocks": blocked},
        )

    def _rewrite(self, draft: Draft) -> tuple[Draft, str]:
        original = draft.subject + "\n" + draft.body
        subject, body = list(self.rewriter([draft.subject, draft.body]))  # type: ignore[misc]
        return Draft(subject, body, draft.facts, draft.signals), original

    @staticmethod
    def _first_wins(ctx: Context) -> pl.DataFrame:
        """Each account's first won deal (account_id, opportunity_id, close_date)."""
        won = ctx.table("crm.opportunities").filter(
            pl.col("is_won") & pl.col("close_date").is_not_null()
        )
        first = won.sort("close_date", "opportunity_id").unique("account_id", keep="first")
        return first.select("account_id", "opportunity_id", "close_date")

    @staticmethod
    def _owner(
        lookup: dict[tuple[str, str], dict[str, Any]], account_id: str
    ) -> dict[str, Any] | None:
        account = lookup.get(("crm.accounts", account_id))
        owner = lookup.get(("crm.users", (account or {}).get("owner_id") or ""))
        if owner is not None and not owner["is_active"]:
            return None  # a leaver does not send; the placeholder guardrail says so
        return owner

    @staticmethod
    def _rows(
        c: dict[str, Any],
        contact: dict[str, Any],
        owner: dict[str, Any] | None,
        lookup: dict[tuple[str, str], dict[str, Any]],
        wins: dict[str, str],
    ) -> dict[str, dict[str, Any] | None]:
        """The rows a candidate's draft is composed from."""
        return {
            "contact": contact,
            "account": lookup.get(("crm.accounts", c["account_id"])),
            "owner": owner,
            "news": lookup.get(("ref.news", c["news_id"] or "")),
            "intent": lookup.get(("crm.activities", c["intent_id"] or "")),
            "previous": lookup.get(("crm.activities", c["prev_id"] or "")),
            "first_win": lookup.get(("crm.opportunities", wins.get(c["account_id"], ""))),
        }

    @staticmethod
    def _lookup(
        ctx: Context, accounts: pl.DataFrame, contacts: pl.DataFrame, cand: pl.DataFrame
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """The rows facts may come from, by (table, key): what traceability checks against."""
        ids = {
            col: set(cand[col].drop_nulls().to_list())
            for col in ("news_id", "intent_id", "prev_id")
        }
        acc = accounts.filter(pl.col("account_id").is_in(cand["account_id"].unique().implode()))
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for table, key, df in (
            ("crm.accounts", "account_id", acc),
            (
                "crm.contacts",
                "contact_id",
                contacts.filter(pl.col("contact_id").is_in(cand["contact_id"].implode())),
            ),
            ("crm.users", "user_id", ctx.table("crm.users")),
            (
                "ref.news",
                "news_id",
                ctx.table("ref.news").filter(pl.col("news_id").is_in(list(ids["news_id"]))),
            ),
            (
                "crm.activities",
                "activity_id",
                recent_activities(ctx).filter(
                    pl.col("activity_id").is_in(list(ids["intent_id"] | ids["prev_id"]))
                ),
            ),
            (
                "crm.opportunities",
                "opportunity_id",
                ctx.table("crm.opportunities").filter(
                    pl.col("is_won") & pl.col("account_id").is_in(acc["account_id"].implode())
                ),
            ),
        ):
            for r in df.iter_rows(named=True):
                out[(table, r[key])] = r
        return out

    @staticmethod
    def _row(
        ctx: Context,
        c: dict[str, Any],
        d: Draft,
        recipient: str,
        owner: dict[str, Any] | None,
        now: dt.datetime,
    ) -> dict[str, Any]:
        did = (
            "D"
            + hashlib.md5(
                f"{c['contact_id']}|{c['sequence']}|{c['step']}|{ctx.as_of}".encode()
            ).hexdigest()[:15]
        )
        return {
            "draft_id": did,
            "contact_id": c["contact_id"],
            "account_id": c["account_id"],
            "recipient": recipient,
            "email": c["email"].strip(),
            "owner_id": (owner or {}).get("user_id"),
            "sequence": c["sequence"],
            "sequence_step": int(c["step"]),
            "subject": d.subject,
            "body": d.body,
            "signals": json.dumps(list(d.signals)),
            "sources": json.dumps([f.to_dict() for f in d.facts], default=str),
            "data_as_of": ctx.as_of,
            "created_at": now,
        }


_DRAFTS: dict[str, pl.DataType] = {
    "draft_id": pl.String(),
    "contact_id": pl.String(),
    "account_id": pl.String(),
    "recipient": pl.String(),
    "email": pl.String(),
    "owner_id": pl.String(),
    "sequence": pl.String(),
    "sequence_step": pl.Int32(),
    "subject": pl.String(),
    "body": pl.String(),
    "signals": pl.String(),
    "sources": pl.String(),
    "data_as_of": pl.Datetime("us"),
    "created_at": pl.Datetime("us"),
}
_BLOCKS: dict[str, pl.DataType] = {
    "contact_id": pl.String(),
    "sequence": pl.String(),
    "sequence_step": pl.Int32(),
    "guardrail": pl.String(),
    "detail": pl.String(),
    "blocked_at": pl.Datetime("us"),
}


def _proposals(d: pl.DataFrame) -> pl.DataFrame:
    return d.select(
        action_type=pl.lit("draft_email"),
        object_type=pl.lit("contacts"),
        record_id="contact_id",
        field=pl.lit(None, pl.String),
        old_value=pl.lit(None, pl.String),
        new_value=pl.struct(
            "draft_id", "sequence", "sequence_step", "subject"
        ).struct.json_encode(),
        confidence=pl.lit(1.0),
        evidence=pl.concat_str(
            [
                pl.lit('{"signals":'),
                pl.col("signals"),
                pl.lit(',"sources":'),
                pl.col("sources"),
                pl.lit("}"),
            ]
        ),
        reason=pl.format(
            "draft for step {} of {} to {}: for a person to review, edit and send; the agent sends nothing",
            "sequence_step",
            "sequence",
            "email",
        ),
    )
