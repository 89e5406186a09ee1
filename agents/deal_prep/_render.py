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
    "page_head",
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
# What _INLINE finds but an underscore, and line breaks (str.splitlines's set); an
# underscore opens markup only at a word's edge.
_MARKUP = re.compile(r"[\\`*\[\]<>!&|~$\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _escaped(m: re.Match[str]) -> str:
    return "\\" + m[1]


def md_text(value: object) -> str:
    """``value`` as literal text on one line of Markdown: every character that opens
    markup backslash-escaped (CommonMark shows ``\\*`` as ``*``), a block marker at the
    start escaped, line breaks as spaces. A CRM value ``[Renew](http://evil.example)``,
    ``<img src=x>`` or ``# Heading`` reads as those characters."""
    if isinstance(value, str) and (
        value.isalnum()  # a record id: nothing to escape
        or (
            not _MARKUP.search(value)
            and ("_" not in value or not _EDGE_UNDERSCORE.search(value))
            and value.strip() == value
            and not _BLOCK_START.match(value)
        )
    ):  # what the substitutions below would leave as it is
        return value
    text = _INLINE.sub(_escaped, " ".join(str(value).splitlines()).strip())
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


def _span(first: int, last: int) -> list[str]:
    """The numbers first to last (a statement's own new rows) as _number_runs shows them."""
    if last - first >= 2:
        return [f"{first}-{last}"]
    return [str(n) for n in range(first, last + 1)]


def _number_runs(ns: list[int]) -> list[str]:
    """Sorted distinct source numbers for display, runs of three or more shortened: 17-45."""
    if len(ns) >= 3 and ns[-1] - ns[0] == len(ns) - 1:  # one run: the common case
        return [f"{ns[0]}-{ns[-1]}"]
    out, start = [], 0
    for i in range(1, len(ns) + 1):
        if i == len(ns) or ns[i] != ns[i - 1] + 1:
            run = ns[start:i]
            out += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 else [str(n) for n in run]
            start = i
    return out


def _show(v: Any) -> str:
    if isinstance(v, str):
        # a timestamp shown to the second; the stored citation is exact
        if v[19:20] == "." and _STAMP.match(v):
            v = v[:19]
        return '"' + v.replace('"', '\\"') + '"'
    return json.dumps(v)


def _md_part(text: str) -> str:
    """``text`` escaped as a part of a Markdown line that is neither its start nor ends in
    whitespace (a shown value after ``field = ``): ``md_text`` of the line is its parts'
    escapes joined, as escaping is per character (an underscore looks only at its
    neighbours, and what precedes a part is a space)."""
    if not _MARKUP.search(text) and ("_" not in text or not _EDGE_UNDERSCORE.search(text)):
        return text
    return _INLINE.sub(_escaped, " ".join(text.splitlines()))


class Pieces:
    """Escaped pieces of briefings, shared by the briefings of one run: the meetings of a
    deal and the deals of an account cite many of the same rows and say many of the
    same sentences, and escaping them was most of rendering on mid."""

    def __init__(self) -> None:
        self.md: dict[str, str] = {}
        self.html: dict[str, str] = {}
        self.rows: dict[Row, tuple[str, str]] = {}
        self.tables: dict[str, tuple[str, str]] = {}
        self.fields: dict[str, tuple[str, str]] = {}
        # a shown value's escapes: text by itself (most values), the rest with their type
        self.values: dict[Any, tuple[str, str]] = {}

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

    def head(self, row: Row) -> tuple[str, str]:
        """A source's Markdown and HTML before its values: `table` id: ."""
        got = self.rows.get(row)
        if got is None:
            table, key = row
            start = self.tables.get(table)
            if start is None:
                start = self.tables[table] = (f"`{table}` ", f"<code>{html.escape(table)}</code> ")
            ident = key[0][1] if len(key) == 1 else " / ".join(v for _, v in key)
            if ident.isalnum():  # a record id: nothing to escape
                got = (f"{start[0]}{ident}: ", f"{start[1]}{ident}: ")
            else:
                got = (f"{start[0]}{md_text(ident)}: ", f"{start[1]}{html.escape(ident)}: ")
            self.rows[row] = got
        return got

    def field(self, name: str) -> tuple[str, str]:
        """``name = `` escaped: a source line starts its values with a field name (no
        block marker), so it escapes as that line's start does."""
        got = self.fields.get(name)
        if got is None:
            got = self.fields[name] = (md_text(name) + " = ", html.escape(name) + " = ")
        return got

    def value(self, v: Any) -> tuple[str, str]:
        """A cited value as a source shows it (``_show``), escaped for Markdown and HTML."""
        if type(v) is str:
            got = self.values.get(v)
            if got is None:
                shown = _show(v)
                got = self.values[v] = (_md_part(shown), html.escape(shown))
            return got
        try:
            key: Any = (type(v), v)
            got = self.values.get(key)
        except TypeError:  # an unhashable value
            key, got = None, None
        if got is None:
            shown = _show(v)
            got = (_md_part(shown), html.escape(shown))
            if key is not None:
                self.values[key] = got
        return got

    def source(self, row: Row, fields: dict[str, Any]) -> tuple[str, str]:
        """A source's Markdown and HTML after its number: `table` id: field = value; ...
        Most rows' cited fields differ from briefing to briefing, so the line is joined
        from its row's part and its fields' and values' parts, each escaped once a run;
        "; " between them neither opens markup nor touches an underscore's word edge."""
        head = self.head(row)
        names, values = self.fields, self.values
        md, out = [], []
        for f, v in fields.items():
            fm, fh = names.get(f) or self.field(f)
            vm, vh = (values.get(v) if type(v) is str else None) or self.value(v)
            md.append(fm + vm)
            out.append(fh + vh)
        return head[0] + "; ".join(md), head[1] + "; ".join(out) + "</li>"


def page_head(title: str, subtitle: str) -> tuple[list[str], list[str]]:
    """A briefing's first lines: (Markdown, HTML), title and subtitle escaped."""
    e = html.escape
    return [f"# {md_text(title)}", "", md_text(subtitle), ""], [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(subtitle)}</p>",
    ]


def render(
    title: str, subtitle: str, items: Sequence[Item], pieces: Pieces | None = None
) -> tuple[str, str]:
    """(Markdown, HTML) of one briefing in one pass over its citations, sources numbered
    once for both (``pieces``: escaped text shared by the briefings of a run; the same
    output with fresh pieces)."""
    p = Pieces() if pieces is None else pieces
    # Row -> its source number and cited fields, in order of first citation: the row's
    # number is its place here (number_sources and _fields in one pass); per statement,
    # its rows.
    fields: dict[Row, tuple[int, dict[str, Any]]] = {}
    lookup = fields.get
    cited: dict[int, list[int] | tuple[int, int]] = {}
    n = 0  # rows numbered so far
    for it in items:
        if isinstance(it, Statement):
            before = n
            mine = []
            for table, rec, field, value in it.cites:
                row = (table, rec)
                got = lookup(row)
                if got is None:
                    n += 1
                    fields[row] = (n, {field: value})
                else:
                    if got[0] <= before:  # a row an earlier statement cited
                        mine.append(got[0])
                    got[1][field] = value
            # its numbers: the rows it was first to cite (a run), and the earlier ones
            cited[id(it)] = sorted({*mine, *range(before + 1, n + 1)}) if mine else (before + 1, n)
    e = html.escape
    md, out = page_head(title, subtitle)
    by_section: dict[str, list[Item]] = {}
    for it in items:
        by_section.setdefault(it.section, []).append(it)
    for key, heading in SECTIONS:
        part = by_section.get(key)
        if not part:
            continue
        md += [f"## {heading}", ""]
        out.append(f"<h2>{e(heading)}</h2><ul class='{'warn' if key == 'warnings' else key}'>")
        for it in part:
            if isinstance(it, Statement):
                ns = cited[id(it)]
                runs = _span(*ns) if isinstance(ns, tuple) else _number_runs(ns)
                md.append(f"- {p.md_text(it.text)} " + "".join(f"[{r}]" for r in runs))
                refs = "".join(f"<sup><a href='#s{r.split('-')[0]}'>[{r}]</a></sup>" for r in runs)
                out.append(f"<li>{p.escape(it.text)} {refs}</li>")
            else:
                md.append(f"- *{p.md_text(it.text)}*")
                out.append(f"<li class='note'>{p.escape(it.text)}</li>")
        md.append("")
        out.append("</ul>")
    if fields:
        md += ["## Sources", ""]
        out.append("<h2>Sources</h2><ol class='sources'>")
        head_of, name_of, value_of = p.rows.get, p.fields.get, p.values.get
        add_md, add_html = md.append, out.append
        for row, (n, f) in fields.items():
            if len(f) == 1:  # one field cited (an account's activities): no join
                head = head_of(row) or p.head(row)
                for name, v in f.items():
                    fm, fh = name_of(name) or p.field(name)
                    vm, vh = (value_of(v) if type(v) is str else None) or p.value(v)
                    add_md(f"{n}. {head[0]}{fm}{vm}")
                    add_html(f"<li id='s{n}'>{head[1]}{fh}{vh}</li>")
            else:
                m, h = p.source(row, f)
                add_md(f"{n}. {m}")
                add_html(f"<li id='s{n}'>{h}")
        out.append("</ol>")
    out.append("</body></html>")
    return "\n".join(md).rstrip() + "\n", "\n".join(out)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
    "h2{border-bottom:1px solid #ddd;margin-top:1.6em}.warn li{color:#8a4b00}"
    "sup a{text-decoration:none}.note{color:#666;font-style:italic}"
    "ol.sources{font-size:.85em;color:#333}code{background:#f4f4f4}"
)
