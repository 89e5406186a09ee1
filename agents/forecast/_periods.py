"""Periods (months, quarters) and the fixed snapshot points inside them.

A snapshot is a moment inside a period: its start plus an offset in days, at noon, so
that the rep submissions of that morning (09:00 in most CRMs' forecast calls) are
known to it, as they are to the rep-commit baseline it is compared with.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

__all__ = [
    "KINDS",
    "OFFSETS",
    "SNAPSHOT_SCHEMA",
    "anchor",
    "live_snapshots",
    "period_end",
    "period_start",
    "same_point_in_past",
    "snapshots",
]

KINDS = ("month", "quarter")
# Snapshot offsets in days: the start, and the points where reps resubmit.
OFFSETS: dict[str, tuple[int, ...]] = {"month": (0, 14), "quarter": (0, 28, 56)}
_NOON = dt.time(12)

SNAPSHOT_SCHEMA = {
    "period_kind": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "offset": pl.Int64(),
    "moment": pl.Datetime("us"),
}


def period_start(day: dt.date, kind: str) -> dt.date:
    """First day of the month or quarter holding ``day``."""
    month = day.month if kind == "month" else 3 * ((day.month - 1) // 3) + 1
    return dt.date(day.year, month, 1)


def period_end(start: dt.date, kind: str) -> dt.date:
    """First day after the period starting at ``start``."""
    months = 1 if kind == "month" else 3
    m = start.month - 1 + months
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def snapshots(first: dt.date, last: dt.datetime) -> pl.DataFrame:
    """Every fixed snapshot point of every period starting on or after ``first`` whose
    moment is at or before ``last``, as rows of ``SNAPSHOT_SCHEMA``."""
    rows = []
    for kind in KINDS:
        start = period_start(first, kind)
        if start < first:
            start = period_end(start, kind)
        while start <= last.date():
            for off in OFFSETS[kind]:
                moment = dt.datetime.combine(start + dt.timedelta(days=off), _NOON)
                if moment <= last:
                    rows.append((kind, start, period_end(start, kind), off, moment))
            start = period_end(start, kind)
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row").sort("moment", "period_kind")


def live_snapshots(as_of: dt.datetime) -> pl.DataFrame:
    """The current month and quarter as seen at ``as_of`` (offset: whole days in)."""
    rows = []
    for kind in KINDS:
        start = period_start(as_of.date(), kind)
        rows.append((kind, start, period_end(start, kind), (as_of.date() - start).days, as_of))
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")


def anchor(kind: str, offset: int) -> int:
    """The latest fixed snapshot point at or before ``offset``: what a live snapshot
    between two points learns its corrections from."""
    return max(o for o in OFFSETS[kind] if o <= offset)


def same_point_in_past(live: pl.DataFrame, first: dt.date) -> pl.DataFrame:
    """For each live snapshot, the same offset (and time of day) in every earlier period
    of its kind from ``first``, so series of "what came after this point" exist for an
    offset that is not a fixed point. An offset past a short period's end is held at
    its last day."""
    rows = []
    for snap in live.iter_rows(named=True):
        kind, off, at = snap["period_kind"], snap["offset"], snap["moment"].time()
        start = period_start(first, kind)
        while start < snap["period_start"]:
            end = period_end(start, kind)
            day = min(start + dt.timedelta(days=off), end - dt.timedelta(days=1))
            rows.append((kind, start, end, off, dt.datetime.combine(day, at)))
            start = end
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")
