"""News about companies: a provider interface and the default provider, a feed file.

A provider returns news items as a polars frame in ``NEWS_SCHEMA``; ``load_news``
stores them in ``ref.news``, where agents read and cite them (the briefing cites
the ``ref.news`` row, so a rep can check it). The default provider, ``FeedFile``,
reads a file a person fills by hand or a script writes: JSON lines (``.jsonl``)
or CSV, one item each, with ``headline``, ``published_at`` and ``domain`` and/or
``company_name``; ``summary`` and ``url`` are optional. Loading the same item
twice changes nothing (its id is a hash of domain, name, time and headline). A bad
item is a one-line error naming the file, line and field, and nothing is stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from revstack.data.errors import InputError, Problem
from revstack.data.textfile import read_utf8
from revstack.data.warehouse import Warehouse, registered, scalar

__all__ = ["FeedFile", "NEWS_SCHEMA", "NewsProvider", "load_news"]

NEWS_SCHEMA: dict[str, pl.DataType] = {
    "news_id": pl.String(),
    "domain": pl.String(),
    "company_name": pl.String(),
    "published_at": pl.Datetime("us"),
    "headline": pl.String(),
    "summary": pl.String(),
    "url": pl.String(),
    "source": pl.String(),
}
_FIELDS = ("domain", "company_name", "published_at", "headline", "summary", "url")
_UPSERT = """
INSERT INTO ref.news SELECT * FROM incoming
ON CONFLICT (news_id) DO UPDATE SET summary = excluded.summary, url = excluded.url
"""
_COUNT = "SELECT count(*) FROM ref.news"


class NewsProvider(Protocol):
    """Anything that can list news items (a feed file, a vendor API behind a cache)."""

    name: str

    def items(self) -> pl.DataFrame:
        """Every item the provider has, in ``NEWS_SCHEMA``."""
        ...


def _when(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


class FeedFile:
    """A local JSON-lines or CSV file of news items."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"feed:{self.path.name}"

    def _records(self) -> list[tuple[int, dict[str, object]]]:
        if not self.path.exists():
            raise InputError(f"{self.path}: no such news feed file")
        text = read_utf8(self.path)
        if self.path.suffix.lower() == ".csv":
            rows = csv.DictReader(io.StringIO(text, newline=""))
            return [(i + 2, dict(r)) for i, r in enumerate(rows)]
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    "bad news feed", [Problem(str(self.path), f"not JSON ({exc.msg})", i)]
                ) from exc
            if not isinstance(record, dict):
                raise InputError("bad news feed", [Problem(str(self.path), "not a JSON object", i)])
            out.append((i, record))
        return out

    def items(self) -> pl.DataFrame:
        rows, problems = [], []
        for line, r in self._records():
            get = {f: (str(r[f]).strip() if r.get(f) not in (None, "") else None) for f in _FIELDS}
            where: dict[str, Any] = {"file": str(self.path), "line": line}
            if not get["headline"]:
                problems.append(Problem(**where, column="headline", message="missing"))
                continue
            if not (get["domain"] or get["company_name"]):
                problems.append(
                    Problem(**where, column="domain", message="needs domain or company_name")
                )
                continue
            try:
                published = _when(get["published_at"] or "")
            except ValueError:
                problems.append(
                    Problem(
                        **where,
                        column="published_at",
                        message=f"not an ISO date or time: {get['published_at']!r}",
                    )
                )
                continue
            domain = get["domain"].lower() if get["domain"] else None
            key = f"{domain}|{get['company_name']}|{published.isoformat()}|{get['headline']}"
            rows.append(
                {
                    **get,
                    "domain": domain,
                    "published_at": published,
                    "source": self.name,
                    "news_id": "F" + hashlib.md5(key.encode()).hexdigest()[:15],
                }
            )
        if problems:
            raise InputError(f"{len(problems)} bad news item(s)", problems)
        return pl.DataFrame(rows, schema=NEWS_SCHEMA) if rows else pl.DataFrame(schema=NEWS_SCHEMA)


def load_news(wh: Warehouse, provider: NewsProvider) -> dict[str, int]:
    """Store a provider's items in ref.news (all or nothing); returns read and new counts."""
    items = provider.items().unique("news_id", keep="first").select(list(NEWS_SCHEMA))
    with wh.transaction() as con:
        before = int(scalar(con, _COUNT))
        with registered(con, "incoming", items):
            con.execute(_UPSERT)
        after = int(scalar(con, _COUNT))
    return {"items": len(items), "new": after - before}
