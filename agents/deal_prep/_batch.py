"""A run's briefings rendered together as frames: the same Markdown, HTML and stored
citations as ``_render.render`` and ``_agent._payload`` write one briefing at a time.

A weekly mid run cites some 300k fields; numbering each briefing's sources, joining
their lines, marking each statement with its numbers and writing each citation's JSON
were a few microseconds of Python per citation. Here each distinct item's citations are
taken apart once (rows, fields and values interned by dictionaries in C), escaped once
per distinct row, field and value (``Pieces``, as before), and the per-citation work is
polars': one row per citation of each briefing.
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _str
from typing import Any, NamedTuple

import polars as pl

from revstack.agents._cite import Note, Statement
from revstack.agents.deal_prep._render import SECTIONS, Pieces, page_head

__all__ = ["Batch", "value_json"]

Item = Statement | Note
_SECTION = {key: i for i, (key, _) in enumerate(SECTIONS)}
_U32 = pl.UInt32()


def value_json(v: Any) -> str:
    """``json.dumps(v, default=str)``: text, numbers and None as json.dumps writes them
    (floats by ``float.__repr__``, as its encoder does), anything else through it."""
    kind = type(v)
    if kind is str:
        return _str(v)
    if v is None:
        return "null"
    if kind is int:
        return int.__repr__(v)
    if kind is float and math.isfinite(v):
        return float.__repr__(v)
    if kind is bool:
        return "true" if v else "false"
    return json.dumps(v, default=str)


def _numbering() -> defaultdict[Any, int]:
    """A dictionary that numbers a key it has not seen 0, 1, 2 ... (in C: its missing
    keys' value is its length)."""
    d: defaultdict[Any, int] = defaultdict()
    d.default_factory = d.__len__
    return d


def _firsts(numbers: list[int], count: int) -> list[int]:
    """The place of each number's first occurrence in ``numbers`` (0 to count - 1)."""
    first = dict(zip(reversed(numbers), range(len(numbers) - 1, -1, -1), strict=True))
    return [first[n] for n in range(count)]


class _Cites(NamedTuple):
    ids: pl.DataFrame  # per citation of each distinct statement: item, row, field, value
    texts: dict[str, pl.Series]  # {row,field,value}_{md,html,json}, by those numbers


class Batch:
    """The items of a run's briefings, each distinct item (by identity) taken apart once.

    ``add`` a briefing's items and get its item numbers; ``payloads`` and ``render`` then
    write many briefings at once from those numbers. The batch keeps every item it was
    given, so an item's identity is not reused while it lives."""

    def __init__(self, pieces: Pieces | None = None) -> None:
        self.pieces = Pieces() if pieces is None else pieces
        self._index: dict[int, int] = {}  # id(item) -> item number
        self._items: list[Item] = []
        self._first: list[int] = []  # per item: its first citation's place
        # one entry per citation of each distinct statement, in order
        self._owner: list[int] = []
        self._tables: list[str] = []
        self._keys: list[Any] = []
        self._fields: list[str] = []
        self._values: list[Any] = []
        self._taken: _Cites | None = None

    def add(self, items: Sequence[Item]) -> list[int]:
        out = []
        index = self._index
        for it in items:
            got = index.get(id(it))
            if got is None:
                got = index[id(it)] = len(self._items)
                self._items.append(it)
                self._first.append(len(self._owner))
                if isinstance(it, Statement):
                    cites = it.cites
                    tables, keys, fields, values = zip(*cites, strict=True)
                    self._owner.extend(itertools.repeat(got, len(cites)))
                    self._tables += tables
                    self._keys += keys
                    self._fields += fields
                    self._values += values
                self._taken = None
            out.append(got)
        return out

    def _cites(self) -> _Cites:
        """The citations of the distinct statements taken apart, and their texts."""
        if self._taken is not None:
            return self._taken
        p = self.pieces
        # Interned by dictionaries in C, numbered 0, 1, 2 ... in order of first citation
        rows = _numbering()
        row_of = list(map(rows.__getitem__, zip(self._tables, self._keys, strict=True)))
        names = _numbering()
        field_of = list(map(names.__getitem__, self._fields))
        # Values by type and repr: True, 1 and 1.0 (and 0.0, -0.0) are equal keys but are
        # written differently; (type, repr) is one key per way of writing a value.
        vals = self._values
        values = _numbering()
        value_of = list(map(values.__getitem__, zip(map(type, vals), map(repr, vals), strict=True)))
        row_md: list[str] = []
        row_html: list[str] = []
        row_json: list[str] = []
        plain: dict[str, tuple[str, str, str]] = {}  # a table's head parts, key column's JSON
        for table, key in rows:
            if len(key) == 1:
                col, ident = key[0]
                if ident.isascii() and ident.isalnum():  # a record id: nothing to escape
                    parts = plain.get(table + "\0" + col)
                    if parts is None:
                        md, page = p.head((table, (("", ""),)))
                        parts = plain[table + "\0" + col] = (
                            md[:-2],
                            page[:-2],
                            f'{{"table": {_str(table)}, "key": {{{_str(col)}: "',
                        )
                    row_md.append(f"{parts[0]}{ident}: ")
                    row_html.append(f"{parts[1]}{ident}: ")
                    row_json.append(f'{parts[2]}{ident}"}}, "field": ')
                    continue
            md, page = p.head((table, key))
            row_md.append(md)
            row_html.append(page)
            row_json.append(_head_json((table, key)))
        fields = [(*p.field(name), _str(name)) for name in names]
        # Text that escapes to itself (printable ASCII, no markup, quote, backslash or
        # underscore) is written by polars; the rest value by value.
        shown = [vals[n] for n in _firsts(value_of, len(values))]
        words = [n for n, v in enumerate(shown) if type(v) is str]
        value_md: list[str | None] = [None] * len(shown)
        value_html: list[str | None] = [None] * len(shown)
        value_js: list[str | None] = [None] * len(shown)
        done = _plain_values(words, [shown[n] for n in words])
        for n, md, page, js in zip(*(c.to_list() for c in done.get_columns()), strict=True):
            value_md[n], value_html[n], value_js[n] = md, page, js
        for n, v in enumerate(shown):
            if value_md[n] is None:
                value_md[n], value_html[n] = p.value(v)
                value_js[n] = value_json(v)
        texts: dict[str, list[str] | list[str | None]] = {
            "row_md": row_md,
            "row_html": row_html,
            "row_json": row_json,
            "field_md": [f[0] for f in fields],
            "field_html": [f[1] for f in fields],
            "field_json": [f[2] for f in fields],
            "value_md": value_md,
            "value_html": value_html,
            "value_json": value_js,
        }
        # a numbering refers to itself (its default factory is its own __len__): without
        # this, each waited for the cyclic collector with every key it held (180k objects
        # on mid's weekly run), instead of going when this returns
        for numbering in (rows, names, values):
            numbering.default_factory = None
        ids = pl.DataFrame(
            {"item": self._owner, "row": row_of, "field": field_of, "value": value_of},
            schema={"item": _U32, "row": _U32, "field": _U32, "value": _U32},
        )
        self._taken = _Cites(ids, {k: pl.Series(k, v, pl.String) for k, v in texts.items()})
        return self._taken

    def payloads(self, docs: Sequence[Sequence[int]]) -> list[str]:
        """Each briefing's stored citations: ``json.dumps([i.to_dict() for i in items],
        default=str)`` of the items numbered ``docs``."""
        c = self._cites()
        t = c.texts
        dumped = (
            c.ids.select(
                pl.concat_str(
                    pl.lit(t["row_json"]).gather("row"),
                    pl.lit(t["field_json"]).gather("field"),
                    pl.lit(', "value": '),
                    pl.lit(t["value_json"]).gather("value"),
                    pl.lit("}"),
                )
            )
            .to_series()
            .to_list()
        )
        items, first = self._items, self._first
        item_json: dict[int, str] = {}
        out = []
        for doc in docs:
            parts = []
            for i in doc:
                got = item_json.get(i)
                if got is None:
                    it = items[i]
                    if isinstance(it, Note):  # its to_dict(), as json.dumps writes it
                        got = (
                            f'{{"section": {_str(it.section)}, "text": {_str(it.text)}, '
                            '"note": true, "cites": []}'
                        )
                    else:  # its citations are consecutive from its first
                        at = first[i]
                        got = (
                            f'{{"section": {_str(it.section)}, "text": {_str(it.text)}, '
                            f'"cites": [{", ".join(dumped[at : at + len(it.cites)])}]}}'
                        )
                    item_json[i] = got
                parts.append(got)
            out.append("[" + ", ".join(parts) + "]")
        return out

    def render(self, docs: Sequence[tuple[str, str, Sequence[int]]]) -> list[tuple[str, str]]:
        """(Markdown, HTML) of each briefing (title, subtitle, item numbers), as
        ``_render.render`` writes it."""
        if not docs:
            return []
        c = self._cites()
        t = c.texts
        placed = pl.DataFrame(
            {
                "doc": [d for d, (_, _, its) in enumerate(docs) for _ in its],
                "seq": [s for _, _, its in docs for s in range(len(its))],
                "item": [i for _, _, its in docs for i in its],
            },
            schema={"doc": _U32, "seq": _U32, "item": _U32},
        )
        # every citation of every briefing in the order render meets them (o); a row's
        # number (n) is its place among the briefing's rows by first citation (first)
        occ = (
            placed.join(c.ids, on="item", how="inner", maintain_order="left_right")
            .with_row_index("o")
            .with_columns(first=pl.col("o").min().over("doc", "row"))
            .with_columns(n=pl.col("first").rank("dense").over("doc").cast(pl.UInt32))
        )
        # A source line per row: its fields in order of first citation, each with the
        # last value cited; one text per briefing, each line started by its number and
        # row and its fields joined by "; ".
        fields = (
            occ.group_by("first", "field")
            .agg(pl.col("o").min(), pl.col("value").last(), pl.col("doc", "n", "row").first())
            .sort("first", "o")
        )
        new_line = pl.col("first") != pl.col("first").shift(1)
        new_doc = pl.col("doc") != pl.col("doc").shift(1)
        num = pl.col("n").cast(pl.String)
        lines = fields.select(
            "doc",
            md=pl.concat_str(
                pl.when(new_line.fill_null(True))
                .then(
                    pl.concat_str(
                        pl.when(new_doc.fill_null(True)).then(pl.lit("")).otherwise(pl.lit("\n")),
                        num,
                        pl.lit(". "),
                        pl.lit(t["row_md"]).gather("row"),
                    )
                )
                .otherwise(pl.lit("; ")),
                pl.lit(t["field_md"]).gather("field"),
                pl.lit(t["value_md"]).gather("value"),
            ),
            html=pl.concat_str(
                pl.when(new_line.fill_null(True))
                .then(
                    pl.concat_str(
                        pl.when(new_doc.fill_null(True))
                        .then(pl.lit(""))
                        .otherwise(pl.lit("</li>\n")),
                        pl.lit("<li id='s"),
                        num,
                        pl.lit("'>"),
                        pl.lit(t["row_html"]).gather("row"),
                    )
                )
                .otherwise(pl.lit("; ")),
                pl.lit(t["field_html"]).gather("field"),
                pl.lit(t["value_html"]).gather("value"),
            ),
        )
        sources = lines.group_by("doc", maintain_order=True).agg(
            pl.col("md").str.join(""), pl.col("html").str.join("")
        )
        listed = {
            d: (m, h + "</li>")
            for d, m, h in zip(
                sources["doc"].to_list(),
                sources["md"].to_list(),
                sources["html"].to_list(),
                strict=True,
            )
        }
        # each statement's numbers, sorted and distinct, in runs of consecutive numbers
        marked = _marks(occ, len(docs))
        p, e, items = self.pieces, html.escape, self._items
        out = []
        for d, (title, subtitle, its) in enumerate(docs):
            md, page = page_head(title, subtitle)
            marks = iter(marked[d])
            shown: dict[int, tuple[str, str]] = {}
            by_section: dict[int, list[int]] = {}
            for seq, i in enumerate(its):
                if isinstance(items[i], Statement):
                    shown[seq] = next(marks)
                at = _SECTION.get(items[i].section)
                if at is not None:
                    by_section.setdefault(at, []).append(seq)
            for at in sorted(by_section):
                key, heading = SECTIONS[at]
                md += [f"## {heading}", ""]
                page.append(
                    f"<h2>{e(heading)}</h2><ul class='{'warn' if key == 'warnings' else key}'>"
                )
                for seq in by_section[at]:
                    it = items[its[seq]]
                    if isinstance(it, Statement):
                        m, h = shown[seq]
                        md.append(f"- {p.md_text(it.text)} {m}")
                        page.append(f"<li>{p.escape(it.text)} {h}</li>")
                    else:
                        md.append(f"- *{p.md_text(it.text)}*")
                        page.append(f"<li class='note'>{p.escape(it.text)}</li>")
                md.append("")
                page.append("</ul>")
            got = listed.get(d)
            if got is not None:
                md += ["## Sources", "", got[0]]
                page += ["<h2>Sources</h2><ol class='sources'>", got[1], "</ol>"]
            page.append("</body></html>")
            out.append(("\n".join(md).rstrip() + "\n", "\n".join(page)))
        return out


def _marks(occ: pl.DataFrame, docs: int) -> list[list[tuple[str, str]]]:
    """Per briefing, its statements' numbers in order as Markdown and HTML: sorted,
    distinct, runs of three or more as 17-45 (``_render._number_runs``)."""
    seqs = int(occ["seq"].max() or 0) + 1  # type: ignore[arg-type]
    ns = int(occ["n"].max() or 0) + 2  # type: ignore[arg-type]
    # one key per statement and number, sorted: consecutive keys are a run of numbers
    key = (
        occ.select(k=(pl.col("doc").cast(pl.Int64) * seqs + pl.col("seq")) * ns + pl.col("n"))
        .unique()
        .sort("k")
    )
    k = pl.col("k")
    start = (k.diff() != 1).fill_null(True)
    n = (k % ns).cast(pl.String)
    hi = (k + pl.len().over(start.cum_sum()) - 1) % ns
    runs = pl.len().over(start.cum_sum()) >= 3
    stmt = k // ns
    # a statement's marks follow a NUL, so a briefing's text splits into its statements'
    sep = (
        pl.when((stmt != stmt.shift(1)).fill_null(True)).then(pl.lit("\x00")).otherwise(pl.lit(""))
    )
    marks = (
        key.select(
            doc=stmt // seqs,
            md=pl.concat_str(
                sep,
                pl.when(runs & start)
                .then(pl.concat_str(pl.lit("["), n, pl.lit("-"), hi.cast(pl.String), pl.lit("]")))
                .when(runs)
                .then(pl.lit(""))
                .otherwise(pl.concat_str(pl.lit("["), n, pl.lit("]"))),
            ),
            html=pl.concat_str(
                sep,
                pl.when(runs & start)
                .then(
                    pl.concat_str(
                        pl.lit("<sup><a href='#s"),
                        n,
                        pl.lit("'>["),
                        n,
                        pl.lit("-"),
                        hi.cast(pl.String),
                        pl.lit("]</a></sup>"),
                    )
                )
                .when(runs)
                .then(pl.lit(""))
                .otherwise(
                    pl.concat_str(
                        pl.lit("<sup><a href='#s"), n, pl.lit("'>["), n, pl.lit("]</a></sup>")
                    )
                ),
            ),
        )
        .group_by("doc", maintain_order=True)
        .agg(pl.col("md").str.join(""), pl.col("html").str.join(""))
    )
    out: list[list[tuple[str, str]]] = [[] for _ in range(docs)]
    for d, m, h in zip(
        marks["doc"].to_list(), marks["md"].to_list(), marks["html"].to_list(), strict=True
    ):
        out[d] = list(zip(m.split("\x00")[1:], h.split("\x00")[1:], strict=True))
    return out


_PLAIN = r"^[ #%'()+,\-./0-9:;=?@A-Z^a-z{}]*$"  # printable ASCII but "\\`*[]<>!&|~$_
_STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+$"


def _plain_values(ns: list[int], values: list[str]) -> pl.DataFrame:
    """(number, Markdown, HTML, JSON) of the text values that escape to themselves, as
    ``Pieces.value`` and ``value_json`` write them: shown quoted, a timestamp to the
    second."""
    v = pl.col("v")
    shown = pl.when(v.str.contains(_STAMP)).then(v.str.slice(0, 19)).otherwise(v)
    return (
        pl.DataFrame({"n": ns, "v": values}, schema={"n": pl.Int64(), "v": pl.String()})
        .filter(v.str.contains(_PLAIN))
        .select(
            "n",
            md=pl.concat_str(pl.lit('"'), shown, pl.lit('"')),
            html=pl.concat_str(
                pl.lit("&quot;"),
                shown.str.replace_all("'", "&#x27;", literal=True),
                pl.lit("&quot;"),
            ),
            json=pl.concat_str(pl.lit('"'), v, pl.lit('"')),
        )
    )


_TEXTS = {
    "kind": pl.UInt8(),
    "id": pl.Int64(),
    "md": pl.String(),
    "html": pl.String(),
    "json": pl.String(),
}


def _head_json(row: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    table, key = row
    keyed = ", ".join(f"{_str(k)}: {_str(v)}" for k, v in key)
    return f'{{"table": {_str(table)}, "key": {{{keyed}}}, "field": '
