"""How the CLI talks to people: one-line errors, JSON for scripts, rich progress bars."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from data.progress import Progress as ProgressFn

__all__ = ["console", "err_console", "iso_date", "print_json", "progress_bar"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def iso_date(text: str) -> dt.date:
    """An argparse type: a YYYY-MM-DD date, or a clear usage error."""
    import argparse

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
