"""Small vectorised helpers shared by the generator's modules.

Inside the generator every moment is a float number of days since the start of the
history (`Clock.start`); it becomes a timestamp only when the tables are assembled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["Clock", "ids", "pick", "segment_starts", "working_hours"]

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

    def weekday(self, days: np.ndarray) -> np.ndarray:
        """0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday)."""
        return (self.date(np.floor(days)).astype(np.int64) + 3) % 7

    def working(
        self,
        rng: np.random.Generator,
        days: np.ndarray,
        upper: np.ndarray | None = None,
        closed: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Move each moment to a time someone is at work: a weekday (a weekend day goes to
        one of the five weekdays before it; about one in ten stays, people do work on
        Saturdays) at an hour drawn from a working day's shape (few before 07:00 or after
        20:00). A day `closed` says is a holiday (per row) goes to the working day before
        it (one in twenty stays). Never after `upper` (a moment that would be goes back a
        day, then is clipped)."""
        days = np.asarray(days, dtype=float)
        out = days.copy()
        todo = np.isfinite(days)
        base = np.where(todo, days, 0.0)
        for _ in range(4):  # a few days back at most; what is still late is clipped
            day = np.floor(base)
            wd = self.weekday(day)
            weekend = (wd >= 5) & (rng.random(len(day)) > 0.1)
            day = day - np.where(weekend, wd - 4 + rng.integers(0, 5, len(day)), 0)
            if closed is not None:
                for _ in range(3):  # Christmas and Boxing Day, then a weekend before them
                    shut = closed(day) & (rng.random(len(day)) > 0.05)
                    day = day - shut
                    wd = self.weekday(day)
                    day = day - np.where(shut & (wd >= 5), wd - 4, 0)
            cand = day + working_hours(rng, len(day)) / 24
            out = np.where(todo, cand, out)
            if upper is None:
                break
            late = todo & (out > upper)
            if not late.any():
                break
            base = np.where(late, base - 1, base)
            todo = late
        if upper is not None:
            out = np.where(np.isfinite(days), np.minimum(out, upper), out)
        return out

    def workweek(self, days: np.ndarray) -> np.ndarray:
        """Fold moments into the working week without changing their order: within each
        week (Monday to Monday) time is stretched so that office hours hold most of it.
        Monotone, so any moment before another stays before it; never later than the end
        of its own day (the weekdays hold more than their share), so a moment before a
        midnight (as-of) stays before it."""
        d = np.asarray(days, dtype=float)
        ok = np.isfinite(d)
        x = np.where(ok, d, 0.0)
        monday0 = -float(self.weekday(np.array([0.0]))[0])
        week = np.floor((x - monday0) / 7)
        u = (x - monday0) / 7 - week
        out = monday0 + 7 * week + np.interp(u, _WEEK_CDF, _WEEK_HOURS) / 24
        return np.where(ok, out, d)


def working_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hours of the day of n working moments: most 08:00-18:00, a few early or late."""
    u = rng.random(n)
    core = 8 + 10 * rng.beta(2.0, 2.2, n)
    edge = np.where(rng.random(n) < 0.5, rng.uniform(7, 8, n), rng.uniform(18, 20, n))
    late = np.where(rng.random(n) < 0.8, rng.uniform(20, 23, n), rng.uniform(5, 7, n))
    return np.where(u < 0.88, core, np.where(u < 0.97, edge, late))


def _week_shape() -> tuple[np.ndarray, np.ndarray]:
    """The cumulative share of a week's work by hour from Monday 00:00 (weekdays by the
    hours of `working_hours`, the weekend a twentieth as busy)."""
    hour = np.arange(24)
    day = np.where((hour >= 8) & (hour < 18), 1.0, np.where((hour >= 7) & (hour < 20), 0.25, 0.03))
    week = np.concatenate([day] * 5 + [day * 0.05] * 2)
    cdf = np.r_[0.0, np.cumsum(week)] / week.sum()
    return cdf, np.arange(len(week) + 1, dtype=float)


_WEEK_CDF, _WEEK_HOURS = _week_shape()


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
