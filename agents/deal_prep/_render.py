"""A briefing as Markdown and HTML, with numbered sources a rep can check.

Each source number is one row (table and key); a statement ends with the numbers
of the rows it cites, and the sources list shows, per row, the fields cited and
their values. Both formats are built from the same items, so they say the same.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from revstack.agents._cite import Note, Statement

__all__ = [
    "SECTIONS",
    "Pieces",
    "number_sources",
    "render",
    "markers",
    "md_text",
]

SECTIONS = (
    ("warnings", "Check before you rely on this"),
    ("meeting", "Meeting"),
    ("deal", "The deal"),
    ("account", "Account history"),
    ("stakeholders", "Stakeholders and engagement"),
    ("risks", "Open risks (pipeline health)"),
    ("competition", "Competitive context"),
    ("news", "Recent news"),
    ("points", "Recommended discussion points"),
)
Item = Statement | Note
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+$")
Row = tuple[str, tuple[tuple[str, str], ...]]
# What opens markup inside a line (emphasis, code, links and images, raw HTML and
# entities, GFM tables and strikethrough, math) and, at a line's start, a block (heading,
# quote, list, thematic break, setext underline, code fence). An underscore inside a word
# (A_OTHER) opens nothing in CommonMark and is left as it is.
_INLINE = re.compile(r"([\\`*\[\]<>!&|~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_BLOCK_START = re.compile(r"^([#>+=-])|^(\d+)([.)])")


def md_text(value: object) -> str:
    """``value`` as literal text on one line of Markdown: every character that opens
    markup backslash-escaped (CommonMark shows ``\\*`` as ``*``), a block marker at the
    start escaped, line breaks as spaces. A CRM value ``[Renew](http://evil.example)``,
    ``<img src=x>`` or ``# Heading`` reads as those characters."""
    if isinstance(value, str) and value.isalnum():  # a record id: nothing to escape
        return value
    text = _INLINE.sub(r"\\\1", " ".join(str(value).splitlines()).strip())
    return _BLOCK_START.sub(lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], text)


def number_sources(items: Sequence[Item]) -> dict[Row, int]:
    """Row -> source number, in order of first citation."""
    numbers: dict[Row, int] = {}
    for it in items:
        if isinstance(it, Statement):
            for c in it.cites:
                numbers.setdefault(c.row(), len(numbers) + 1)
    return numbers


def markers(it: Statement, numbers: dict[Row, int]) -> str:
    """Every source number of a statement, as the rewriter must keep them: [1][4][5]."""
    return "".join(f"[{n}]" for n in dict.fromkeys(numbers[c.row()] for c in it.cites))


def _runs(it: Statement, numbers: dict[Row, int]) -> list[str]:
    """Source numbers for display, runs of three or more shortened: 17-45."""
    ns = sorted(dict.fromkeys(numbers[c.row()] for c in it.cites))
    out, start = [], 0
    for i in range(1, len(ns) + 1):
        if i == len(ns) or ns[i] != ns[i - 1] + 1:
            run = ns[start:i]
            out += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 else [str(n) for n in run]
            start = i
    return out


def _fields(items: Sequence[Item]) -> dict[Row, dict[str, Any]]:
    out: dict[Row, dict[str, Any]] = {}
    for it in items:
        if isinstance(it, Statement):
            for c in it.cites:
                out.setdefault(c.row(), {})[c.field] = c.value
    return out


def _show(v: Any) -> str:
    if isinstance(v, str):
        if _STAMP.match(v):  # a timestamp shown to the second; the stored citation is exact
            v = v[:19]
        return '"' + v.replace('"', '\\"') + '"'
    return json.dumps(v)


class Pieces:
    """Escaped pieces of briefings, shared by the briefings of one run: the meetings of a
    deal and the deals of an account cite many of the same rows and say many of the
    same sentences, and escaping them was most of rendering on mid."""

    def __init__(self) -> None:
        self.md: dict[str, str] = {}
        self.html: dict[str, str] = {}
        self.sources: dict[tuple[Row, tuple[tuple[str, Any], ...]], tuple[str, str]] = {}
        self.values: dict[tuple[str, type, Any], tuple[str, str]] = {}

    def md_text(self, text: str) -> str:
        got = self.md.get(text)
        if got is None:
            got = self.md[text] = md_text(text)
        return got

    def escape(self, text: str) -> str:
        got = self.html.get(text)
        if got is None:
            got = self.html[text] = html.escape(text)
        return got

    def value(self, field: str, v: Any) -> tuple[str, str]:
        """``field = value`` escaped for Markdown and HTML. A source's values are these
        joined by "; ", the same text as escaping the joined line: each starts with a
        field name (no block marker), and "; " neither opens markup nor touches an
        underscore's word boundary."""
        try:
            key = (field, type(v), v)
            got = self.values.get(key)
        except TypeError:  # an unhashable value
            key, got = None, None
        if got is None:
            text = f"{field} = {_show(v)}"
            got = (md_text(text), html.escape(text))
            if key is not None:
                self.values[key] = got
        return got

    def source(self, row: Row, fields: dict[str, Any]) -> tuple[str, str]:
        """A source's Markdown and HTML after its number: `table` id: field = value."""
        key = (row, tuple(fields.items()))
        got = self.sources.get(key)
        if got is None:
            table, ident = row[0], " / ".join(v for _, v in row[1])
            pairs = [self.value(f, v) for f, v in fields.items()]
            e = html.escape
            got = self.sources[key] = (
                f"`{table}` {md_text(ident)}: " + "; ".join(m for m, _ in pairs),
                f"<code>{e(table)}</code> {e(ident)}: " + "; ".join(h for _, h in pairs) + "</li>",
            )
        return got


def render(
    title: str, subtitle: str, items: Sequence[Item], pieces: Pieces | None = None
) -> tuple[str, str]:
    """(Markdown, HTML) of one briefing in one pass over its items, sources numbered once
    for both (``pieces``: escaped text shared by the briefings of a run; the same output
    with fresh pieces)."""
    p = Pieces() if pieces is None else pieces
    numbers = number_sources(items)
    e = html.escape
    md = [f"# {md_text(title)}", "", md_text(subtitle), ""]
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(subtitle)}</p>",
    ]
    for key, heading in SECTIONS:
        part = [i for i in items if i.section == key]
        if not part:
            continue
        md += [f"## {heading}", ""]
        out.append(f"<h2>{e(heading)}</h2><ul class='{'warn' if key == 'warnings' else key}'>")
        for it in part:
            if isinstance(it, Statement):
                runs = _runs(it, numbers)
                md.append(f"- {p.md_text(it.text)} " + "".join(f"[{r}]" for r in runs))
                refs = "".join(f"<sup><a href='#s{r.split('-')[0]}'>[{r}]</a></sup>" for r in runs)
                out.append(f"<li>{p.escape(it.text)} {refs}</li>")
            else:
                md.append(f"- *{p.md_text(it.text)}*")
                out.append(f"<li class='note'>{p.escape(it.text)}</li>")
        md.append("")
        out.append("</ul>")
    if numbers:
        md += ["## Sources", ""]
        out.append("<h2>Sources</h2><ol class='sources'>")
        for row, f in _fields(items).items():
            n = numbers[row]
            m, h = p.source(row, f)
            md.append(f"{n}. {m}")
            out.append(f"<li id='s{n}'>{h}")
        out.append("</ol>")
    out.append("</body></html>")
    return "\n".join(md).rstrip() + "\n", "\n".join(out)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
    "h2{border-bottom:1px solid #ddd;margin-top:1.6em}.warn li{color:#8a4b00}"
    "sup a{text-decoration:none}.note{color:#666;font-style:italic}"
    "ol.sources{font-size:.85em;color:#333}code{background:#f4f4f4}"
)
