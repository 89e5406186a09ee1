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
    "cell",
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


def cell(value: Any) -> str:
    """A table cell as a person reads it: floats to four significant figures (a share
    of 0.9997 must not read as 1; whole numbers with separators from 100 up), nothing
    for a missing value."""
    if value is None:
        return ""
    if isinstance(value, float) and not isinstance(value, bool):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def print_table(
    rows: list[dict[str, Any]],
    columns: list[str],
    title: str | None = None,
    out: Console | None = None,
) -> None:
    """Print ``rows`` as a table that never cuts a value short.

    Output to a file or a pipe is drawn as wide as the table needs, one line a row, so
    it can be searched. A terminal too narrow for it gets each row as its own list of
    column and value (as psql's expanded display does): rich would otherwise shrink the
    columns until a date or an action name ends in an ellipsis.
    """
    from rich.table import Table

    target = out or console
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    table = Table(*columns, title=title)
    for row in cells:
        table.add_row(*row)
    natural = target.measure(table, options=target.options.update_width(_UNBOUNDED)).maximum
    if natural <= target.width:
        target.print(table)
    elif not target.is_terminal:
        kept = target.width
        target.width = natural
        try:
            target.print(table)
        finally:
            target.width = kept
    else:
        _print_expanded(target, columns, cells, title)


_UNBOUNDED = 100_000


def _print_expanded(
    target: Console, columns: list[str], cells: list[list[str]], title: str | None
) -> None:
    from rich.rule import Rule
    from rich.table import Table

    if title:
        target.print(f"[bold]{title}[/bold]")
    for n, row in enumerate(cells, 1):
        # the first column names the row (a week, a batch, an id), so it heads it
        target.print(Rule(f"{columns[0]} {row[0]}" if row[0] else f"row {n}", align="left"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, value in zip(columns[1:], row[1:], strict=True):
            grid.add_row(name, value)
        target.print(grid)
