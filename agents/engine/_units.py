"""Units of work that survive contention: retried on DuckDB write conflicts."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from revstack.data import clock
from revstack.data.warehouse import Warehouse

__all__ = ["in_transaction", "is_conflict", "now_utc"]

T = TypeVar("T")

_CONFLICT_MARKERS = ("Conflict on", "conflict", "PRIMARY KEY or UNIQUE constraint violat")
# A key that another transaction committed after this one began: DuckDB 2 reports it at
# the insert as a constraint error, not as a conflict. Re-running the unit sees that row
# (an upsert then updates it, an anti-join drops it); a duplicate that is the unit's own
# fault fails again, so this is retried only a few times.
_STALE_DUPLICATE = "Duplicate key"
_STALE_DUPLICATE_ATTEMPTS = 5


# Every write unit appends to the audit chain, whose head is one row, so two units of one
# process in flight together cannot both commit. Retried freely, the losers kept
# colliding with each other: twenty reviewers' threads in one process (the dashboard)
# made 2.2 decisions/s with a p95 of 20 s (docs/scale.md). So a unit that has conflicted
# once retries holding its process's writer lock on the file, and the threads that
# collided take turns. A unit that asks to take turns (a person's decision: short, and
# in a busy dashboard always meeting another at the head) holds the lock from its first
# attempt: the optimistic first attempts of the others kept overtaking the retries,
# p95 7 s at 20 threads. Other processes are kept out by the file lock already.
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


def _writer(wh: Warehouse) -> threading.RLock:
    key = str(wh.path.resolve())
    with _WRITERS_GUARD:
        lock = _WRITERS.get(key)
        if lock is None:
            lock = _WRITERS[key] = threading.RLock()
        return lock


def now_utc() -> dt.datetime:
    """The stack's clock (``revstack.data.clock``): wall time unless a simulation set it."""
    return clock.now_utc()


def is_conflict(exc: BaseException) -> bool:
    """A write-write conflict another transaction caused; the unit can simply run again."""
    return isinstance(exc, duckdb.TransactionException | duckdb.ConstraintException) and any(
        m in str(exc) for m in _CONFLICT_MARKERS
    )


def in_transaction(
    wh: Warehouse,
    work: Callable[[duckdb.DuckDBPyConnection], T],
    *,
    attempts: int = 50,
    commit: bool = True,
    take_turns: bool = False,
) -> T:
    """Run ``work(con)`` in one transaction, retrying the whole unit on conflicts.

    ``commit=False`` runs it and rolls back (dry runs see exactly what would happen).
    Work must read what it decides on inside the unit, so a retry decides afresh.
    ``take_turns`` waits for this process's other write units on the file before the
    first attempt, not only after a conflict.
    """
    delay = 0.002
    turn: threading.RLock | None = None  # held from the first retry on, or from the start
    if take_turns:
        turn = _writer(wh)
        turn.acquire()
    try:
        for attempt in range(attempts):
            with wh.connect() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    result = work(con)
                    con.execute("COMMIT" if commit else "ROLLBACK")
                    return result
                except BaseException as exc:
                    with contextlib.suppress(duckdb.Error):  # a failed COMMIT already ended it
                        con.execute("ROLLBACK")
                    stale = (
                        isinstance(exc, duckdb.ConstraintException)
                        and _STALE_DUPLICATE in str(exc)
                        and attempt < _STALE_DUPLICATE_ATTEMPTS - 1
                    )
                    if not (is_conflict(exc) or stale) or attempt == attempts - 1:
                        raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)
            if turn is None:
                turn = _writer(wh)
                turn.acquire()
        raise AssertionError("unreachable")
    finally:
        if turn is not None:
            turn.release()
