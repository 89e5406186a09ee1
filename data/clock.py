"""The stack's clock: wall time, unless a simulation has set its own.

Every moment revstack stores (imports, events, runs, proposals, decisions, the audit
log) is read from ``now_utc``. ``revstack simulate`` replays weeks of operation in a few
minutes; it installs a ``SimulatedClock`` for the length of the replay, so what it
writes carries the simulated moment and the weekly pages show weeks, not one minute.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["SimulatedClock", "now_utc", "using"]

_source: Callable[[], dt.datetime] | None = None


def now_utc() -> dt.datetime:
    """The current moment, UTC, naive (as every timestamp column stores it)."""
    source = _source
    if source is not None:
        return source()
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class SimulatedClock:
    """A clock that runs at the wall clock's pace from wherever it was last set, so a run
    still takes the seconds it took while the days between runs take none. Readings
    strictly increase (by a microsecond at least), so things recorded one after the
    other keep their order (the audit chain and "who decided first" read it)."""

    def __init__(self, start: dt.datetime) -> None:
        self._base = start
        self._since = time.monotonic()
        self._last = start
        self._lock = threading.Lock()

    def _reading(self) -> dt.datetime:
        return self._base + dt.timedelta(seconds=time.monotonic() - self._since)

    def now(self) -> dt.datetime:
        with self._lock:
            self._last = max(self._reading(), self._last + dt.timedelta(microseconds=1))
            return self._last

    def peek(self) -> dt.datetime:
        """Where the clock stands, without taking a reading."""
        with self._lock:
            return max(self._reading(), self._last)

    def set(self, at: dt.datetime) -> None:
        """Move to ``at``; a clock never runs backwards (a later row would sort first)."""
        with self._lock:
            current = max(self._reading(), self._last)
            if at < current:
                raise ValueError(f"the clock is at {current}; it cannot go back to {at}")
            self._base, self._since = at, time.monotonic()

    def advance_to(self, at: dt.datetime) -> dt.datetime:
        """Move to ``at`` unless the clock is already past it; where it stands after.
        One step under the lock: a peek and then a set would race the running clock."""
        with self._lock:
            current = max(self._reading(), self._last)
            if at > current:
                self._base, self._since = at, time.monotonic()
                return at
            return current

    def advance(self, by: dt.timedelta) -> dt.datetime:
        """Move ``by`` ahead of where the clock stands (``by`` at least zero)."""
        if by < dt.timedelta(0):
            raise ValueError(f"a clock never runs backwards: cannot advance by {by}")
        with self._lock:
            at = max(self._reading(), self._last) + by
            self._base, self._since = at, time.monotonic()
            return at


@contextmanager
def using(clock: SimulatedClock) -> Iterator[SimulatedClock]:
    """Read every moment from ``clock`` for the length of the block (this process)."""
    global _source
    previous, _source = _source, clock.now
    try:
        yield clock
    finally:
        _source = previous
