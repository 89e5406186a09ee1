"""Statements that cite the rows they came from, shared by agents that write prose.

A ``Cite`` names one field of one row (table, primary key, field) and the value
the statement used, so anyone can look it up and check it. A ``Statement`` is a
sentence with at least one cite: building one without a source is an error, which
is how "nothing is invented" is enforced in code rather than hoped for. A ``Note``
is the briefing talking about its own inputs ("no news in the feed"); it states
no fact about a record and is counted apart.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "Cite",
    "Note",
    "Statement",
    "cite_keyed",
    "cite_row",
    "grounded",
    "jsonable",
    "value_matches",
]

_MARKER = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A capitalised word that does not start a sentence: a name a rewrite might invent.
_NAME = re.compile(r"(?<![.!?:]\s)(?<!^)\b([A-Z][\w'&-]+)")


def jsonable(value: Any) -> Any:
    """A value as JSON keeps it: dates as ISO text, decimals as floats."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")  # full precision: the stated value is the stored one
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def value_matches(stated: Any, stored: Any) -> bool:
    """Does a cited value equal what the row holds (blank text counts as empty)?"""
    stored = jsonable(stored)
    if isinstance(stored, str) and stored.strip() == "" and stated in (None, ""):
        return True
    if isinstance(stated, int | float) and isinstance(stored, int | float):
        return not isinstance(stated, bool) and math.isclose(stated, stored, rel_tol=1e-9)
    return bool(stated == stored)


class Cite(NamedTuple):
    """One field of one row: ``crm.opportunities {opportunity_id: O1} amount = 5000.0``.
    A named tuple: equal and hashed as a frozen dataclass of these fields would be, and a
    mid briefing run builds a few hundred thousand of them."""

    table: str
    key: tuple[tuple[str, str], ...]
    field: str
    value: Any

    def row(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.table, self.key

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": dict(self.key),
            "field": self.field,
            "value": self.value,
        }


_AS_IS = (str, int, bool, type(None))  # what jsonable returns unchanged
_new = tuple.__new__  # a Cite from its four fields, without NamedTuple's __new__ frame


def cite_row(
    table: str, key: Mapping[str, Any], row: Mapping[str, Any], *fields: str
) -> list[Cite]:
    """Cites of ``fields`` of one row, values taken from the row itself."""
    k = tuple((c, v if type(v) is str else str(v)) for c, v in key.items())
    out = []
    for f in fields:
        v = row[f]
        out.append(_new(Cite, (table, k, f, v if type(v) in _AS_IS else jsonable(v))))
    return out


def cite_keyed(table: str, pk: str, row: Mapping[str, Any], *fields: str) -> list[Cite]:
    """``cite_row(table, {pk: row[pk]}, row, *fields)``: a row keyed by one of its own
    columns (most cited rows), without the key's mapping."""
    v = row[pk]
    k = ((pk, v if type(v) is str else str(v)),)
    return [
        _new(Cite, (table, k, f, x if type(x := row[f]) in _AS_IS else jsonable(x))) for f in fields
    ]


@dataclass(frozen=True)
class Statement:
    """A sentence and the rows it came from; at least one, always."""

    section: str
    text: str
    cites: tuple[Cite, ...]

    def __post_init__(self) -> None:
        if not self.cites:
            raise ValueError(f"statement without a source: {self.text!r}")

    @classmethod
    def of(cls, section: str, text: str, cites: Iterable[Cite]) -> Statement:
        # the same field of the same row cited twice is one citation
        return cls(section, text, tuple(dict.fromkeys(cites)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "text": self.text,
            "cites": [c.to_dict() for c in self.cites],
        }


@dataclass(frozen=True)
class Note:
    """The document speaking about its inputs, not about a record (no citation)."""

    section: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "text": self.text, "note": True, "cites": []}


def grounded(original: str, rewritten: str, *, allowed: str = "") -> str | None:
    """Why ``rewritten`` may not replace ``original`` (None: it may).

    The markers must be the same (none lost, none added); every number and every
    capitalised word inside a sentence must already be in the original (or in
    ``allowed``, e.g. the facts a draft was built from).
    """
    if sorted(_MARKER.findall(original)) != sorted(_MARKER.findall(rewritten)):
        return "citation markers changed"
    plain_original = _MARKER.sub("", original) + " " + allowed
    plain = _MARKER.sub("", rewritten)
    numbers = set(_NUMBER.findall(plain_original))
    new_numbers = [n for n in _NUMBER.findall(plain) if n not in numbers]
    if new_numbers:
        return f"numbers not in the source: {', '.join(new_numbers[:3])}"
    words = {w.lower() for w in re.findall(r"[\w'&-]+", plain_original)}
    new_names = [n for n in _NAME.findall(plain) if n.lower() not in words]
    if new_names:
        return f"names not in the source: {', '.join(new_names[:3])}"
    return None
