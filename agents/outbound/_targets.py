"""Who to write to, and at which step of which sequence.

Accounts with no open deal are in a sequence: ``prospecting`` for prospects,
``expansion`` for customers. A contact's step comes from their email history outside
deals: no recent outreach -> step 1 (only when the account has a fresh signal: news,
or inbound interest from its people); one or two of our emails unanswered, the last
at least ``FOLLOW_UP_DAYS`` ago -> step 2 or 3, following up that email; a reply, or
three unanswered emails -> no draft (a person takes over, or the sequence is done).
Contacts are tried in order of seniority; validity is the guardrails' job, not this
module's, so a contact who left the company is still a candidate and gets blocked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from revstack.agents.engine import Context

__all__ = [
    "Candidate",
    "candidates",
    "recent_activities",
    "SEQUENCES",
    "WINDOW_DAYS",
    "FOLLOW_UP_DAYS",
    "NEWS_DAYS",
]

SEQUENCES = {"prospect": "prospecting", "customer": "expansion"}
WINDOW_DAYS = 30  # outreach older than this has lapsed; a new sequence may start
FOLLOW_UP_DAYS = 4
NEWS_DAYS = 60
INTENT_DAYS = 30
# Words in a headline that make it a reason to write (layoffs are not).
POSITIVE_NEWS = ("raises", "appoints", "launches", "opens", "acquires", "results", "expands")
_SENIORITY = (
    ("chief", 0),
    ("ceo", 0),
    ("cto", 0),
    ("cfo", 0),
    ("coo", 0),
    ("cro", 0),
    ("svp", 1),
    ("vp", 1),
    ("head", 2),
    ("director", 2),
    ("manager", 3),
    ("lead", 3),
)

Candidate = dict[str, Any]


def _rank(title: pl.Expr) -> pl.Expr:
    t = title.str.to_lowercase().fill_null("")
    expr = pl.lit(9)
    for word, rank in reversed(_SENIORITY):
        expr = pl.when(t.str.contains(rf"\b{word}\b")).then(pl.lit(rank)).otherwise(expr)
    return expr


def recent_activities(ctx: Context) -> pl.DataFrame:
    """The activities any of this agent's windows can see (the last month, not four years)."""
    since = ctx.as_of - dt.timedelta(days=max(WINDOW_DAYS, INTENT_DAYS))
    return ctx.table("crm.activities", since=("occurred_at", since))


def _state(ctx: Context, contact_ids: pl.Series) -> pl.DataFrame:
    """Per contact: unanswered outbound emails in the window, the last one, any reply."""
    since = ctx.as_of - dt.timedelta(days=WINDOW_DAYS)
    acts = (
        recent_activities(ctx)
        .filter(
            pl.col("contact_id").is_in(contact_ids.implode())
            & pl.col("opportunity_id").is_null()
            & (pl.col("status") == "completed")
            & pl.col("occurred_at").is_between(since, ctx.as_of)
        )
        .sort("occurred_at", "activity_id")
    )
    heard = (
        acts.filter(pl.col("direction").is_in(["inbound", "two_way"]))
        .group_by("contact_id")
        .agg(last_heard=pl.col("occurred_at").max())
    )
    ours = acts.filter((pl.col("direction") == "outbound") & (pl.col("activity_type") == "email"))
    touched = (
        acts.filter(pl.col("direction") == "outbound").group_by("contact_id").agg(touches=pl.len())
    )
    sent = (
        ours.join(heard, on="contact_id", how="left")
        .filter(pl.col("last_heard").is_null() | (pl.col("occurred_at") > pl.col("last_heard")))
        .group_by("contact_id")
        .agg(
            unanswered=pl.len(),
            prev_id=pl.col("activity_id").last(),
            prev_subject=pl.col("subject").last(),
            prev_at=pl.col("occurred_at").last(),
        )
    )
    return sent.join(heard, on="contact_id", how="full", coalesce=True).join(
        touched, on="contact_id", how="full", coalesce=True
    )


def _signals(ctx: Context, accounts: pl.DataFrame) -> pl.DataFrame:
    """Per account: the freshest positive news item, and the last inbound touch of its people."""
    since = ctx.as_of - dt.timedelta(days=NEWS_DAYS)
    news = (
        ctx.table("ref.news", ["news_id", "domain", "published_at", "headline"])
        .filter(
            pl.col("published_at").is_between(since, ctx.as_of)
            & pl.col("headline").str.to_lowercase().str.contains("|".join(POSITIVE_NEWS))
        )
        .sort("published_at", "news_id", descending=True)
        .unique("domain", keep="first")
    )
    intent_since = ctx.as_of - dt.timedelta(days=INTENT_DAYS)
    inbound = (
        recent_activities(ctx)
        .filter(
            pl.col("account_id").is_in(accounts["account_id"].implode())
            & (pl.col("direction") == "inbound")
            & (pl.col("status") == "completed")
            & pl.col("occurred_at").is_between(intent_since, ctx.as_of)
        )
        .sort("occurred_at", "activity_id", descending=True)
        .unique("account_id", keep="first")
        .select("account_id", intent_id="activity_id", intent_at="occurred_at")
    )
    return (
        accounts.join(news.rename({"published_at": "news_at"}), on="domain", how="left")
        .join(inbound, on="account_id", how="left")
        .select("account_id", "news_id", "news_at", "headline", "intent_id", "intent_at")
    )


def candidates(ctx: Context, accounts: pl.DataFrame, contacts: pl.DataFrame) -> pl.DataFrame:
    """One row per (contact, sequence, step) the agent would draft, best first per account.

    ``accounts`` carries ``domain``; ``contacts`` is crm.contacts.
    """
    open_accounts = (
        ctx.table("crm.opportunities", ["account_id", "is_closed"])
        .filter(~pl.col("is_closed"))
        .select("account_id")
        .unique()
    )
    eligible = accounts.filter(pl.col("account_type").is_in(list(SEQUENCES))).join(
        open_accounts, on="account_id", how="anti"
    )
    people = contacts.join(eligible.select("account_id", "account_type"), on="account_id")
    state = _state(ctx, people["contact_id"])
    signals = _signals(ctx, eligible)
    cutoff = ctx.as_of - dt.timedelta(days=FOLLOW_UP_DAYS)
    rows = (
        people.join(state, on="contact_id", how="left")
        .join(signals, on="account_id", how="left")
        .with_columns(
            unanswered=pl.col("unanswered").fill_null(0),
            touches=pl.col("touches").fill_null(0),
            sequence=pl.col("account_type").replace_strict(SEQUENCES),
        )
        .with_columns(
            step=pl.when(pl.col("last_heard").is_not_null())
            .then(None)  # they replied: a person's turn
            .when(
                (pl.col("touches") == 0)
                & (pl.col("news_id").is_not_null() | pl.col("intent_id").is_not_null())
            )
            .then(pl.lit(1))
            .when(pl.col("unanswered").is_between(1, 2) & (pl.col("prev_at") <= cutoff))
            .then(pl.col("unanswered") + 1)
            .otherwise(None)
        )
        .filter(pl.col("step").is_not_null())
        # ranked after the filter: a tenth of the people have a step on mid
        .with_columns(seniority=_rank(pl.col("title")))
    )
    return rows.sort(
        "account_id", "step", "seniority", "contact_id", descending=[False, True, False, False]
    )
