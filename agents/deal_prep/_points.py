"""The judgement parts of a briefing: what to check first, open risks, competition, news,
and discussion points by stage. Still only facts from rows, each cited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from revstack.agents._cite import Cite, Note, Statement, cite_row
from revstack.agents.deal_prep._hygiene import CLUSTERS, IDENTITY_MAP, IDENTITY_TABLE
from revstack.agents.deal_prep._inputs import NEWS_DAYS, Inputs, window_start
from revstack.agents.deal_prep._sections import (
    ENGAGED,
    acc_cite,
    an,
    contact_cite,
    day,
    opp_cite,
    person,
    words,
)

__all__ = ["competition", "discussion_points", "news", "risks", "warnings"]

Item = Statement | Note
_TABLE = {
    "accounts": ("crm.accounts", "account_id"),
    "contacts": ("crm.contacts", "contact_id"),
    "opportunities": ("crm.opportunities", "opportunity_id"),
}
_LABEL = {"accounts": "Account", "contacts": "Contact", "opportunities": "Deal"}
_POSITIVE = ("raises", "funding", "appoints", "launches", "opens", "acquires", "results", "record")
_NEGATIVE = ("cut", "layoff", "lays off", "workforce", "restructur")


def _record_cite(
    inp: Inputs, obj: str, rec: str, row: dict[str, Any], fieldname: str
) -> list[Cite]:
    table, pk = _TABLE[obj]
    return cite_row(table, {pk: rec}, row, fieldname)


def _row(inp: Inputs, obj: str, rec: str) -> dict[str, Any] | None:
    return {"accounts": inp.accounts, "contacts": inp.contacts, "opportunities": inp.deals}[
        obj
    ].get(rec)


def warnings(inp: Inputs, opp: dict[str, Any], contact_ids: list[str]) -> list[Item]:
    """Hygiene issues of the deal, its account and the stakeholders shown: at the top."""
    s = "warnings"
    out: list[Item] = []
    h = inp.hygiene
    records = [("opportunities", opp["opportunity_id"])]
    if opp.get("account_id") in inp.accounts:
        records.append(("accounts", opp["account_id"]))
    records += [("contacts", c) for c in contact_ids if c in inp.contacts]
    for obj, rec in records:
        row = _row(inp, obj, rec)
        assert row is not None  # records names only the deal and records the inputs hold
        label = f"{_LABEL[obj]} {rec}" + (
            f" ({row['name']})" if obj != "contacts" else f" ({person(row)})"
        )
        blanks = h.blanks.get((obj, rec), [])
        if blanks:
            out.append(
                Statement.of(
                    s,
                    f"{label} is missing required field(s): {', '.join(blanks)}; "
                    "treat what depends on them with care.",
                    [c for f in blanks for c in _record_cite(inp, obj, rec, row, f)],
                )
            )
        for d in h.duplicates.get((obj, rec), []):
            other = h.others.get((obj, d.other)) or _row(inp, obj, d.other) or {}
            if d.method == IDENTITY_MAP:
                rows = [h.entity_rows[(obj, x)] for x in (rec, d.other)]
                cites = [_identity_cite(r) for r in rows]
                how = (
                    f"the identity map puts it in the same {d.basis} as {d.other}"
                    if all(r["cited"] == IDENTITY_TABLE for r in rows)
                    else f"the latest identity resolution suspects the same {d.basis} as "
                    f"{d.other} (not yet merged)"
                )
            else:
                cites = _record_cite(inp, obj, rec, row, d.field) + (
                    _record_cite(inp, obj, d.other, other, d.field) if other else []
                )
                how = f"{d.basis} as {d.other} (name check: the identity map has no {obj} yet)"
            out.append(
                Statement.of(
                    s,
                    f"{label} may be a duplicate: {how}. Its other record's history "
                    "is not included here.",
                    cites,
                )
            )
    if not out:
        methods = ", ".join(f"{k} by {v}" for k, v in sorted(h.method.items()))
        out.append(
            Note(
                s,
                f"No open hygiene issue on the deal, its account or its stakeholders "
                f"(checked: required fields; duplicates of {methods}).",
            )
        )
    return out


def risks(inp: Inputs, opp: dict[str, Any]) -> list[Item]:
    s = "risks"
    if inp.flags_run is None:
        return [
            Note(
                s,
                "Pipeline health has not flagged any deal yet (no risk flags stored), "
                "so no open risks are shown from it.",
            )
        ]
    flags = inp.flags.get(opp["opportunity_id"], [])
    if not flags:
        return [Note(s, "Pipeline health's latest run raised no flag on this deal.")]
    out: list[Item] = []
    for f in flags:
        key = {"run_id": f["run_id"], "opportunity_id": f["opportunity_id"], "signal": f["signal"]}
        text = f"{words(f['signal']).capitalize()}: {f['reason']}"
        cites = cite_row("ops.risk_flags", key, f, "signal", "reason")
        if f.get("score") is not None:
            text += f" (risk score {f['score']:.2f})"
            cites += cite_row("ops.risk_flags", key, f, "score")
        out.append(Statement.of(s, text.rstrip(".") + ".", cites))
    return out


def _account_deals(inp: Inputs, opp: dict[str, Any]) -> list[dict[str, Any]]:
    ids = inp.deals_by_account.get(opp.get("account_id") or "", [])
    return [inp.deals[d] for d in ids if d != opp["opportunity_id"]]


def competition(inp: Inputs, opp: dict[str, Any]) -> list[Item]:
    s = "competition"
    out: list[Item] = []
    if opp.get("competitor"):
        out.append(
            Statement.of(
                s,
                f"Competitor recorded on this deal: {opp['competitor']}.",
                opp_cite(opp, "competitor"),
            )
        )
    if opp["is_closed"]:
        out += _rivals(_account_deals(inp, opp))
    else:  # an open deal is not among the closed ones: the account's statements, shared
        key = ("account_rivals", opp.get("account_id") or "")
        if key not in inp.memo:
            inp.memo[key] = _rivals(_account_deals(inp, opp))
        out += inp.memo[key]
    if not out:
        out.append(Note(s, "No competitor is recorded on the deal or the account's closed deals."))
    return out


def _rivals(deals: list[dict[str, Any]]) -> list[Item]:
    """Per competitor on the closed ones of ``deals``: how often, won and lost."""
    out: list[Item] = []
    earlier = [o for o in deals if o.get("competitor") and o["is_closed"]]
    for name in sorted({o["competitor"] for o in earlier}):
        mine = [o for o in earlier if o["competitor"] == name]
        won = sum(1 for o in mine if o["is_won"])
        out.append(
            Statement.of(
                "competition",
                f"{name} was also recorded on {len(mine)} earlier closed deal(s) with this "
                f"account: {won} won, {len(mine) - won} lost.",
                [c for o in mine for c in opp_cite(o, "competitor", "stage")],
            )
        )
    return out


def news(inp: Inputs, opp: dict[str, Any], at: dt.date) -> list[Item]:
    s = "news"
    a = inp.accounts.get(opp.get("account_id") or "")
    if a is None or not inp.domains.get(a["account_id"]):
        return [Note(s, "The account has no website, so no news can be matched to it.")]
    start, end = window_start(at, NEWS_DAYS), window_start(at + dt.timedelta(days=1), 1)
    items = [
        n for n in inp.news_by_account.get(a["account_id"], []) if start <= n["published_at"] < end
    ]
    if not items:
        return [
            Note(
                s,
                f"No news for {inp.domains[a['account_id']]} in the {NEWS_DAYS} days to {day(at)} "
                "(`revstack news load FILE` adds items from a feed).",
            )
        ]
    out: list[Item] = []
    for n in items[:5]:
        text = f"{day(n['published_at'])}: {n['headline']}" + (
            f" {n['summary']}" if n.get("summary") else ""
        )
        cites = cite_row(
            "ref.news", {"news_id": n["news_id"]}, n, "published_at", "headline", "domain"
        )
        if n.get("summary"):
            cites += cite_row("ref.news", {"news_id": n["news_id"]}, n, "summary")
        out.append(Statement.of(s, text.rstrip(".") + ".", cites + acc_cite(a, "website")))
    return out


def _engaged(inp: Inputs, opp: dict[str, Any]) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for x in inp.acts_by_deal.get(opp["opportunity_id"], []):
        if x["direction"] in ENGAGED and x["contact_id"] and x["contact_id"] not in first:
            first[x["contact_id"]] = x
    return first


def _criteria(inp: Inputs, stage: Any) -> list[tuple[str, Any, Any]]:
    """A stage's entry criteria, each with its kind (role, engaged or field) and the field
    it names, once per run: asking a criterion for an attribute it lacks goes through
    pydantic's ``__getattr__`` and an exception (30k such asks on mid's weekly run)."""
    key = ("criteria", stage.key)
    got = inp.memo.get(key)
    if got is None:
        got = []
        for c in stage.entry_criteria:
            if hasattr(c, "role"):
                got.append(("role", c, None))
            elif getattr(c, "metric", None) == "engaged_contacts":
                got.append(("engaged", c, None))
            else:
                got.append(("field", c, getattr(c, "field", None)))
        inp.memo[key] = got
    return got


def _criteria_points(inp: Inputs, opp: dict[str, Any]) -> list[Item]:
    """Entry criteria of the deal's own stage and the next one that the data does not meet."""
    d = inp.definitions
    keys = [st.key for st in d.stages]
    if opp["stage"] not in keys or d.stage(opp["stage"]).closed:
        return []
    at = keys.index(opp["stage"])
    roles = inp.roles.get(opp["opportunity_id"], [])
    engaged = _engaged(inp, opp)
    out: list[Item] = []
    for stage in [d.stage(opp["stage"]), *([d.stages[at + 1]] if at + 1 < len(keys) else [])]:
        if stage.closed:
            continue
        where = "its own stage" if stage.key == opp["stage"] else "the next stage"
        base = opp_cite(opp, "stage")
        for kind, c, name in _criteria(inp, stage):
            if kind == "role":
                have = [r for r in roles if r["role"] == c.role]
                if not have:
                    out.append(
                        Statement.of(
                            "points",
                            f"{stage.label} ({where}) needs {an(words(c.role))} on the deal and none is named: "
                            f"ask who plays that part.",
                            base
                            + [
                                x
                                for r in roles
                                for x in cite_row(
                                    "crm.opportunity_contacts",
                                    {
                                        "opportunity_id": r["opportunity_id"],
                                        "contact_id": r["contact_id"],
                                    },
                                    r,
                                    "role",
                                )
                            ],
                        )
                    )
            elif kind == "engaged":
                if not _holds(len(engaged), c.op, c.value):
                    out.append(
                        Statement.of(
                            "points",
                            f"{stage.label} ({where}) needs {c.op} {c.value:g} engaged contacts; "
                            f"{len(engaged)} so far: bring more of the buying group in.",
                            base
                            + [x for a in engaged.values() for x in inp.touches[a["activity_id"]]],
                        )
                    )
            elif name in opp:
                v = opp[name]
                ok = (
                    v not in (None, "")
                    if c.op == "is_set"
                    else v is not None and _holds(float(v), c.op, c.value)
                )
                if not ok:
                    out.append(
                        Statement.of(
                            "points",
                            f"{stage.label} ({where}) needs {words(c.field)} {c.op}"
                            f"{'' if c.value is None else f' {c.value:g}'}; the CRM has "
                            f"{'nothing' if v in (None, '') else v}: confirm it in the meeting.",
                            base + opp_cite(opp, c.field),
                        )
                    )
    return out


def _holds(x: float, op: str, v: float | None) -> bool:
    v = 0.0 if v is None else v
    return {
        ">": x > v,
        ">=": x >= v,
        "<": x < v,
        "<=": x <= v,
        "=": x == v,
        "!=": x != v,
        "is_set": True,
    }[op]


def discussion_points(inp: Inputs, opp: dict[str, Any], items: list[Item]) -> list[Item]:
    """What to raise, from the stage's criteria, the risks, competition, news and people."""
    s, out = "points", _criteria_points(inp, opp)
    if opp.get("next_step"):
        out.append(
            Statement.of(
                s,
                f'Follow up on the recorded next step: "{opp["next_step"]}".',
                opp_cite(opp, "next_step"),
            )
        )
    for it in items:
        if not isinstance(it, Statement):
            continue
        if it.section == "risks":
            out.append(Statement.of(s, f"Address the open risk: {it.text}", it.cites))
        elif it.section == "competition" and "this deal" in it.text:
            out.append(
                Statement.of(s, f"Be ready to differentiate against {opp['competitor']}.", it.cites)
            )
        elif it.section == "news":
            low = it.text.lower()
            if any(w in low for w in _NEGATIVE):
                out.append(
                    Statement.of(
                        s,
                        f"Budgets may be under review after this news; confirm the budget owner and timing: {it.text}",
                        it.cites,
                    )
                )
            elif any(w in low for w in _POSITIVE):
                out.append(
                    Statement.of(
                        s, f"Open with their news and what it changes for them: {it.text}", it.cites
                    )
                )
        elif it.section == "stakeholders" and "no longer at the company" in it.text:
            out.append(
                Statement.of(
                    s,
                    f"Someone on the deal has left; find who now holds their part. {it.text}",
                    it.cites,
                )
            )
    for c in inp.roles.get(opp["opportunity_id"], []):
        contact = inp.contacts.get(c["contact_id"])
        if (
            contact is not None
            and c["role"] == "economic_buyer"
            and opp["stage"] in ("proposal", "negotiation")
        ):
            out.append(
                Statement.of(
                    s,
                    f"Walk {person(contact)} (economic buyer) through the commercial terms.",
                    cite_row(
                        "crm.opportunity_contacts",
                        {"opportunity_id": c["opportunity_id"], "contact_id": c["contact_id"]},
                        c,
                        "role",
                    )
                    + contact_cite(contact, "first_name", "last_name"),
                )
            )
    if not out:
        out.append(
            Note(
                s, "Nothing in the data calls for a particular point; follow the stage's playbook."
            )
        )
    return out


def _identity_cite(row: dict[str, Any]) -> Cite:
    """The row a duplicate was read from: a hygiene run's cluster or the identity map's."""
    record = (("object_type", row["object_type"]), ("record_id", row["record_id"]))
    if row["cited"] == CLUSTERS:
        return Cite(CLUSTERS, (("run_id", row["run_id"]), *record), "cluster_id", row["entity_id"])
    return Cite(IDENTITY_TABLE, record, "entity_id", row["entity_id"])
