"""Evidence rows and plain-language reasons behind each pipeline health flag.

Every flag carries the source rows a manager (or deal prep) can check: the history rows
that pushed the close date, the last answered activity, the champion's contact record.
Built only for the flagged deals, in plain Python over small slices.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import polars as pl

__all__ = ["evidence_for", "model_reason", "CODE_TEXT"]

_PUSHES = ("close_date_slipped", "close_date_passed", "phantom")  # show the pushes
_ANSWERS = ("gone_quiet", "close_date_passed", "phantom")  # show the last answer

CODE_TEXT = {
    "quiet": "buyer silence",
    "slips": "close-date pushes",
    "close_date": "close date",
    "stage_age": "time in stage",
    "buyers": "thin buying group",
    "champion": "champion",
    "amount": "deal size and amount changes",
    "stage": "stage and forecast category",
}


def _plain(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 4)
    return v


def _by_deal_rows(rows: pl.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """``rows`` as dicts of their deal and ``names``, values ``_plain``, column by column."""
    plain = (pl.Datetime, pl.Date, pl.Float32, pl.Float64)  # the rest _plain leaves as is
    cols = [
        [_plain(v) for v in rows[c].to_list()]
        if isinstance(rows.schema[c], plain)
        else rows[c].to_list()
        for c in names
    ]
    return [
        {"opportunity_id": o, **dict(zip(names, values, strict=True))}
        for o, *values in zip(rows["opportunity_id"].to_list(), *cols, strict=True)
    ]


def _by_deal(rows: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    names = [c for c in rows.columns if c != "opportunity_id"]
    for r in _by_deal_rows(rows, names):
        out[r.pop("opportunity_id")].append(r)
    return out


def _code_text(code: str, s: dict[str, Any]) -> str:
    """One reason code said with the deal's own figures."""
    if code == "quiet":
        return (
            f"no answer from the buyer for {s['days_since_two_way']} days, "
            f"{s['outbound_since_two_way']} touches unanswered"
        )
    if code == "slips":
        return f"close date pushed {s['close_date_pushes']} times"
    if code == "close_date":
        d = s["days_to_close"]
        return (
            "no close date"
            if d is None
            else (f"close date passed {-d} days ago" if d < 0 else f"close date in {d} days")
        )
    if code == "stage_age":
        return f"{s['days_in_stage']} days in {s['stage']}"
    if code == "buyers":
        eb = "" if s["has_economic_buyer"] else ", no economic buyer"
        return f"{s['engaged_contacts']} engaged buyer contact(s){eb}"
    if code == "champion":
        if s["champion_left"]:
            return "the champion has left"
        return (
            "no champion on the deal" if not s["has_champion"] else "the champion has gone silent"
        )
    if code == "amount":
        if s["amount"] is None:
            return "no amount"
        first = s["first_amount"]
        return f"amount {s['amount']:,.0f}" + (
            f" (first {first:,.0f})" if s["amount_changes"] and first is not None else ""
        )
    return f"{s['stage']} / {s['forecast_category']}"


def model_reason(risk: float, codes: list[tuple[str, float]], state: dict[str, Any]) -> str:
    head = f"{risk:.0%} risk of slipping out of its quarter or being lost within 4 weeks"
    if not codes:
        return head
    parts = [f"{_code_text(c, state)} (+{p * 100:.0f} pts)" for c, p in codes]
    return head + ": " + "; ".join(parts)


def evidence_for(
    flags: pl.DataFrame,
    states: pl.DataFrame,
    history: pl.DataFrame,
    activities: pl.DataFrame,
    roles: pl.DataFrame,
    contacts: pl.DataFrame,
) -> list[str]:
    """A JSON evidence document per row of ``flags`` (as_of, opportunity_id, signal).

    Each kind of evidence is gathered only for the deals whose signals show it (a deal's
    rows depend on that deal alone): on mid, engaged contacts for every flagged deal were
    tens of thousands of rows no document printed."""

    def deals(*signals: str) -> pl.Expr:
        which = flags.filter(pl.col("signal").is_in(signals))["opportunity_id"].unique()
        return pl.col("opportunity_id").is_in(which.implode())

    ids = flags["opportunity_id"].unique().implode()
    as_of = flags["as_of"].max()
    h = (
        history.filter(
            deals(*_PUSHES, "amount_cut", "stage_age_outlier") & (pl.col("changed_at") <= as_of)
        )
        .sort("opportunity_id", "changed_at", "history_id")
        .with_columns(
            prev_close=pl.col("close_date").shift().over("opportunity_id"),
            prev_amount=pl.col("amount").shift().over("opportunity_id"),
            prev_stage=pl.col("stage").shift().over("opportunity_id"),
        )
    )
    pushes = _by_deal(
        h.filter(deals(*_PUSHES) & (pl.col("close_date") > pl.col("prev_close"))).select(
            "opportunity_id",
            "history_id",
            "changed_at",
            old_close_date="prev_close",
            new_close_date="close_date",
        )
    )
    amounts = _by_deal(
        h.filter(deals("amount_cut") & (pl.col("amount") != pl.col("prev_amount"))).select(
            "opportunity_id",
            "history_id",
            "changed_at",
            old_amount=pl.col("prev_amount").cast(pl.Float64),
            new_amount=pl.col("amount").cast(pl.Float64),
        )
    )
    entered = _by_deal(
        h.filter(
            deals("stage_age_outlier")
            & (pl.col("prev_stage").is_null() | (pl.col("stage") != pl.col("prev_stage")))
        )
        .group_by("opportunity_id")
        .last()
        .select("opportunity_id", "history_id", "changed_at", "stage")
    )
    acts = activities.filter(
        deals(*_ANSWERS, "low_multithreading")
        & (pl.col("occurred_at") <= as_of)
        & (pl.col("status") == "completed")
    )
    answered = acts.filter(pl.col("direction").is_in(["inbound", "two_way"]))
    last_answer = _by_deal(
        answered.filter(deals(*_ANSWERS))
        .sort("occurred_at", "activity_id")  # of two at one time, the later id
        .group_by("opportunity_id")
        .last()
        .select(
            "opportunity_id",
            "activity_id",
            "occurred_at",
            "activity_type",
            "direction",
            "contact_id",
        )
    )
    engaged = _by_deal(
        answered.filter(deals("gone_quiet", "low_multithreading"))
        .group_by("opportunity_id", "contact_id")
        .agg(first_answer=pl.col("occurred_at").min(), answers=pl.len())
        .sort("opportunity_id", "first_answer", "contact_id")
    )
    people = _by_deal(
        roles.filter(
            deals("champion_departed", "low_multithreading")
            & (pl.col("added_at").is_null() | (pl.col("added_at") <= as_of))
        )
        .join(contacts, on="contact_id", how="left")
        # crm.contacts holds today's record: what it says is only known at as_of if the
        # record has not changed since (see agents.features)
        .with_columns(
            [
                pl.when(pl.col("updated_at") <= as_of).then(c).alias(c)
                for c in ("is_active", "email_bounced")
            ]
        )
        .sort("opportunity_id", "contact_id")
        .select(
            "opportunity_id",
            "contact_id",
            "role",
            "title",
            "is_active",
            "email_bounced",
            "updated_at",
        )
    )
    keep = (
        "stage",
        "amount",
        "close_date",
        "forecast_category",
        "days_since_two_way",
        "days_in_stage",
        "close_date_pushes",
        "engaged_contacts",
        "days_to_close",
    )
    # each deal's figures once, not once per flag
    figures = {
        r.pop("opportunity_id"): r
        for r in _by_deal_rows(states.filter(pl.col("opportunity_id").is_in(ids)), keep)
    }
    no_figures = dict.fromkeys(keep)
    pick = {
        "gone_quiet": lambda o: {
            "last_answer": last_answer.get(o, []),
            "engaged_contacts": engaged.get(o, []),
        },
        "close_date_slipped": lambda o: {"pushes": pushes.get(o, [])},
        "champion_departed": lambda o: {
            "buying_roles": [
                p for p in people.get(o, []) if p["role"] in ("champion", "economic_buyer")
            ]
        },
        "low_multithreading": lambda o: {
            "engaged_contacts": engaged.get(o, []),
            "buying_roles": people.get(o, []),
        },
        "stage_age_outlier": lambda o: {"entered_stage": entered.get(o, [])},
        "close_date_passed": lambda o: {
            "pushes": pushes.get(o, [])[-3:],
            "last_answer": last_answer.get(o, []),
        },
        "phantom": lambda o: {
            "last_answer": last_answer.get(o, []),
            "pushes": pushes.get(o, [])[-3:],
        },
        "amount_cut": lambda o: {"amount_changes": amounts.get(o, [])},
    }
    out = []
    for o, signal in flags.select("opportunity_id", "signal").iter_rows():
        doc: dict[str, Any] = pick[signal](o) if signal in pick else {}
        doc["figures"] = figures.get(o, no_figures)
        out.append(json.dumps(doc, default=str))
    return out
