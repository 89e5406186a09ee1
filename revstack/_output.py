"""How the CLI talks to people: one-line errors, JSON for scripts, rich progress bars."""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from revstack.data.progress import Progress as ProgressFn

__all__ = [
    "console",
    "err_console",
    "iso_date",
    "print_json",
    "print_table",
    "progress_bar",
    "when_arg",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def iso_date(text: str) -> dt.date:
    """An argparse type: a YYYY-MM-DD date, or a clear usage error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "to_dicts"):  # polars frame
        return value.to_dicts()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=_default, indent=2, sort_keys=False) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """A ``Progress`` callback drawing one bar per step on stderr (nothing when disabled)."""
    if not enabled or not err_console.is_terminal and not _force_progress():
        yield None
        return
    bar = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}/{task.total:<9,.0f}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bar.add_task(step, total=max(total, 1))
        bar.update(tasks[step], completed=done, total=max(total, 1))

    with bar:
        yield update


def _force_progress() -> bool:
    import os

    return os.environ.get("REVSTACK_PROGRESS") == "1"


def when_arg(text: str) -> dt.datetime:
    """An argparse type: an ISO date or date-time, or a relative '2h' / '3d' / '30m' meaning that long ago."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text and text[-1] in units and text[:-1].isdigit():
        delta = dt.timedelta(**{units[text[-1]]: int(text[:-1])})
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) - delta
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use 2026-11-01, 2026-11-01T09:30 or 2h / 3d ago)"
        ) from exc


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    from rich.table import Table

    table = Table(*columns, title=title)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    console.print(table)
