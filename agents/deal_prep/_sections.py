"""The facts of a briefing: the meeting, the deal, the account's history, the stakeholders.

Each function returns statements (text plus the rows it came from) and notes; the
values in the text are the values cited, formatted.
"""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Any

from revstack.agents._cite import Cite, Note, Statement, cite_keyed, cite_row
from revstack.agents.deal_prep._inputs import HISTORY_DAYS, Inputs, window_start

__all__ = [
    "account_history",
    "an",
    "day",
    "deal_facts",
    "meeting_facts",
    "money",
    "person",
    "stakeholders",
]

Item = Statement | Note

ENGAGED = ("inbound", "two_way")
ROLE_ORDER = (
    "economic_buyer",
    "decision_maker",
    "champion",
    "technical_buyer",
    "influencer",
    "user",
)


def money(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.2f}"


def day(value: Any) -> str:
    if value is None:
        return "-"
    return value.date().isoformat() if isinstance(value, dt.datetime) else value.isoformat()


def words(key: Any) -> str:
    return str(key).replace("_", " ") if key is not None else "-"


def an(word: str) -> str:
    """'an email', 'a meeting'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def person(c: dict[str, Any]) -> str:
    name = " ".join(p for p in (c.get("first_name"), c.get("last_name")) if p)
    return name or c["contact_id"]


def opp_cite(o: dict[str, Any], *fields: str) -> list[Cite]:
    return cite_keyed("crm.opportunities", "opportunity_id", o, *fields)


def acc_cite(a: dict[str, Any], *fields: str) -> list[Cite]:
    return cite_keyed("crm.accounts", "account_id", a, *fields)


def contact_cite(c: dict[str, Any], *fields: str) -> list[Cite]:
    return cite_keyed("crm.contacts", "contact_id", c, *fields)


def act_cite(a: dict[str, Any], *fields: str) -> list[Cite]:
    return cite_keyed("crm.activities", "activity_id", a, *fields)


def meeting_facts(inp: Inputs, opp: dict[str, Any], meeting: dict[str, Any] | None) -> list[Item]:
    s = "meeting"
    if meeting is None:
        return [Note(s, "Prepared on demand, not for a booked meeting.")]
    text = f"{meeting['subject'] or 'Meeting'} on {meeting['occurred_at']:%Y-%m-%d %H:%M} (UTC)"
    cites = act_cite(meeting, "occurred_at", "subject", "opportunity_id")
    c = inp.contacts.get(meeting["contact_id"] or "")
    if c is not None:
        text += f" with {person(c)}" + (f", {c['title']}" if c.get("title") else "")
        cites += contact_cite(c, "first_name", "last_name", "title")
    return [Statement.of(s, text + f", on the deal {opp['name']}.", cites + opp_cite(opp, "name"))]


def deal_facts(inp: Inputs, opp: dict[str, Any], at: dt.date) -> list[Item]:
    s = "deal"
    out: list[Item] = []
    cites = opp_cite(opp, "stage", "amount", "close_date", "forecast_category")
    text = (
        f"Stage {words(opp['stage'])}, amount {money(opp['amount'])}, close date "
        f"{day(opp['close_date'])}, forecast category {words(opp['forecast_category'])}"
    )
    if opp.get("stage_changed_at") is not None:
        since = (at - opp["stage_changed_at"].date()).days
        text += f"; in this stage since {day(opp['stage_changed_at'])} ({since} days by {day(at)})"
        cites += opp_cite(opp, "stage_changed_at")
    owner = inp.users.get(opp.get("owner_id") or "")
    if owner is not None:
        text += f"; owner {owner['name']}"
        cites += opp_cite(opp, "owner_id") + cite_row(
            "crm.users", {"user_id": owner["user_id"]}, owner, "name"
        )
    out.append(Statement.of(s, text + ".", cites))
    made = [
        f
        for f in ("created_at", "opportunity_type", "lead_source", "product")
        if opp.get(f) is not None
    ]
    if made:
        parts = {
            "created_at": f"created {day(opp.get('created_at'))}",
            "opportunity_type": f"as {words(opp.get('opportunity_type'))}",
            "lead_source": f"lead source {words(opp.get('lead_source'))}",
            "product": f"product {opp.get('product')}",
        }
        out.append(
            Statement.of(
                s, "The deal was " + ", ".join(parts[f] for f in made) + ".", opp_cite(opp, *made)
            )
        )
    rows = inp.history.get(opp["opportunity_id"], [])
    pushes = [
        (a, b)
        for a, b in zip(rows, rows[1:], strict=False)
        if a["close_date"] and b["close_date"] and b["close_date"] > a["close_date"]
    ]
    if pushes:
        path = " -> ".join(
            [day(pushes[0][0]["close_date"])] + [day(b["close_date"]) for _, b in pushes]
        )
        hist = [
            c
            for a, b in pushes
            for c in (
                cite_row(
                    "crm.opportunity_history", {"history_id": a["history_id"]}, a, "close_date"
                )
                + cite_row(
                    "crm.opportunity_history",
                    {"history_id": b["history_id"]},
                    b,
                    "close_date",
                    "changed_at",
                )
            )
        ]
        out.append(
            Statement.of(s, f"The close date was pushed out {len(pushes)} time(s): {path}.", hist)
        )
    amounts = [
        (a, b)
        for a, b in zip(rows, rows[1:], strict=False)
        if a["amount"] is not None and b["amount"] is not None and a["amount"] != b["amount"]
    ]
    if amounts:
        a, b = amounts[-1]
        out.append(
            Statement.of(
                s,
                f"Amount last changed on {day(b['changed_at'])}, from {money(a['amount'])} to {money(b['amount'])}.",
                cite_row("crm.opportunity_history", {"history_id": a["history_id"]}, a, "amount")
                + cite_row(
                    "crm.opportunity_history",
                    {"history_id": b["history_id"]},
                    b,
                    "amount",
                    "changed_at",
                ),
            )
        )
    return out


def account_history(inp: Inputs, opp: dict[str, Any], at: dt.date) -> list[Item]:
    a = inp.accounts.get(opp.get("account_id") or "")
    if a is None:
        return [
            Note("account", "The deal names no account in the CRM, so there is no account history.")
        ]
    # What does not depend on the day: built once per deal and run (a deal may have
    # meetings on several days). The activity: once per account and day (a big account's
    # statement cites hundreds of rows).
    static = ("account_static", opp["opportunity_id"])
    if static not in inp.memo:
        inp.memo[static] = _account_static(inp, opp, a)
    key = ("account_activity", a["account_id"], at.isoformat())
    if key not in inp.memo:
        inp.memo[key] = _account_activity(inp, a, at)
    return [*inp.memo[static], inp.memo[key]]


def _account_static(inp: Inputs, opp: dict[str, Any], a: dict[str, Any]) -> list[Item]:
    s = "account"
    # The firmographics, and the earlier closed deals when this deal is open (so not among
    # them), are the account's: one statement shared by its deals' briefings.
    firm = ("account_firmographics", a["account_id"])
    if firm not in inp.memo:
        inp.memo[firm] = _firmographics(a)
    out: list[Item] = [inp.memo[firm]]
    others = [
        inp.deals[d]
        for d in inp.deals_by_account.get(a["account_id"], [])
        if d != opp["opportunity_id"]
    ]
    if opp["is_won"] or opp["is_closed"]:
        out.append(_earlier_deals(a, others))
    else:
        earlier = ("account_earlier", a["account_id"])
        if earlier not in inp.memo:
            inp.memo[earlier] = _earlier_deals(a, others)
        out.append(inp.memo[earlier])
    still = [o for o in others if not o["is_closed"]]
    if still:
        listed = ", ".join(
            f"{o['name']} ({words(o['stage'])}, {money(o['amount'])})" for o in still[:5]
        )
        more = f" and {len(still) - 5} more" if len(still) > 5 else ""
        out.append(
            Statement.of(
                s,
                f"Other open deals on the account: {listed}{more}.",
                [c for o in still for c in opp_cite(o, "name", "stage", "amount")],
            )
        )
    return out


def _firmographics(a: dict[str, Any]) -> Statement:
    present = [
        f
        for f in ("account_type", "industry", "employees", "city", "country")
        if a.get(f) not in (None, "")
    ]
    bits = {
        "account_type": an(words(a.get("account_type"))),
        "industry": f"in {a.get('industry')}",
        "employees": f"with {a.get('employees'):,} employees"
        if a.get("employees") is not None
        else "",
        "city": f"based in {a.get('city')}",
        "country": f"({a.get('country')})" if a.get("city") else f"in {a.get('country')}",
    }
    text = (
        f"{a['name']} is " + " ".join(bits[f] for f in present)
        if present
        else f"{a['name']}: no firmographics recorded"
    )
    return Statement.of("account", text + ".", acc_cite(a, "name", *present))


def _earlier_deals(a: dict[str, Any], others: list[dict[str, Any]]) -> Statement:
    s = "account"
    won = [o for o in others if o["is_won"]]
    lost = [o for o in others if o["is_closed"] and not o["is_won"]]
    if won or lost:
        parts = []
        if won:
            last = max(won, key=lambda o: o["close_date"] or dt.date.min)
            priced = [o for o in won if o["amount"] is not None]
            total = money(sum(float(o["amount"]) for o in priced))
            basis = "" if len(priced) == len(won) else f" over the {len(priced)} with an amount"
            parts.append(
                f"{len(won)} won (total {total}{basis}, latest closing {day(last['close_date'])})"
            )
        if lost:
            last = max(lost, key=lambda o: o["close_date"] or dt.date.min)
            parts.append(f"{len(lost)} lost (latest closing {day(last['close_date'])})")
        cites = [c for o in won for c in opp_cite(o, "stage", "amount", "close_date")]
        cites += [c for o in lost for c in opp_cite(o, "stage", "close_date")]
        return Statement.of(s, "Earlier deals with this account: " + "; ".join(parts) + ".", cites)
    return Statement.of(s, "No earlier closed deals with this account.", acc_cite(a, "account_id"))


def _account_activity(inp: Inputs, a: dict[str, Any], at: dt.date) -> Item:
    s = "account"
    acts = inp.acts_by_account.get(a["account_id"], [])
    since = window_start(at, HISTORY_DAYS)
    # the account's activities are in time order: the window's are the last ones
    first = bisect.bisect_left(inp.times_by_account.get(a["account_id"], []), since)
    recent = acts[first:]
    if recent:
        # one field per row keeps big accounts' briefings small; the last ones carry more
        text = f"{len(recent)} completed activities on the account in the {HISTORY_DAYS} days to {day(at)}"
        cites = inp.occurred_by_account[a["account_id"]][first:]
        text += (
            f"; the latest {an(recent[-1]['activity_type'])} on {day(recent[-1]['occurred_at'])}"
        )
        cites += act_cite(recent[-1], "activity_type")
        held = next((x for x in reversed(recent) if x["activity_type"] == "meeting"), None)
        if held is not None:
            text += f"; last meeting held {day(held['occurred_at'])} ({held['subject'] or 'no subject'})"
            cites += act_cite(held, "activity_type", "subject")
        return Statement.of(s, text + ".", cites)
    elif acts:
        last = acts[-1]
        return Statement.of(
            s,
            f"No completed activity on the account in the {HISTORY_DAYS} days to "
            f"{day(at)}; the last was {an(last['activity_type'])} on {day(last['occurred_at'])}.",
            act_cite(last, "activity_type", "occurred_at"),
        )
    else:
        return Note(s, "No completed activity on the account is recorded.")


def stakeholders(inp: Inputs, opp: dict[str, Any]) -> list[Item]:
    s = "stakeholders"
    out: list[Item] = []
    acts = inp.acts_by_deal.get(opp["opportunity_id"], [])
    engaged: dict[str, list[dict[str, Any]]] = {}
    for x in acts:
        if x["direction"] in ENGAGED and x["contact_id"]:
            engaged.setdefault(x["contact_id"], []).append(x)
    roles = sorted(
        inp.roles.get(opp["opportunity_id"], []),
        key=lambda r: (
            ROLE_ORDER.index(r["role"]) if r["role"] in ROLE_ORDER else 99,
            r["contact_id"],
        ),
    )
    if not roles:
        out.append(
            Statement.of(s, "No contact has a buying role on this deal.", opp_cite(opp, "name"))
        )
    for r in roles:
        c = inp.contacts.get(r["contact_id"])
        key = {"opportunity_id": r["opportunity_id"], "contact_id": r["contact_id"]}
        cites = cite_row("crm.opportunity_contacts", key, r, "role", "is_primary")
        if c is None:
            out.append(
                Statement.of(
                    s,
                    f"{r['contact_id']} ({words(r['role'])}) is not in the CRM's contacts.",
                    cites,
                )
            )
            continue
        text = f"{person(c)}: {words(r['role'])}" + (" (primary)" if r["is_primary"] else "")
        cites += contact_cite(c, "first_name", "last_name")
        if c.get("title"):
            text += f", {c['title']}"
            cites += contact_cite(c, "title")
        mine = engaged.get(c["contact_id"], [])
        if mine:
            text += f"; {len(mine)} inbound or two-way touch(es) on the deal, last on {day(mine[-1]['occurred_at'])} ({mine[-1]['activity_type']})"
            cites += [cc for x in mine for cc in inp.touches[x["activity_id"]]]
            cites += act_cite(mine[-1], "occurred_at", "activity_type")
        else:
            text += "; no inbound or two-way activity with them on the deal"
        gone = [
            f
            for f, bad in (("is_active", not c["is_active"]), ("email_bounced", c["email_bounced"]))
            if bad
        ]
        if gone:
            text += "; " + " and ".join(
                {
                    "is_active": "marked as no longer at the company",
                    "email_bounced": "their email bounced",
                }[f]
                for f in gone
            )
            cites += contact_cite(c, *gone)
        out.append(Statement.of(s, text + ".", cites))
    named = {r["contact_id"] for r in roles}
    extra = [cid for cid in engaged if cid not in named and cid in inp.contacts]
    for cid in sorted(extra)[:5]:
        c, mine = inp.contacts[cid], engaged[cid]
        out.append(
            Statement.of(
                s,
                f"{person(c)} has no role on the deal but {len(mine)} inbound or two-way touch(es), "
                f"last on {day(mine[-1]['occurred_at'])}.",
                contact_cite(c, "first_name", "last_name")
                + [cc for x in mine for cc in inp.touches[x["activity_id"]]]
                + act_cite(mine[-1], "occurred_at"),
            )
        )
    return out
