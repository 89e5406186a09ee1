"""What a briefing is built from: the contract-scoped reads, narrowed to the deals to brief.

Everything is read once per run through the context and indexed by deal and account,
so each briefing is dictionary look-ups. Only completed activities at or before the
data's as-of count as history; scheduled ones are the meetings to prepare.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from revstack.agents.deal_prep._hygiene import Hygiene, find_hygiene
from revstack.agents.engine import Context
from revstack.data.normalize import domain_from_website

__all__ = ["Inputs", "load_inputs", "upcoming_meetings"]

ACTIVITY_COLUMNS = [
    "activity_id",
    "activity_type",
    "direction",
    "status",
    "occurred_at",
    "account_id",
    "contact_id",
    "opportunity_id",
    "subject",
]
NEWS_DAYS = 180
HISTORY_DAYS = 90  # the account section counts activity of these days
# What a risk flag must carry to be shown (the handoff check on pipeline health's output).
FLAG_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "opportunity_id": pl.String(),
    "signal": pl.String(),
    "reason": pl.String(),
}


@dataclass
class Inputs:
    as_of: dt.datetime
    definitions: Any
    deals: dict[str, dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    contacts: dict[str, dict[str, Any]]
    roles: dict[str, list[dict[str, Any]]]
    history: dict[str, list[dict[str, Any]]]
    deals_by_account: dict[str, list[str]]
    acts_by_account: dict[str, list[dict[str, Any]]]
    acts_by_deal: dict[str, list[dict[str, Any]]]
    news_by_account: dict[str, list[dict[str, Any]]]
    domains: dict[str, str | None]
    flags: dict[str, list[dict[str, Any]]]
    flags_run: str | None
    hygiene: Hygiene
    notes: list[str] = field(default_factory=list)
    # Statements the same for every briefing of a run that shares their key (an account's
    # activity), built once.
    memo: dict[tuple[str, str], Any] = field(default_factory=dict)


def _rows_by(df: pl.DataFrame, key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in df.iter_rows(named=True):
        if row[key] is not None:
            out[row[key]].append(row)
    return out


def _recent_and_last(acts: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """An account's activities as a briefing reads them: those of the last HISTORY_DAYS
    (a day more, so the section's own day count decides) and the latest one, in order.
    Years of history as Python rows were most of reading a briefing's inputs on mid."""
    since = as_of - dt.timedelta(days=HISTORY_DAYS + 1)
    latest = pl.int_range(pl.len()).over("account_id") == pl.len().over("account_id") - 1
    return acts.filter(
        pl.col("account_id").is_not_null() & ((pl.col("occurred_at") >= since) | latest)
    )


def upcoming_meetings(ctx: Context) -> pl.DataFrame:
    """Scheduled meetings after the data's as-of that belong to a deal, earliest first."""
    acts = ctx.table("crm.activities", ACTIVITY_COLUMNS)
    return acts.filter(
        (pl.col("activity_type") == "meeting")
        & (pl.col("status") == "scheduled")
        & (pl.col("occurred_at") > ctx.as_of)
        & pl.col("opportunity_id").is_not_null()
    ).sort("occurred_at", "activity_id")


def _latest_flags(ctx: Context) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """Pipeline health's flags of its latest run, checked at the handoff."""
    raw = ctx.table("ops.risk_flags")
    if raw.is_empty():
        return {}, None
    flags = ctx.validated("ops.risk_flags", raw, FLAG_SCHEMA, key="opportunity_id")
    if flags.is_empty():
        return {}, None
    latest = str(flags["run_id"].max())
    rows = flags.filter(pl.col("run_id") == latest).sort("opportunity_id", "signal")
    return _rows_by(rows, "opportunity_id"), latest


def load_inputs(ctx: Context, deal_ids: Sequence[str], definitions: Any) -> Inputs:
    """Read and index everything the briefings of ``deal_ids`` need."""
    as_of = ctx.as_of
    opps = ctx.table("crm.opportunities")
    targets = opps.filter(pl.col("opportunity_id").is_in(list(deal_ids)))
    account_ids = targets["account_id"].drop_nulls().unique().to_list()
    deals = opps.filter(
        pl.col("opportunity_id").is_in(list(deal_ids)) | pl.col("account_id").is_in(account_ids)
    )
    all_ids = deals["opportunity_id"].to_list()
    accounts_all = ctx.table("crm.accounts")
    accounts = accounts_all.filter(pl.col("account_id").is_in(account_ids)).with_columns(
        domain=domain_from_website(pl.col("website"))
    )
    roles = ctx.table("crm.opportunity_contacts").filter(
        pl.col("opportunity_id").is_in(list(deal_ids))
    )
    acts = (
        ctx.table("crm.activities", ACTIVITY_COLUMNS)
        .filter(
            (pl.col("status") == "completed")
            & (pl.col("occurred_at") <= as_of)
            & (
                pl.col("account_id").is_in(account_ids)
                | pl.col("opportunity_id").is_in(list(deal_ids))
            )
        )
        .sort("occurred_at", "activity_id")
    )
    contact_ids = set(roles["contact_id"].to_list()) | set(
        acts.filter(pl.col("opportunity_id").is_in(list(deal_ids)))["contact_id"]
        .drop_nulls()
        .to_list()
    )
    contacts_all = ctx.table("crm.contacts")
    contacts = contacts_all.filter(pl.col("contact_id").is_in(list(contact_ids)))
    history = (
        ctx.table("crm.opportunity_history")
        .filter(pl.col("opportunity_id").is_in(all_ids))
        .sort("opportunity_id", "changed_at", "history_id")
    )
    since = as_of - dt.timedelta(days=NEWS_DAYS)
    domains = [d for d in accounts["domain"].to_list() if d]
    news = (
        ctx.table("ref.news")
        .filter(pl.col("domain").is_in(domains) & pl.col("published_at").is_between(since, as_of))
        .sort("published_at", "news_id", descending=True)
    )
    by_domain = _rows_by(news, "domain")
    acc_rows = {r["account_id"]: r for r in accounts.iter_rows(named=True)}
    flags, flags_run = _latest_flags(ctx)
    hygiene = find_hygiene(
        ctx,
        definitions,
        accounts=account_ids,
        contacts=sorted(contact_ids),
        opportunities=list(deal_ids),
        all_accounts=accounts_all,
        all_contacts=contacts_all,
    )
    return Inputs(
        as_of=as_of,
        definitions=definitions,
        deals={r["opportunity_id"]: r for r in deals.iter_rows(named=True)},
        accounts=acc_rows,
        users={r["user_id"]: r for r in ctx.table("crm.users").iter_rows(named=True)},
        contacts={r["contact_id"]: r for r in contacts.iter_rows(named=True)},
        roles=_rows_by(roles.sort("opportunity_id", "contact_id"), "opportunity_id"),
        history=_rows_by(history, "opportunity_id"),
        deals_by_account={
            k: [r["opportunity_id"] for r in v]
            for k, v in _rows_by(deals.sort("created_at", "opportunity_id"), "account_id").items()
        },
        acts_by_account=_rows_by(_recent_and_last(acts, as_of), "account_id"),
        acts_by_deal=_rows_by(
            acts.filter(pl.col("opportunity_id").is_in(list(deal_ids))), "opportunity_id"
        ),
        news_by_account={a: by_domain.get(r["domain"], []) for a, r in acc_rows.items()},
        domains={a: r["domain"] for a, r in acc_rows.items()},
        flags=flags,
        flags_run=flags_run,
        hygiene=hygiene,
    )
