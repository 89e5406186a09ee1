"""A draft from a template and facts, each fact carrying the row it came from.

Templates name their facts as ``{placeholders}``. A fact whose source is blank stays
unfilled, so the placeholder guardrail catches it rather than the email going out
with a hole (or a guess) in it. Only the template's fixed words and the facts reach
the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from revstack.agents._cite import jsonable

__all__ = ["Draft", "Fact", "compose", "PLACEHOLDER"]

PLACEHOLDER = re.compile(r"\{[a-z_]+\}|\{\{|\}\}|\[\[|\]\]")

_SIGN_OFF = "\n\nBest,\n{sender_name}"
TEMPLATES: dict[tuple[str, int], tuple[str, str]] = {
    ("prospecting", 1): (
        "Idea for {company}",
        "Hi {first_name},\n\n{hook}\n\nWe help revenue teams keep their CRM data clean and their "
        "forecasts honest. Would a 20-minute call next week be useful?" + _SIGN_OFF,
    ),
    ("expansion", 1): (
        "{company} and what comes next",
        "Hi {first_name},\n\n{hook}\n\nAs {company} has worked with us since {customer_since}, I "
        "wondered whether a short review of what else we could take off your team's plate would "
        "help. Do you have 20 minutes next week?" + _SIGN_OFF,
    ),
    ("any", 2): (
        "Re: {previous_subject}",
        'Hi {first_name},\n\nFollowing up on my note of {previous_date} ("{previous_subject}"). '
        "Is this something your team is looking at this quarter? Happy to work around your "
        "calendar." + _SIGN_OFF,
    ),
    ("any", 3): (
        "Re: {previous_subject}",
        "Hi {first_name},\n\nI have not heard back since {previous_date}, so this is my last note "
        "on it for now. If the timing is better later, a one-line reply is enough and I will pick "
        "it up." + _SIGN_OFF,
    ),
}
HOOKS = {
    "news": 'I saw the news from {news_date}: "{headline}". Congratulations.',
    "intent": "Your team has been in touch with us recently (last on {intent_date}).",
}


@dataclass(frozen=True)
class Fact:
    """A personal fact in a draft and its source: one field of one row."""

    name: str
    value: Any
    table: str
    key: dict[str, str]
    field: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "fact": self.name,
            "value": jsonable(self.value),
            "table": self.table,
            "key": self.key,
            "field": self.field,
        }


@dataclass(frozen=True)
class Draft:
    subject: str
    body: str
    facts: tuple[Fact, ...]
    signals: tuple[str, ...]


def _fill(text: str, values: dict[str, str]) -> str:
    # a placeholder without a value stays as it is, for the guardrail to see
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def _shown(value: Any) -> str:
    return (
        str(value)[:10]
        if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d", str(value))
        else str(value)
    )


def compose(c: dict[str, Any], rows: dict[str, dict[str, Any] | None]) -> Draft:
    """The draft for candidate ``c``; ``rows`` holds its contact, account, owner, news,
    previous email, intent activity and first won deal (any may be None)."""
    facts: list[Fact] = []

    def fact(name: str, table: str, pk: str, row: dict[str, Any] | None, field: str) -> None:
        if row is not None and row.get(field) not in (None, ""):
            facts.append(Fact(name, jsonable(row[field]), table, {pk: str(row[pk])}, field))

    fact("first_name", "crm.contacts", "contact_id", rows["contact"], "first_name")
    fact("company", "crm.accounts", "account_id", rows["account"], "name")
    fact("sender_name", "crm.users", "user_id", rows["owner"], "name")
    signals: list[str] = []
    step = int(c["step"])
    if step == 1:
        if rows["news"] is not None:
            fact("headline", "ref.news", "news_id", rows["news"], "headline")
            fact("news_date", "ref.news", "news_id", rows["news"], "published_at")
            hook, signals = HOOKS["news"], [f"news {rows['news']['news_id']}"]
        else:
            assert rows["intent"] is not None  # a first step has news or an inbound (targets)
            fact("intent_date", "crm.activities", "activity_id", rows["intent"], "occurred_at")
            hook, signals = HOOKS["intent"], [f"inbound {rows['intent']['activity_id']}"]
        if c["sequence"] == "expansion":
            fact(
                "customer_since",
                "crm.opportunities",
                "opportunity_id",
                rows["first_win"],
                "close_date",
            )
        subject, body = TEMPLATES[(c["sequence"], 1)]
        body = body.replace("{hook}", hook)
        if c["sequence"] == "expansion" and rows["first_win"] is None:
            # the CRM holds no won deal for it (often: the win is on a duplicate record)
            body = body.replace(" since {customer_since}", "")
    else:
        fact("previous_subject", "crm.activities", "activity_id", rows["previous"], "subject")
        fact("previous_date", "crm.activities", "activity_id", rows["previous"], "occurred_at")
        subject, body = TEMPLATES[("any", step)]
        signals = [
            f"unanswered {rows['previous']['activity_id']}" if rows["previous"] else "unanswered"
        ]
    values = {f.name: _shown(f.value) for f in facts}
    if "customer_since" in values:
        values["customer_since"] = values["customer_since"][:4]  # the year is enough
    return Draft(_fill(subject, values), _fill(body, values), tuple(facts), tuple(signals))
