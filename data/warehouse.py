"""The warehouse: one DuckDB file, opened for one unit of work at a time.

DuckDB lets one process hold a file read-write, and no other process may open it
meanwhile (docs/design.md, One read-write process per file). revstack therefore
never keeps the file open between units of work: every caller takes a connection
with ``Warehouse.connect`` (or ``transaction``), does one bounded piece of work, and
closes it. A process that finds the file locked waits and retries with jittered
back-off for up to ``busy_timeout`` seconds, so a dashboard click and a CLI run
interleave instead of failing. Long computations (generation, agent runs) read what
they need, close, compute in memory, and write back in one short transaction. See
docs/warehouse.md.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import itertools
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import duckdb
import polars as pl

from revstack.data.errors import SchemaVersionError, WarehouseBusyError, WarehouseError

P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "Warehouse",
    "current_version",
    "DEFAULT_DB",
    "default_db_path",
    "migrations",
    "LATEST_VERSION",
    "scalar",
    "first_row",
    "frame",
    "registered",
    "release_all",
    "MEMORY_LIMIT_ENV",
    "memory_limit",
    "scratch",
]

DEFAULT_DB = Path("var") / "revstack.duckdb"

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_version (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

_HAS_VERSIONS = """
SELECT count(*) > 0 FROM information_schema.tables
WHERE table_catalog = current_database() AND table_schema = 'ops'
  AND table_name = 'schema_version'
"""
_TABLES = """
SELECT table_schema || '.' || table_name FROM information_schema.tables
WHERE table_catalog = current_database()
  AND NOT (table_schema = 'ops' AND table_name = 'schema_version')
ORDER BY 1
"""

# One handle per file per process, shared by every unit of work in flight and closed
# when the last one ends. Each unit gets its own cursor (threads must not share a
# connection: docs/design.md, One cursor per thread). Opening the same file from two
# threads at once otherwise races inside DuckDB ("Unique file handle conflict").
LINGER_SECONDS = 0.5

# Lingering alone let a process whose units follow one another within LINGER_SECONDS keep
# the file for good: a dashboard with reviewers deciding kept a scheduled run waiting up to
# 28 s of its 30 s, and reviewer processes deciding back to back shut each other out
# (docs/scale.md). So a process waiting for the file says so, holding a shared flock on
# `<file>.want`; the process holding the file, once it has had it HOLD_SECONDS, lets go
# when its units in flight end instead of lingering, and its next units wait up to
# YIELD_SECONDS for the waiter to get in. Both waits are bounded, so a unit that waits on
# another unit of its own process is delayed, never stuck.
HOLD_SECONDS = 1.0
YIELD_SECONDS = 2.0
# How often a process waiting behind another revstack process tries the file again.
_POLL_SECONDS = 0.02


def _others_wait(want: int) -> bool:
    """Whether another process holds its shared lock on ``<file>.want`` (one syscall or two)."""
    try:
        fcntl.flock(want, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(want, fcntl.LOCK_UN)
    return False


class _Line:
    """Processes waiting for the file, served in the order they came.

    Polling at one pace drew the next holder at random from the waiters: fair on
    average, but with twenty processes one waited past the 30 s timeout now and then
    (docs/scale.md). So a waiter takes a ticket, a file in ``<file>.queue/`` named by the
    time it came and its pid, and holds an exclusive flock on it while it waits; only
    the waiter whose ticket is the oldest live one tries the file. A ticket whose flock
    can be taken belongs to a process that died waiting: the next waiter removes it. A
    process not in line tries the file only when nobody waits, so it cannot cut in.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.name: str | None = None  # this process's ticket, while it waits
        self.fd: int | None = None

    def join(self) -> None:
        if self.name is not None:
            return
        os.makedirs(self.folder, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        # locked under a name nobody reads, then renamed: nobody can see the ticket
        # unlocked and take it for a dead one
        draft = os.path.join(self.folder, f"draft-{name}")
        fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(draft, os.path.join(self.folder, name))
        self.name, self.fd = name, fd

    def first(self) -> bool:
        """Whether no live waiter came before this one (or, not in line, waits at all)."""
        try:
            tickets = sorted(t for t in os.listdir(self.folder) if t[:1].isdigit())
        except FileNotFoundError:
            return True
        for ticket in tickets:
            if self.name is not None and ticket >= self.name:
                return True
            if self._alive(ticket):
                return False
        return True

    def _alive(self, ticket: str) -> bool:
        path = os.path.join(self.folder, ticket)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False  # it got in, or gave up, since the listing
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # drops this descriptor's lock only, never the owner's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # its process died waiting
        return False

    def leave(self) -> None:
        if self.name is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.folder, self.name))
        if self.fd is not None:
            os.close(self.fd)
        self.name = self.fd = None


class _Handle:
    def __init__(self, root: duckdb.DuckDBPyConnection, lock: int, want: int) -> None:
        self.root = root
        self.lock = lock  # the descriptor holding revstack's own lock on the file
        self.want = want  # a descriptor on <file>.want: does another process wait?
        self.opened = time.monotonic()
        self.users = 0
        self.idle_timer: threading.Timer | None = None
        self.yielding = False  # another process waits: no new unit joins this handle

    def due(self) -> bool:
        """Held for a slice and another process waits: time to let go."""
        return time.monotonic() - self.opened >= HOLD_SECONDS and _others_wait(self.want)

    def close(self) -> None:
        """Close DuckDB's handle (it checkpoints), then let the next process in."""
        # The idle timer holds this handle in its arguments: kept, the pair is a cycle
        # that waits for the cyclic collector after the timer's thread ends.
        self.idle_timer = None
        try:
            self.root.close()
        finally:
            os.close(self.lock)  # closing the descriptor drops its flock
            os.close(self.want)


_HANDLES: dict[str, _Handle] = {}
_HANDLES_LOCK = threading.Lock()
_LET_GO: dict[str, float] = {}  # files this process let go of for a waiter, and when
_UNITS = threading.local()  # units of work this thread has open, per file


def _close_if_idle(key: str, entry: _Handle) -> None:
    with _HANDLES_LOCK:
        if _HANDLES.get(key) is entry and entry.users == 0:
            del _HANDLES[key]
            entry.close()


def _release_all_at_exit() -> None:
    with contextlib.suppress(Exception):
        release_all()


def release_all() -> None:
    """Close every idle handle now (tests, and before handing the file to another process)."""
    with _HANDLES_LOCK:
        for key, entry in list(_HANDLES.items()):
            if entry.users == 0:
                if entry.idle_timer is not None:
                    entry.idle_timer.cancel()
                del _HANDLES[key]
                entry.close()


def default_db_path() -> Path:
    """``$REVSTACK_DB`` if set, else ``var/revstack.duckdb`` under the working directory."""
    env = os.environ.get("REVSTACK_DB")
    return Path(env) if env else DEFAULT_DB


def migrations() -> list[tuple[int, str, str]]:
    """Every numbered migration shipped with this revstack: (version, name, sql)."""
    found = []
    for entry in resources.files("revstack.data.migrations").iterdir():
        stem, dot, ext = entry.name.partition(".")
        if ext != "sql" or not dot:
            continue
        number, _, name = stem.partition("_")
        found.append((int(number), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise WarehouseError(f"migrations are not numbered 1..n without gaps: {versions}")
    return found


LATEST_VERSION = len(migrations())


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in _LOCK_MARKERS)


# The file is attached under one fixed catalog name. Opened directly, DuckDB names the
# catalog after the file's stem, and a file called crm.duckdb (or ops, ref ...) makes
# every ``crm.accounts`` ambiguous between that catalog and the schema.
_CATALOG = "warehouse"
_USE = f"USE {_CATALOG}"


# Every DuckDB revstack opens gets a memory limit. DuckDB's own default is 80% of the
# machine's memory for each database, and it spills to disk only past that: a process
# holding polars frames beside it, or two DuckDBs at once (the warehouse and a scratch
# one), went past the machine's memory before DuckDB spilled (docs/scale.md, The large
# company). A quarter of the machine leaves room for the frames beside it.
MEMORY_LIMIT_ENV = "REVSTACK_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "25%"
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b?|b)?$", re.IGNORECASE)
_SCRATCH = itertools.count()


def memory_limit() -> str:
    """The memory limit of every DuckDB revstack opens, as DuckDB reads it.

    ``$REVSTACK_MEMORY_LIMIT`` when set: a size (``6GB``, ``512MiB``) or a share of the
    machine's memory (``30%``, DuckDB's own reading of a share); else a quarter of it.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    match = _SIZE.match(text)
    ok = match is not None and float(match.group(1)) > 0
    if ok and match is not None and match.group(2) == "%":
        ok = float(match.group(1)) <= 100
    if not ok:
        raise WarehouseError(
            f"{MEMORY_LIMIT_ENV}={text!r}: give a size such as 6GB or 512MiB, "
            "or a share of the machine's memory such as 30%"
        )
    return text


def scratch() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for work on frames, under revstack's memory limit.

    It spills, past the limit, to a folder of its own under the system's temporary
    directory, which DuckDB creates when it first spills and removes when it closes (an
    in-memory DuckDB's default is ``.tmp`` under the working directory)."""
    spill = Path(tempfile.gettempdir()) / f"revstack-spill-{os.getpid()}-{next(_SCRATCH)}"
    return duckdb.connect(
        ":memory:", config={"memory_limit": memory_limit(), "temp_directory": str(spill)}
    )


def _attach(path: Path) -> duckdb.DuckDBPyConnection:
    # Spills go beside the file, as they do for a file opened directly, not into the
    # working directory (the in-memory root's default).
    root = duckdb.connect(
        ":memory:", config={"temp_directory": f"{path}.tmp", "memory_limit": memory_limit()}
    )
    try:
        root.execute(f"ATTACH $path AS {_CATALOG}", {"path": str(path)})
    except BaseException:
        root.close()
        raise
    return root


class Warehouse:
    """A DuckDB warehouse file. Cheap to create; holds no connection between units of work."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._checked = False

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    # -- connections ---------------------------------------------------------

    def _open_root(self) -> _Handle:
        """Take revstack's lock on the file, then open it with DuckDB.

        DuckDB's own lock (fcntl, taken once it has opened the file) keeps two processes
        from writing at once, but a process that finds the file locked has already read
        its header; with two processes handing the file back and forth, one committed
        decision in about a hundred trials was lost (docs/warehouse.md, One lock around
        DuckDB's). So a process takes an exclusive flock on ``<file>.lock`` first and
        keeps it until DuckDB has closed the file: the next one does not touch the file
        before then. A non-revstack process (the duckdb CLI) still meets DuckDB's lock.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = _POLL_SECONDS
        lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        want = os.open(f"{self.path}.want", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        line = _Line(f"{self.path}.queue")
        try:
            while True:
                try:
                    if not line.first():
                        raise BlockingIOError  # others came first: wait behind them
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    handle = _Handle(_attach(self.path), lock, want)
                    fcntl.flock(want, fcntl.LOCK_UN)  # no longer waiting
                    return handle
                except BlockingIOError:
                    # Another revstack process has the file, or others wait for it: join
                    # the line and say that this one waits (the holder probing at this
                    # instant makes it fail; the next round retries).
                    line.join()
                    with contextlib.suppress(BlockingIOError):
                        fcntl.flock(want, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    delay = _POLL_SECONDS
                except duckdb.IOException as exc:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    if not _is_lock_error(exc):
                        raise WarehouseError(f"{self.path}: cannot open warehouse: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        f"{self.path}: another process held the warehouse for more than "
                        f"{self.busy_timeout:.0f}s; try again when it finishes"
                    )
                time.sleep(delay * (0.5 + random.random()))
                # a non-revstack process (the duckdb CLI) holding the file: back off
                delay = min(delay * 2, 0.5)
        except BaseException:
            os.close(lock)
            os.close(want)
            raise
        finally:
            line.leave()

    def _wait_turn(self, key: str) -> None:
        """Before a unit: if this process is letting go of the file for another process
        (or just did), wait, up to YIELD_SECONDS, for that one to get in. A thread with
        a unit of its own open on the file never waits (its unit would hold the handle)."""
        if getattr(_UNITS, key, 0):
            return
        since = time.monotonic()
        while time.monotonic() - since < YIELD_SECONDS:
            with _HANDLES_LOCK:
                entry = _HANDLES.get(key)
                if entry is not None:
                    if not (entry.yielding or entry.due()):
                        return
                    entry.yielding = True  # the units in flight finish; then it closes
                    if entry.users == 0:  # none in flight: let go now
                        if entry.idle_timer is not None:
                            entry.idle_timer.cancel()
                        del _HANDLES[key]
                        entry.close()
                        _LET_GO[key] = time.monotonic()
                else:
                    let_go = _LET_GO.get(key)
                    if let_go is None or time.monotonic() - let_go >= YIELD_SECONDS:
                        _LET_GO.pop(key, None)
                        return
                    want = os.open(
                        f"{self.path}.want",
                        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                        0o644,
                    )
                    try:
                        if not _others_wait(want):  # the waiter got in (or gave up)
                            del _LET_GO[key]
                            return
                    finally:
                        os.close(want)
            time.sleep(0.005)

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        """A cursor of this process's handle on the file, opening the handle if needed."""
        key = str(self.path.resolve())
        self._wait_turn(key)
        with _HANDLES_LOCK:
            entry = _HANDLES.get(key)
            if entry is None:
                entry = _HANDLES[key] = self._open_root()
            if entry.idle_timer is not None:
                entry.idle_timer.cancel()
                entry.idle_timer = None
            entry.users += 1
            try:
                cursor = entry.root.cursor()
                cursor.execute(_USE)  # a cursor starts in the root's in-memory catalog
                return cursor
            except BaseException:
                entry.users -= 1
                raise

    def let_go(self) -> None:
        """Close this process's handle on the file now, not after ``LINGER_SECONDS``, if
        no unit of work has it open (else it stays, and lingers as usual). DuckDB's
        cached blocks go with it: after an agent's reads of a large company a handle kept
        open held gigabytes under the next agent's work (docs/scale.md, Weekly run on
        large). The next unit opens the file again."""
        key = str(self.path.resolve())
        with _HANDLES_LOCK:
            entry = _HANDLES.get(key)
            if entry is None or entry.users:
                return
            if entry.idle_timer is not None:
                entry.idle_timer.cancel()
            del _HANDLES[key]
            entry.close()

    @staticmethod
    def _release_handle(key: str) -> None:
        with _HANDLES_LOCK:
            entry = _HANDLES[key]
            entry.users -= 1
            if entry.users == 0 and (entry.yielding or entry.due()):
                del _HANDLES[key]  # another process waits and this one had its slice
                entry.close()
                _LET_GO[key] = time.monotonic()
            elif entry.users == 0:
                # Keep the file briefly so a burst of units (a page render, a queue of
                # approvals) pays the open's fixed cost once (docs/design.md, Opening a
                # connection has a fixed cost); let go after LINGER_SECONDS idle.
                timer = threading.Timer(LINGER_SECONDS, _close_if_idle, args=(key, entry))
                timer.daemon = True
                entry.idle_timer = timer
                timer.start()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work, upgraded to the latest schema, closed after."""
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._acquire()
        key = str(self.path.resolve())
        setattr(_UNITS, key, getattr(_UNITS, key, 0) + 1)
        try:
            if not self._checked:
                self._migrate(con)
                self._checked = True
            yield con
        finally:
            setattr(_UNITS, key, getattr(_UNITS, key) - 1)
            con.close()
            self._release_handle(key)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One all-or-nothing unit of work: committed if the block returns, else rolled back."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def read(
        self,
        fn: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(con, *args, **kwargs)`` on a connection held for that call alone: how the
        CLI and the dashboard call a library read, which takes the connection first."""
        with self.connect() as con:
            return fn(con, *args, **kwargs)

    # -- schema --------------------------------------------------------------

    def schema_version(self) -> int:
        with self.connect() as con:
            return current_version(con)

    def _refuse_foreign(self, con: duckdb.DuckDBPyConnection) -> None:
        """Refuse, before writing anything, a DuckDB file that holds tables but no
        revstack version: migration 001 would fail on the first name it shares, or worse,
        succeed beside someone else's tables."""
        versioned = scalar(con, _HAS_VERSIONS) and current_version(con) > 0
        if versioned:
            return
        tables = [r[0] for r in con.execute(_TABLES).fetchall()]
        if tables:
            shown = ", ".join(tables[:4]) + (" ..." if len(tables) > 4 else "")
            raise WarehouseError(
                f"{self.path}: not a revstack warehouse: it holds {len(tables)} table(s) "
                f"({shown}) and no revstack schema version; nothing was changed. Use a new "
                "--db (`revstack ingest` loads a CRM export into it)"
            )

    def _migrate(self, con: duckdb.DuckDBPyConnection, upto: int | None = None) -> None:
        """Apply every migration newer than the file's version (up to ``upto``)."""
        self._refuse_foreign(con)
        con.execute(_BOOTSTRAP)
        current = current_version(con)
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"{self.path}: warehouse is at schema version {current}, but this revstack "
                f"knows versions up to {LATEST_VERSION}; upgrade revstack to open it"
            )
        for version, name, sql in migrations():
            if version <= current or (upto is not None and version > upto):
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute(
                    "INSERT INTO ops.schema_version (version, name) VALUES (?, ?)",
                    [version, name],
                )
            except Exception as exc:
                con.execute("ROLLBACK")
                raise WarehouseError(
                    f"{self.path}: migration {version:03d}_{name} failed: {exc}"
                ) from exc
            con.execute("COMMIT")


def first_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: object = None
) -> tuple[Any, ...] | None:
    """The first row of a query (None when there is none), with the result fully consumed.
    Its values are typed ``Any`` as in DuckDB's rows: the SQL decides (see ``scalar``).

    DuckDB 2 keeps a half-read result open on the connection (``fetchone``), and
    refuses some further work on it until it is finished; fetching all avoids that.
    """
    rows = (
        con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    )
    return rows[0] if rows else None


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: object) -> Iterator[None]:
    """Make a polars/Arrow frame queryable as ``name`` for the length of the block.

    If the block fails (say with a write conflict), the transaction is aborted and
    unregistering would fail too, hiding the real error; that second error is dropped.

    A polars frame goes over as Arrow at polars' newest compat level: its own string
    views, where DuckDB's default conversion copies every string into Arrow's older
    layout (a weekly run on mid registers 77 frames; DuckDB reads the views alike).
    """
    if isinstance(data, pl.DataFrame) and pl.Object not in data.dtypes:
        data = data.to_arrow(compat_level=pl.CompatLevel.newest())
    con.register(name, data)
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> pl.DataFrame:
    """A query's result as a polars frame (DuckDB 2: ``con.sql(...).pl()``)."""
    rel = con.sql(sql, params=params) if params is not None else con.sql(sql)
    if rel is None:  # a statement without a result
        return pl.DataFrame()
    return rel.pl()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> Any:
    """The first value of the first row (None when there is no row).

    Typed ``Any`` like DuckDB's own rows: the SQL decides the type, so the caller states
    it (``n: int = scalar(...)``) rather than casting."""
    row = first_row(con, sql, params)
    return row[0] if row else None


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version the warehouse on ``con`` is at (0 before any migration)."""
    return int(scalar(con, "SELECT coalesce(max(version), 0) FROM ops.schema_version"))


atexit.register(_release_all_at_exit)
