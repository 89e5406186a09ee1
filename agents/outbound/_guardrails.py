"""What must hold before a draft is queued for a person. Each guardrail returns why it
blocks (or nothing); a draft any guardrail blocks is recorded as blocked, not queued.

- ``placeholder``: no ``{placeholder}`` (or ``{{ }}`` / ``[[ ]]``) left in subject or body;
- ``untraceable``: every personal fact still matches the row it names, and a rewritten
  text adds no number or name beyond the template's words and the facts;
- ``do_not_contact``: the contact, or another record of the same person, is marked
  do-not-contact or opted out of email;
- ``bad_email``: missing or malformed address, a bounce, or a person who has left;
- ``duplicate``: one draft per person per sequence step, across runs and duplicate
  records;
- ``formula``: neither subject nor body starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return. A fact can lead a text (``{company} and what comes next``), and a
  sequencer's CSV or a spreadsheet would run such a text as a formula; a value nobody
  checked is not allowed to start what an agent writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from revstack.agents._cite import grounded, value_matches
from revstack.agents.outbound._compose import PLACEHOLDER, Draft
from revstack.data.csvwriter import FORMULA_START

__all__ = ["GUARDRAILS", "check", "placeholders", "screen"]

GUARDRAILS = (
    "placeholder",
    "untraceable",
    "do_not_contact",
    "bad_email",
    "duplicate",
    "formula",
)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def check(
    draft: Draft,
    contact: Mapping[str, Any],
    *,
    lookup: Mapping[tuple[str, str], Mapping[str, Any]],
    blocked_people: Mapping[str, str],
    person_keys: tuple[str, ...],
    taken: bool,
    template_text: str | None = None,
) -> list[tuple[str, str]]:
    """Every guardrail that blocks ``draft`` to ``contact``, with a one-line detail.

    ``lookup`` maps (table, key value) to the row the facts came from; ``blocked_people``
    maps a person key to why that person must not be written to; ``taken``: a draft
    for this person and step already exists; ``template_text``: the text before a
    rewrite (None: not rewritten).
    """
    out = placeholders(draft.subject, draft.body)
    for f in draft.facts:
        row = lookup.get((f.table, next(iter(f.key.values()))))
        if row is None or not value_matches(f.value, row.get(f.field)):
            out.append(("untraceable", f"{f.name} does not match {f.table}.{f.field} of {f.key}"))
            break
    if template_text is not None:
        why = grounded(template_text, draft.subject + "\n" + draft.body)
        if why:
            out.append(("untraceable", f"rewrite: {why}"))
    return out + screen(
        draft.subject,
        draft.body,
        contact,
        blocked_people=blocked_people,
        person_keys=person_keys,
        taken=taken,
    )


def placeholders(subject: str, body: str) -> list[tuple[str, str]]:
    """The ``placeholder`` guardrail."""
    left = sorted(set(PLACEHOLDER.findall(subject + "\n" + body)))
    return [("placeholder", f"unfilled {', '.join(left)}")] if left else []


def screen(
    subject: str,
    body: str,
    contact: Mapping[str, Any],
    *,
    blocked_people: Mapping[str, str],
    person_keys: tuple[str, ...],
    taken: bool,
) -> list[tuple[str, str]]:
    """The guardrails after ``untraceable``, in ``check``'s order: what a text and its
    person decide, without the facts (a draft that was not rewritten states its facts
    from the very rows ``check`` compares them with, so only a rewrite can make one
    untraceable)."""
    out: list[tuple[str, str]] = []
    for flag, label in (
        ("do_not_contact", "do not contact"),
        ("email_opt_out", "opted out of email"),
    ):
        if contact.get(flag):
            out.append(("do_not_contact", label))
            break
    else:
        for k in person_keys:
            if k in blocked_people:
                out.append(
                    ("do_not_contact", f"another record of this person: {blocked_people[k]}")
                )
                break
    email = (contact.get("email") or "").strip()
    if not email:
        out.append(("bad_email", "no email address"))
    elif not _EMAIL.match(email):
        out.append(("bad_email", f"malformed address {email!r}"))
    elif contact.get("email_bounced"):
        out.append(("bad_email", "the address bounced"))
    elif not contact.get("is_active", True):
        out.append(("bad_email", "marked as no longer at the company"))
    if taken:
        out.append(("duplicate", "this person already has a draft for this sequence step"))
    for part, text in (("subject", subject), ("body", body)):
        if text.startswith(FORMULA_START):
            out.append(
                (
                    "formula",
                    f"the {part} would start with {text[0]!r}, which a spreadsheet runs as a formula",
                )
            )
            break
    return out
