"""The deal prep agent: a cited briefing before each customer meeting, and on demand.

For every scheduled meeting after the data's as-of on a deal (or for the deals named
with ``on_demand``), a briefing: what to check first (hygiene issues of the records
used), the meeting, the deal, the account's history, stakeholders and engagement,
open risks from pipeline health's latest run, competitive context, recent news and
discussion points by stage. Every statement cites the rows it came from; the
briefing is built deterministically from data. An optional LLM rewriter (see
``agents._llm``) may reword statements; a rewrite that drops or adds a citation, a
number or a name is refused and the original kept.

Output only: briefings go to ``ops.briefings`` (written by the engine) and each is a
``write_briefing`` proposal (tier 1, no field). A briefing whose content is already
stored (same meeting, same facts) is not written again.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, Literal

import polars as pl

from revstack.agents._cite import Note, Statement
from revstack.agents._llm import Rewriter, grounded, rewriter_from_env
from revstack.agents.deal_prep._batch import Batch
from revstack.agents.deal_prep._fingerprint import input_digests
from revstack.agents.deal_prep._hygiene import Hygiene, find_hygiene
from revstack.agents.deal_prep._inputs import (
    Frames,
    Inputs,
    anchor,
    horizon_days,
    index_inputs,
    read_frames,
    upcoming_meetings,
)
from revstack.agents.deal_prep._points import competition, discussion_points, news, risks, warnings
from revstack.agents.deal_prep._render import markers, number_sources, render
from revstack.agents.deal_prep._sections import (
    account_history,
    deal_facts,
    meeting_facts,
    stakeholders,
)
from revstack.agents.engine import Agent, AgentResult, Context, empty_proposals
from revstack.data.clock import now_utc
from revstack.data.memory import give_back

__all__ = ["DealPrep", "build_items"]

Item = Statement | Note
_FROM_ENV: Final = "env"


def _deal_body(inp: Inputs, opp: dict[str, Any], at: dt.date) -> list[Item]:
    # Stakeholders, risks and competition do not depend on the day: once per deal and run.
    key = ("deal_static", opp["opportunity_id"])
    if key not in inp.memo:
        inp.memo[key] = (stakeholders(inp, opp), risks(inp, opp), competition(inp, opp))
    people, flagged, rivals = inp.memo[key]
    body: list[Item] = [*deal_facts(inp, opp, at), *account_history(inp, opp, at), *people]
    body += flagged + rivals + news(inp, opp, at)
    return body + discussion_points(inp, opp, body)


def build_items(
    inp: Inputs,
    opp: dict[str, Any],
    meeting: dict[str, Any] | None,
    cache: dict[str, tuple[list[Item], list[str]]] | None = None,
) -> list[Item]:
    """Every statement and note of one briefing, warnings first (``cache``: deal bodies
    and the contacts they show, shared by the meetings of one deal on one day)."""
    cache = {} if cache is None else cache
    at = anchor(meeting, inp.as_of)
    key = f"{opp['opportunity_id']}|{at}"
    if key not in cache:
        body = _deal_body(inp, opp, at)
        cache[key] = body, _contacts(body)
    body, shown = cache[key]
    facts = meeting_facts(inp, opp, meeting)
    return warnings(inp, opp, list(dict.fromkeys(_contacts(facts) + shown))) + facts + body


def _contacts(items: list[Item]) -> list[str]:
    """The contacts the statements of ``items`` cite, in order, each once."""
    shown = [
        c.key[0][1]
        for it in items
        if isinstance(it, Statement)
        for c in it.cites
        if c.table == "crm.contacts"
    ]
    return list(dict.fromkeys(shown))


def _rewrite(items: list[Item], rewriter: Rewriter) -> tuple[list[Item], int, int]:
    """Reword statements; keep each rewrite only if it keeps its citations and adds nothing."""
    numbers = number_sources(items)
    statements = [it for it in items if isinstance(it, Statement)]
    sent = [f"{it.text} {markers(it, numbers)}" for it in statements]
    try:
        back = list(rewriter(sent))
    except Exception:
        return items, 0, len(sent)
    if len(back) != len(sent):
        return items, 0, len(sent)
    swapped: dict[int, Statement] = {}
    for it, original, new in zip(statements, sent, back, strict=True):
        if grounded(original, new) is None:
            text = new.replace(markers(it, numbers), "").strip()
            swapped[id(it)] = Statement(it.section, text, it.cites)
    out = [swapped.get(id(it), it) for it in items]
    return out, len(swapped), len(sent) - len(swapped)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while briefings are built: a run makes
    millions of objects and almost no cycles (a few hundred objects on mid), and each
    full collection walked every live row, statement and citation (a fifth of a mid
    weekly run's CPU). Turned back on after, if it was on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class DealPrep(Agent):
    name = "deal_prep"
    version = "1.0.0"

    def __init__(
        self,
        *,
        on_demand: Sequence[str] = (),
        rewriter: Rewriter | Literal["env"] | None = _FROM_ENV,
    ) -> None:
        self.on_demand = tuple(on_demand)
        self.rewriter = rewriter

    def run(self, ctx: Context) -> AgentResult:
        clock = time.perf_counter()
        definitions = ctx.definitions
        if definitions is None:
            from revstack.contracts import load_definitions

            definitions = load_definitions()
        rewriter = rewriter_from_env() if self.rewriter == _FROM_ENV else self.rewriter
        prose = getattr(rewriter, "name", "llm:custom") if rewriter is not None else "deterministic"
        if self.on_demand:
            meetings = upcoming_meetings(ctx).clear()
            deal_ids = sorted(set(self.on_demand))
        else:
            meetings = upcoming_meetings(ctx)
            deal_ids = sorted(set(meetings["opportunity_id"].to_list()))
        checked = {
            "as_of": ctx.as_of.isoformat(),
            "scheduled": not self.on_demand,
            "horizon_days": horizon_days(ctx),
        }
        if not deal_ids:
            return _nothing(0, checked)
        days = [anchor(m, ctx.as_of) for m in meetings.iter_rows(named=True)]
        first = min(days, default=ctx.as_of.date())
        last = max(days, default=ctx.as_of.date())
        f = read_frames(
            ctx, deal_ids, meeting_contacts=meetings["contact_id"].to_list(), first=first, last=last
        )
        hygiene = find_hygiene(
            ctx,
            definitions,
            accounts=f.accounts["account_id"].to_list(),
            contacts=f.contacts["contact_id"].to_list(),
            opportunities=deal_ids,
            all_accounts=ctx.table("crm.accounts"),
            all_contacts=ctx.table("crm.contacts"),
        )
        stored = ctx.table("ops.briefings", ["briefing_id", "meeting_id", "inputs"])
        existing = set(stored["briefing_id"].to_list())
        skipped = 0
        targets: list[tuple[str, dict[str, Any] | None, str | None]]
        if self.on_demand:
            targets = [(o, None, None) for o in self.on_demand]
        else:
            # A briefing whose inputs are what a stored one was built from would come out
            # the same: it is not built again (docs/deal_prep.md, Weekly runs).
            settings = json.dumps(
                [
                    self.version,
                    prose,
                    definitions.model_dump_json(),
                    sorted(hygiene.method.items()),
                    f.flags_run is None,
                ]
            )
            digests = input_digests(f, meetings, hygiene, settings)
            fresh = meetings.join(digests, on="activity_id").join(
                stored.select(activity_id="meeting_id", inputs="inputs").drop_nulls().unique(),
                on=["activity_id", "inputs"],
                how="anti",
            )
            skipped = len(meetings) - len(fresh)
            targets = [
                (m["opportunity_id"], m, m.pop("inputs"))
                for m in fresh.sort("occurred_at", "activity_id").iter_rows(named=True)
            ]
        if not targets:  # every meeting's briefing is stored from these very inputs
            return _nothing(skipped, checked)
        built = sorted({o for o, _, _ in targets})
        # Everything a run builds (millions of objects) is dropped by reference counts when
        # _build returns, before the collector is back on: resumed with them alive, its
        # first collection walked every one (0.35 s of CPU on mid's weekly run).
        with _collector_paused():
            rows, stats = self._build(
                f,
                built,
                targets,
                ctx.as_of,
                definitions,
                hygiene,
                rewriter,
                prose,
                existing,
                skipped,
            )
        n_rows = len(rows)
        briefings = _frame(rows)
        del rows
        proposals = _proposals(briefings) if n_rows else empty_proposals()
        return AgentResult(
            proposals,
            {
                "targets": len(targets),
                "briefings": n_rows,
                **checked,
                "prose": prose,
                **stats,
                "risk_flags_run": f.flags_run,
                "duplicate_check": hygiene.method,
                "seconds": round(time.perf_counter() - clock, 2),
            },
            {"ops.briefings": briefings},
        )

    def _build(
        self,
        f: Frames,
        built: list[str],
        targets: list[tuple[str, dict[str, Any] | None, str | None]],
        as_of: dt.datetime,
        definitions: Any,
        hygiene: Hygiene,
        rewriter: Rewriter | None,
        prose: str,
        existing: set[str],
        skipped: int,
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The stored rows of the briefings of ``targets`` not stored already, and counts."""
        inp = index_inputs(
            f,
            built,
            as_of=as_of,
            first=min(anchor(m, as_of) for _, m, _ in targets),
            definitions=definitions,
            hygiene=hygiene,
        )
        now = now_utc()
        stats = {
            "rewritten": 0,
            "rewrite_refused": 0,
            "already_stored": 0,
            "missing_deal": 0,
            "inputs_unchanged": skipped,
        }
        # Every briefing's items first, then their stored citations and their pages
        # written together as frames (``_batch``).
        bodies: dict[str, tuple[list[Item], list[str]]] = {}
        batch = Batch()
        made = []
        for opp_id, meeting, inputs in targets:
            opp = inp.deals.get(opp_id)
            if opp is None:
                stats["missing_deal"] += 1
                continue
            items = build_items(inp, opp, meeting, bodies)
            made.append((opp, meeting, inputs, items, batch.add(items)))
        payloads = batch.payloads([numbers for *_, numbers in made])
        kept, seen = [], set()
        for (opp, meeting, inputs, items, numbers), payload in zip(made, payloads, strict=True):
            digest = hashlib.md5(payload.encode()).hexdigest()
            opp_id = opp["opportunity_id"]
            mid = meeting["activity_id"] if meeting else None
            bid = "B" + hashlib.md5(f"{mid}|{opp_id}|{digest}|{prose}".encode()).hexdigest()[:15]
            if bid in existing or bid in seen:
                stats["already_stored"] += 1
                continue
            seen.add(bid)
            page = None
            if rewriter is not None:
                items, ok, refused = _rewrite(items, rewriter)
                stats["rewritten"] += ok
                stats["rewrite_refused"] += refused
                if ok:  # reworded: this briefing on its own
                    payload = json.dumps([i.to_dict() for i in items], default=str)
                    page = render(*_titles(inp, opp, meeting, prose, now), items)
            kept.append((opp, meeting, inputs, items, numbers, bid, digest, payload, page))
        pages = iter(
            batch.render(
                [
                    (*_titles(inp, opp, meeting, prose, now), numbers)
                    for opp, meeting, _, _, numbers, _, _, _, page in kept
                    if page is None
                ]
            )
        )
        rows = []
        for opp, meeting, inputs, items, _, bid, digest, payload, page in kept:
            markdown, html = next(pages) if page is None else page
            row = self._row(inp, opp, meeting, items, bid, digest, prose, now, payload)
            rows.append({**row, "markdown": markdown, "html": html, "inputs": inputs})
        return rows, stats

    @staticmethod
    def _row(
        inp: Inputs,
        opp: dict[str, Any],
        meeting: dict[str, Any] | None,
        items: list[Item],
        bid: str,
        digest: str,
        prose: str,
        now: dt.datetime,
        payload: str,
    ) -> dict[str, Any]:
        """A briefing's stored row but its pages (Markdown and HTML)."""
        statements = [i for i in items if isinstance(i, Statement)]
        return {
            "briefing_id": bid,
            "opportunity_id": opp["opportunity_id"],
            "account_id": opp.get("account_id"),
            "meeting_id": meeting["activity_id"] if meeting else None,
            "meeting_at": meeting["occurred_at"] if meeting else None,
            "data_as_of": inp.as_of,
            "generated_at": now,
            "digest": digest,
            "statements": len(statements),
            "cited": sum(1 for s in statements if s.cites),
            "warnings": sum(1 for s in statements if s.section == "warnings"),
            "prose": prose,
            "citations": payload,
        }


def _titles(
    inp: Inputs, opp: dict[str, Any], meeting: dict[str, Any] | None, prose: str, now: dt.datetime
) -> tuple[str, str]:
    """A briefing's title and subtitle."""
    account = inp.accounts.get(opp.get("account_id") or "")
    when = f"meeting {meeting['occurred_at']:%Y-%m-%d %H:%M} UTC" if meeting else "on demand"
    subtitle = (
        f"{account['name'] if account else 'no account'} · {when} · data as of "
        f"{inp.as_of:%Y-%m-%d} · generated {now:%Y-%m-%d %H:%M} UTC · {prose}"
    )
    return f"Briefing: {opp['name']}", subtitle


_SCHEMA: dict[str, pl.DataType] = {
    "briefing_id": pl.String(),
    "opportunity_id": pl.String(),
    "account_id": pl.String(),
    "meeting_id": pl.String(),
    "meeting_at": pl.Datetime("us"),
    "data_as_of": pl.Datetime("us"),
    "generated_at": pl.Datetime("us"),
    "digest": pl.String(),
    "statements": pl.Int32(),
    "cited": pl.Int32(),
    "warnings": pl.Int32(),
    "prose": pl.String(),
    "markdown": pl.String(),
    "html": pl.String(),
    "citations": pl.String(),
    "inputs": pl.String(),
}


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The briefings' rows as a frame, column by column (a frame from 2,000-odd dicts of
    long text was a tenth of a second), each column's values let go of from the rows
    once the frame holds them and their memory given back (``data.memory``): the pages'
    text (gigabytes in a large company's week) is then not held twice at once, as Python
    strings and in the frame."""
    columns = []
    for name, dtype in _SCHEMA.items():
        columns.append(pl.Series(name, [r[name] for r in rows], dtype=dtype))
        if dtype == pl.String():
            for r in rows:
                r[name] = None
            give_back()
    return pl.DataFrame(columns)


def _nothing(unchanged: int, checked: dict[str, Any]) -> AgentResult:
    """Nothing to read or build: every meeting's briefing is stored from its inputs
    (``checked``: the data's as-of, and whether every upcoming meeting was looked at)."""
    return AgentResult(
        empty_proposals(),
        {"targets": 0, "briefings": 0, "inputs_unchanged": unchanged, **checked},
        {"ops.briefings": pl.DataFrame(schema=_SCHEMA)},
    )


def _proposals(b: pl.DataFrame) -> pl.DataFrame:
    """One ``write_briefing`` per deal and run (the engine keeps one output-only proposal per
    record and run), naming every briefing written for the deal's meetings."""
    per_deal = b.group_by("opportunity_id", maintain_order=True).agg(
        "briefing_id",
        pl.col("meeting_id").drop_nulls(),
        pl.sum("statements"),
        pl.sum("cited"),
        pl.sum("warnings"),
        n=pl.len(),
    )
    return per_deal.select(
        action_type=pl.lit("write_briefing"),
        object_type=pl.lit("opportunities"),
        record_id="opportunity_id",
        field=pl.lit(None, pl.String),
        old_value=pl.lit(None, pl.String),
        new_value=pl.struct(briefings="briefing_id", meetings="meeting_id").struct.json_encode(),
        confidence=pl.lit(1.0),
        evidence=pl.struct("statements", "cited", "warnings").struct.json_encode(),
        reason=pl.format(
            "{} briefing(s) for the deal's {} ({} statements, {} cited; {} data warning(s))",
            "n",
            pl.when(pl.col("meeting_id").list.len() > 0)
            .then(pl.lit("upcoming meetings"))
            .otherwise(pl.lit("on-demand request")),
            "statements",
            "cited",
            "warnings",
        ),
    )
