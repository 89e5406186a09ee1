"""Small vectorised helpers shared by the generator's modules.

Inside the generator every moment is a float number of days since the start of the
history (`Clock.start`); it becomes a timestamp only when the tables are assembled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["Clock", "ids", "pick", "segment_starts"]

_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Clock:
    start: dt.datetime  # day 0 of the history
    as_of: dt.datetime  # the data's "today"

    @property
    def now(self) -> float:
        return (self.as_of - self.start).total_seconds() / 86_400

    def ts(self, days: np.ndarray) -> np.ndarray:
        """Float days -> datetime64[us] (NaN -> NaT)."""
        d = np.asarray(days, dtype=float)
        bad = ~np.isfinite(d)
        us = np.round(np.where(bad, 0, d) * _US_PER_DAY).astype(np.int64)
        out = np.datetime64(self.start, "us") + us.astype("timedelta64[us]")
        return np.where(bad, np.datetime64("NaT"), out)

    def date(self, days: np.ndarray) -> np.ndarray:
        return self.ts(days).astype("datetime64[D]")

    def days(self, when: np.ndarray) -> np.ndarray:
        """datetime64 -> float days since start."""
        delta = np.asarray(when).astype("datetime64[us]") - np.datetime64(self.start, "us")
        return delta.astype(np.int64) / _US_PER_DAY

    def month(self, days: np.ndarray) -> np.ndarray:
        """Months since 1970 of each moment."""
        return self.date(days).astype("datetime64[M]").astype(np.int64)

    def quarter(self, days: np.ndarray) -> np.ndarray:
        return self.month(days) // 3

    def quarter_end(self, days: np.ndarray) -> np.ndarray:
        """The first moment of the next quarter, in days (a close 'at quarter end' is before it)."""
        nxt = ((self.quarter(days) + 1) * 3).astype("datetime64[M]").astype("datetime64[us]")
        return self.days(nxt)

    def business_hours(self, rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
        """Move moments onto a weekday between 08:00 and 18:00, never later than they were
        by more than the same day (callers clip where order matters)."""
        day = np.floor(days)
        weekday = (self.date(day).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        day = day - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))
        return day + rng.uniform(8 / 24, 18 / 24, len(days))


def ids(prefix: str, n: int, width: int) -> pl.Series:
    """'A0000001', 'A0000002', ... built by polars, not a Python loop."""
    return pl.select(
        pl.format(
            prefix + "{}", pl.int_range(1, n + 1, eager=False).cast(pl.String).str.zfill(width)
        )
    ).to_series()


def pick(rng: np.random.Generator, options: np.ndarray | list, n: int, p=None) -> np.ndarray:
    """n draws from options (weights p, normalised here)."""
    opts = np.asarray(options, dtype=object)
    if p is not None:
        p = np.asarray(p, dtype=float)
        p = p / p.sum()
    return opts[rng.choice(len(opts), size=n, p=p)]


def segment_starts(counts: np.ndarray) -> np.ndarray:
    """Start offset of each group in a flat array laid out group after group."""
    return np.cumsum(counts) - counts
