"""Figures that a reviewer's decision cannot change, kept between calls while their
inputs stay the same.

Truth's verdict on a proposal (``metrics.verdicts``), the defects the hygiene agent's
proposals catch, its clusters' scores against truth, deal prep's current statements
and citations, and each run's oldest event (trigger-to-action latency) read only
(deal prep's check of its citations against today's rows also reads CRM and news
values, and says itself which it reads again: ``metrics.deal_prep._rejudged``):

- the columns of ``ops.proposals`` a run writes once and nothing updates (a decision
  sets ``status``, ``decided_*``, ``decision_note`` and ``final_value``, never
  ``new_value``, ``record_id``, ``confidence`` or ``created_at``);
- ``ops.runs``, ``ops.identity_clusters``, ``ops.briefings`` and
  ``ops.event_consumption`` (written by runs), the consumed events' times;
- ``ops.imports`` (the data's as-of), ``crm.opportunity_history`` (imports and
  generation) and ``truth.*`` (generation).

``inputs`` fingerprints exactly those: row counts and latest keys, which only runs,
imports and generation move; a decision, a policy change, a person added or an audit
leave it as it was.

Remembering is off unless a caller turns it on (``remembering()``): the dashboard does,
since it already keys every read on a fingerprint of the warehouse
(``metrics.health.last_change``) and a decision is what it must render fast after. The
command line, the simulation and the tests compute afresh as before. What is
remembered is one value per warehouse file and name, replaced when the file's
fingerprint moves; an in-memory warehouse is never remembered.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import duckdb

from revstack.data.warehouse import first_row, frame

__all__ = ["forget", "inputs", "remembered", "remembering"]

T = TypeVar("T")

_ON: contextvars.ContextVar[bool] = contextvars.ContextVar("remembering", default=False)
_KEPT: dict[tuple[str, str], tuple[tuple[Any, ...], Any]] = {}
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_GUARD = threading.Lock()

_FILE = "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
# One statement each: DuckDB answers a bare count(*) or max() from its statistics, which
# it does not when they are scalar subqueries of one statement.
_OPS = (
    "SELECT count(*) FROM ops.proposals",
    "SELECT max(created_at) FROM ops.proposals",
    "SELECT count(*) FROM ops.runs",
    "SELECT max(run_id) FROM ops.runs",
    "SELECT count(*) FROM ops.runs WHERE status = 'succeeded'",
    "SELECT count(*) FROM ops.imports",
    "SELECT max(import_id) FROM ops.imports",
    "SELECT count(*) FROM ops.identity_clusters",
    "SELECT count(*) FROM ops.briefings",
    "SELECT count(*) FROM ops.event_consumption",
    "SELECT count(*) FROM crm.opportunity_history",
)
_TRUTH = """
SELECT table_name FROM information_schema.tables
WHERE table_catalog = current_database() AND table_schema = 'truth' ORDER BY table_name
"""


@contextlib.contextmanager
def remembering() -> Iterator[None]:
    """Within this block, functions marked ``remembered`` keep their value per file."""
    token = _ON.set(True)
    try:
        yield
    finally:
        _ON.reset(token)


def forget() -> None:
    """Drop everything kept (tests, or memory wanted back)."""
    with _GUARD:
        _KEPT.clear()


def inputs(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The fingerprint of what remembered figures read (see the module doc)."""
    truth = frame(con, _TRUTH)["table_name"].to_list()
    counts = [f'SELECT count(*) FROM truth."{t}"' for t in truth]  # names from the catalog
    generation = ["SELECT max(as_of) FROM truth.generation"] if "generation" in truth else []
    return tuple(first_row(con, sql) for sql in (*_OPS, *counts, *generation))


def _file(con: duckdb.DuckDBPyConnection) -> str | None:
    row = first_row(con, _FILE)
    return str(row[0]) if row and row[0] else None


def remembered(fn: Callable[[duckdb.DuckDBPyConnection], T]) -> Callable[..., T]:
    """``fn(con)``, kept per warehouse file while ``inputs`` holds (when remembering).

    The fingerprint is read before and after computing; a value is kept only when both
    agree, so nothing computed while a run committed is kept under either state."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(con: duckdb.DuckDBPyConnection) -> T:
        path = _file(con) if _ON.get() else None
        if path is None:
            return fn(con)
        key = (path, name)
        with _GUARD:
            lock = _LOCKS.setdefault(key, threading.Lock())
        with lock:  # two sessions wanting the same figure compute it once
            before = inputs(con)
            kept = _KEPT.get(key)
            if kept is not None and kept[0] == before:
                return kept[1]
            value = fn(con)
            if inputs(con) == before:
                with _GUARD:
                    _KEPT[key] = (before, value)
            return value

    return wrapper
