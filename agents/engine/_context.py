"""What an agent may see: its contract's tables and columns, nothing else, never truth.

The context loads each table an agent asks for with one short connection (the
warehouse is not held open while the agent computes) and keeps it in memory. SQL
runs in a private in-memory DuckDB where only the tables the agent named, within
its contract, exist: a query that reaches for anything else finds nothing there
and fails with ``AccessDenied``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine._catalog import OBJECTS, EngineError
from revstack.agents.engine._route import KEY_SQL
from revstack.data.warehouse import Warehouse, frame, memory_limit, registered, scalar, scratch

__all__ = ["AccessDenied", "Context", "ALL_COLUMNS", "SharedReads", "WarehouseQueries"]

ALL_COLUMNS = "*"
_FORBIDDEN_SCHEMAS = ("truth",)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = $schema AND table_name = $table
ORDER BY ordinal_position
"""
_UNRECORDED = (
    "SELECT ord FROM (SELECT ord, "
    + KEY_SQL
    + " AS idempotency_key FROM asked) ANTI JOIN ops.proposals USING (idempotency_key)"
    " ORDER BY ord"
)
_KEY_COLUMNS = ("action_type", "object_type", "record_id", "field", "old_value", "new_value")
_PRIMARY_KEY = """
SELECT constraint_column_names FROM duckdb_constraints()
WHERE database_name = current_database() AND schema_name = $schema AND table_name = $table
  AND constraint_type = 'PRIMARY KEY'
"""
# What has written the CRM since a moment: every import adds a row to ops.imports, and
# every change the engine makes to a record is an audit row naming the record's object.
_GENERATION = """
SELECT (SELECT coalesce(max(import_id), 0) FROM ops.imports),
       (SELECT coalesce(max(seq), 0) FROM ops.audit_head)
"""
_WRITTEN_SINCE = """
SELECT DISTINCT object_type FROM ops.audit_log
WHERE seq > $seq AND action NOT IN ('propose', 'shadow', 'task', 'read', 'defer', 'expire')
"""
# Schemas whose every write is an import or an engine change to a record (above).
_SHARED_SCHEMAS = ("crm", "foundation")
# The most rows of one table a run reads once and holds for the agents after the first.
# A held read stays in memory under every later agent's own frames, so on a company the
# size of the generated large one the held reads took one process well past what any
# agent needs alone (docs/engine.md). A larger table is read by each agent alone, its own
# columns only; every table of the generated mid company is under it.
HOLD_UP_TO = 4_000_000


def _among(any_of: Mapping[str, Sequence[Any]]) -> pl.Expr:
    """Rows whose value in one of the columns is among its values."""
    keep = pl.lit(False)
    for col, values in any_of.items():
        keep = keep | pl.col(col).is_in(list(values))
    return keep


class AccessDenied(EngineError):
    """An agent reached for data its contract does not grant."""


def leading_key(con: duckdb.DuckDBPyConnection, table: str, existing: list[str]) -> tuple[str, ...]:
    """The table's primary key when its columns are the table's first ones (``existing``:
    its columns in table order), else ().

    Rows ordered by such a key are in the order ``ORDER BY ALL`` gives any selection of
    the table's columns in table order that holds the key (no two rows tie on it), and
    sorting on the key alone moves less (on mid's 2.0M activity rows 1.9 s against 2.5 s
    at load 5)."""
    schema, name = table.split(".")
    pk = con.execute(_PRIMARY_KEY, {"schema": schema, "table": name}).fetchall()
    key = tuple(pk[0][0]) if pk else ()
    return key if key and list(key) == existing[: len(key)] else ()


class SharedReads:
    """Tables several agents of one run read, read once for all of them.

    A weekly run on mid read the 2M activity rows four times (hygiene, pipeline health,
    deal prep, forecast), each agent its own columns. Here the first agent to ask reads
    the union of the columns every agent of the run is granted, ordered by the primary
    key, and each agent gets its granted columns of that frame. Ordered by a primary key
    that leads the table, the rows come in the order ``ORDER BY ALL`` gives any granted
    subset holding the key, so an agent sees the rows it would have read itself; a table
    whose key does not lead it, or is not granted whole, is read by each agent alone.

    Between agents the engine applies their changes, and imports or people may write: a
    table is read again after an import, or after an engine change to its records (an
    audit row other than a proposal, a task or a read). Only ``crm`` and ``foundation``
    tables are shared, since those are all their writes.
    """

    def __init__(
        self,
        wants: Mapping[str, set[str] | str],
        readers: Mapping[str, int],
        *,
        hold_up_to: int = HOLD_UP_TO,
    ) -> None:
        self._wants = dict(wants)
        self._hold_up_to = hold_up_to
        self._readers = dict(readers)  # agents still to run that may read each table
        self._frames: dict[str, pl.DataFrame] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        self._generation: tuple[int, int] | None = None

    @property
    def held(self) -> list[str]:
        """The tables read and held now."""
        return sorted(self._frames)

    @classmethod
    def for_run(
        cls, reads: Sequence[Mapping[str, Sequence[str] | str]], *, hold_up_to: int = HOLD_UP_TO
    ) -> SharedReads:
        """Share the tables two or more of the run's agents (their ``reads``) may read,
        each while it has at most ``hold_up_to`` rows."""
        union: dict[str, set[str] | str] = {}
        count: dict[str, int] = {}
        for grants in reads:
            for table, cols in grants.items():
                if table.split(".")[0] not in _SHARED_SCHEMAS:
                    continue
                count[table] = count.get(table, 0) + 1
                have = union.get(table, set())
                if cols == ALL_COLUMNS or have == ALL_COLUMNS:
                    union[table] = ALL_COLUMNS
                else:
                    assert isinstance(have, set)
                    union[table] = have | set(cols)
        shared = {t for t in union if count[t] > 1}
        return cls(
            {t: union[t] for t in shared}, {t: count[t] for t in shared}, hold_up_to=hold_up_to
        )

    def finished(self, reads: Mapping[str, Sequence[str] | str]) -> None:
        """An agent with these grants has run: let go of what no agent still to run reads."""
        for table in reads:
            if table in self._readers:
                self._readers[table] -= 1
                if self._readers[table] <= 0:
                    self._frames.pop(table, None)
                    self._wants.pop(table, None)

    def frame(
        self, con: duckdb.DuckDBPyConnection, table: str, existing: list[str], columns: list[str]
    ) -> pl.DataFrame | None:
        """``columns`` of ``table`` (in table order; ``existing`` are all of them) as one
        read serves them all, or None when the table is not shared or its key does not
        decide the order."""
        if table not in self._wants:
            return None
        self._forget_written(con)
        if table not in self._keys:
            self._keys[table] = leading_key(con, table, existing)
        key = self._keys[table]
        if not key or not set(key) <= set(columns):
            return None
        if table not in self._frames:
            schema, name = table.split(".")
            if scalar(con, f'SELECT count(*) FROM "{schema}"."{name}"') > self._hold_up_to:
                # Too large to hold for the next agents: each reads its own, as alone.
                self._wants.pop(table)
                return None
            want = self._wants[table]
            cols = [c for c in existing if want == ALL_COLUMNS or c in want]
            quoted = ", ".join(f'"{c}"' for c in cols)  # names from the catalog
            order = ", ".join(f'"{c}"' for c in key)
            self._frames[table] = frame(
                con, f'SELECT {quoted} FROM "{schema}"."{name}" ORDER BY {order}'
            )
        return self._frames[table].select(columns)

    def _forget_written(self, con: duckdb.DuckDBPyConnection) -> None:
        [(imports, seq)] = con.execute(_GENERATION).fetchall()
        if self._generation is not None and self._frames:
            if imports != self._generation[0]:
                self._frames.clear()
            elif seq != self._generation[1]:
                written = frame(con, _WRITTEN_SINCE, {"seq": self._generation[1]})
                for object_type in written["object_type"].drop_nulls().to_list():
                    if object_type in OBJECTS:  # other audit rows are not CRM records
                        self._frames.pop(OBJECTS[object_type].table, None)
        self._generation = (int(imports), int(seq))


def _give_back(con: duckdb.DuckDBPyConnection) -> None:
    """Let DuckDB give back the blocks a block of warehouse queries left in its buffer
    pool. It keeps the file's blocks it read (and what its temporary tables freed) up to
    its memory limit until it needs the room, and the warehouse's handle outlives the
    block, so after the deal states of a large company the agent went on holding
    gigabytes it would never read again. Lowering the limit evicts them (blocks of the
    file are read again when asked for); the limit is then set back. The limit is the
    database's, not the connection's: for that moment every connection of this process to
    the file has it. A run's process runs one agent at a time and decides nothing for a
    reviewer; a process that did both could see a reviewer's query refused for memory."""
    try:
        con.execute("SET memory_limit = '1MB'")
    except duckdb.Error:  # pinned blocks it cannot evict: it keeps what it has
        pass
    finally:
        con.execute(f"SET memory_limit = '{memory_limit()}'")


class WarehouseQueries:
    """Queries on one warehouse connection over an agent's granted columns
    (``Context.warehouse``).

    A query may name only the tables it was given (as ``schema.table``), its own CTEs
    and the tables kept before it (``keep``), and no table functions; anything but one
    SELECT is refused (checked on DuckDB's parse of it). Each name of a table is
    replaced by a selection of its granted columns, so nothing else of it is visible.
    """

    def __init__(
        self,
        agent: str,
        con: duckdb.DuckDBPyConnection,
        subs: Mapping[str, tuple[str, dict[str, Any]]],
    ) -> None:
        self._agent = agent
        self._con = con
        self._subs = dict(subs)
        self._kept: list[str] = []

    def frame(self, query: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """The query's rows."""
        sql, args = self._checked(query, params)
        return frame(self._con, sql, args or None)

    def keep(self, name: str, query: str, params: Mapping[str, Any] | None = None) -> None:
        """Keep the query's rows as the temporary table ``name`` (DuckDB's memory, under
        its limit, spilling past it), for the queries after it; dropped at the end."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"{name!r}: a lowercase name")
        sql, args = self._checked(query, params)
        self._con.execute(f"CREATE TEMP TABLE {name} AS {sql}", args or None)
        self._kept.append(name)

    def drop(self) -> None:
        for name in self._kept:
            self._con.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self._kept.clear()

    def _checked(self, query: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        named = self._names(query)
        args = dict(params or {})
        for table, (sub, extra) in self._subs.items():
            schema, name = table.split(".")
            query, n = re.subn(
                rf"(?<![\w.\"]){schema}\.{name}(?![\w\"])", sub.replace("\\", "\\\\"), query
            )
            if n != named.get(table, 0):  # a name written otherwise ("crm"."x") would read all
                raise AccessDenied(
                    f"{self._agent}: the warehouse names {table} as schema.table only"
                )
            if n:
                args |= extra
        return query, args

    def _names(self, query: str) -> dict[str, int]:
        """How many times the query names each table it was given; refuses a query naming
        a table beyond them, its CTEs and the kept tables, a table function, or anything
        but one SELECT (what DuckDB cannot serialize)."""
        tree = json.loads(scalar(self._con, "SELECT json_serialize_sql($q)", {"q": query}))
        if tree.get("error") or len(tree.get("statements", [])) != 1:
            raise AccessDenied(f"{self._agent}: the warehouse runs one SELECT statement only")
        refs: list[dict[str, Any]] = []
        ctes: set[str] = set(self._kept)

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("BASE_TABLE", "TABLE_FUNCTION"):
                    refs.append(node)
                for m in (node.get("cte_map") or {}).get("map", []):
                    ctes.add(m.get("key"))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(tree)
        named: dict[str, int] = {}
        for r in refs:
            name = f"{r.get('schema_name')}.{r.get('table_name')}"
            if r["type"] == "TABLE_FUNCTION" or r.get("catalog_name"):
                raise AccessDenied(f"{self._agent}: the warehouse reads tables only")
            if not r.get("schema_name") and r.get("table_name") in ctes:
                continue
            if name not in self._subs:
                raise AccessDenied(
                    f"{self._agent}: a query names {name.lstrip('.')}, "
                    "not among the tables it was given"
                )
            named[name] = named.get(name, 0) + 1
        return named


class Context:
    """An agent's read-only, contract-scoped view of the warehouse."""

    def __init__(
        self,
        wh: Warehouse,
        *,
        agent: str,
        reads: Mapping[str, Sequence[str] | str],
        as_of: dt.datetime,
        events: pl.DataFrame | None = None,
        definitions: Any = None,
        params: Mapping[str, Any] | None = None,
        shared: SharedReads | None = None,
    ) -> None:
        self._wh = wh
        self._shared = shared
        self.agent = agent
        self._reads = {t: (ALL_COLUMNS if c == ALL_COLUMNS else tuple(c)) for t, c in reads.items()}
        self.as_of = as_of
        self.events = events if events is not None else pl.DataFrame()
        self.definitions = definitions
        self.params = dict(params or {})
        self._cache: dict[str, pl.DataFrame] = {}
        self._arrow: dict[str, Any] = {}  # pyarrow.Table (pyarrow ships no type hints)
        self.read_log: dict[str, int] = {}
        self.queried: set[str] = set()  # tables a warehouse query read (Context.warehouse)
        self.skipped: list[dict[str, Any]] = []

    def held(self) -> list[str]:
        """The reads this context holds (tables, windows of them, their Arrow copies)."""
        return sorted([*self._cache, *(f"{t}|arrow" for t in self._arrow)])

    def let_go(self) -> None:
        """Drop the tables read for the agent, once it has run: what the engine commits is
        the agent's result, and a large company's tables held through the commit (hygiene's
        accounts and contacts, every column) are memory the commit then lacks."""
        self._cache.clear()
        self._arrow.clear()

    def _grant(self, table: str) -> tuple[str, ...] | str:
        if not _NAME.match(table):
            raise AccessDenied(f"{self.agent}: {table!r} is not a schema.table name")
        if table.split(".")[0] in _FORBIDDEN_SCHEMAS:
            raise AccessDenied(f"{self.agent}: {table} is ground truth; no agent may read it")
        if table not in self._reads:
            raise AccessDenied(f"{self.agent}: its contract does not allow reading {table}")
        return self._reads[table]

    def table(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        *,
        since: tuple[str, dt.datetime] | None = None,
        any_of: Mapping[str, Sequence[Any]] | None = None,
        ordered: bool = True,
    ) -> pl.DataFrame:
        """Rows of a table the contract grants, limited to granted (and asked) columns.

        ``since=(column, moment)`` reads only the rows whose ``column`` is at or after
        ``moment`` (the column must be granted): a weekly run that looks at the last
        month of activity need not read four years of it (on mid, 95k rows of 2.0M, a
        twentieth of the time). ``any_of={column: values, ...}`` reads only the rows
        whose value in one of the columns is among its values (deal prep's weekly
        briefings need the activity of about 2,000 accounts: 0.3M rows of 2.0M). Either
        way the rows come in the whole table's order, so filtering them is filtering
        the whole table the same way.

        ``ordered=False``: the rows in any order, for an agent whose result does not depend
        on it (sets, joins, aggregates, sorts on a key). Sorting mid's 2.0M activity rows
        on their key was about half of reading them. The rows already read in order, or
        the run's shared read, serve as they are.
        """
        if any_of is not None:
            if since is not None:
                raise ValueError(f"{self.agent}: read {table} with since or any_of, not both")
            return self._any_of(table, columns, any_of)
        grant = self._grant(table)
        key = table if since is None else f"{table}|{since[0]}>={since[1].isoformat()}"
        if not ordered and key not in self._cache:
            key = f"{key}|any order"
        if key not in self._cache:
            if since is not None and table in self._cache:
                whole = self._cache[table]
                self._cache[key] = whole.filter(pl.col(since[0]) >= since[1])
            else:
                self._cache[key] = self._read(table, grant, since, ordered=ordered)
            # rows read, per table: a windowed read adds its own rows
            self.read_log[table] = self.read_log.get(table, 0) + len(self._cache[key])
        data = self._cache[key]
        if columns is None:
            return data
        denied = [c for c in columns if c not in data.columns]
        if denied:
            raise AccessDenied(
                f"{self.agent}: its contract does not allow reading {table}.{', '.join(denied)}"
            )
        return data.select(columns)

    def latest_run(self, table: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """The rows of ``table`` that its greatest ``run_id`` wrote, as filtering the whole
        table to that run gives them (the same rows in the same order). For a table each
        run adds to (another agent's clusters, flags): reading it whole grows every week."""
        [run] = self.warehouse_sql(
            f"SELECT max(run_id) AS run_id FROM {table}", tables={table: ["run_id"]}
        )["run_id"].to_list()
        return self.table(table, columns, any_of={"run_id": [] if run is None else [run]})

    def _any_of(
        self, table: str, columns: Sequence[str] | None, any_of: Mapping[str, Sequence[Any]]
    ) -> pl.DataFrame:
        """``table(table, columns)`` filtered to the rows with a value of ``any_of``: from
        the table held in memory (this agent's, or the run's shared read) when there is
        one, else read so from the warehouse. Not kept: each call names its own rows."""
        grant = self._grant(table)
        if table in self._cache:
            self._granted(table, self._cache[table].columns, any_of)
            rows = self._cache[table].filter(_among(any_of))
        else:
            rows = self._read(table, grant, None, any_of=any_of)
            self.read_log[table] = self.read_log.get(table, 0) + len(rows)
        if columns is None:
            return rows
        self._granted(table, rows.columns, columns)
        return rows.select(columns)

    def _granted(self, table: str, granted: Sequence[str], asked: Iterable[str]) -> None:
        denied = [c for c in asked if c not in granted]
        if denied:
            raise AccessDenied(
                f"{self.agent}: its contract does not allow reading {table}.{', '.join(denied)}"
            )

    def _read(
        self,
        table: str,
        grant: tuple[str, ...] | str,
        since: tuple[str, dt.datetime] | None,
        *,
        any_of: Mapping[str, Sequence[Any]] | None = None,
        ordered: bool = True,
    ) -> pl.DataFrame:
        schema, name = table.split(".")
        with self._wh.connect() as con:
            existing = [
                r[0] for r in con.execute(_COLUMNS, {"schema": schema, "table": name}).fetchall()
            ]
            cols = existing if grant == ALL_COLUMNS else [c for c in existing if c in grant]
            if not cols:
                raise AccessDenied(f"{self.agent}: no granted columns of {table} exist")
            if any_of is not None:
                self._granted(table, cols, any_of)
            if (
                since is None
                and self._shared is not None
                and (any_of is None or table in self._shared.held)
            ):
                shared = self._shared.frame(con, table, existing, cols)
                if shared is not None:
                    return shared if any_of is None else shared.filter(_among(any_of))
            quoted = ", ".join(f'"{c}"' for c in cols)  # names from the catalog
            where = ""
            params: dict[str, Any] | None = None
            if since is not None:
                if since[0] not in cols:
                    raise AccessDenied(
                        f"{self.agent}: its contract does not allow reading {table}.{since[0]}"
                    )
                where, params = f' WHERE "{since[0]}" >= $since', {"since": since[1]}
            if any_of is not None:
                # each column's values as a list parameter, joined by hash (IN a subquery)
                params = {f"v{i}": list(v) for i, v in enumerate(any_of.values()) if len(v)}
                terms = [
                    f'"{c}" IN (SELECT unnest($v{i}))'
                    for i, (c, v) in enumerate(any_of.items())
                    if len(v)
                ]
                where = " WHERE " + (" OR ".join(terms) if terms else "false")
            # A scan's row order is not promised, and an agent that draws or fits row by
            # row must see the same rows in the same order: ORDER BY ALL, or the leading
            # key when the selection holds it (the same order, sorted for less).
            order = ""
            if ordered:
                key = leading_key(con, table, existing)
                by = ", ".join(f'"{c}"' for c in key) if key and set(key) <= set(cols) else "ALL"
                order = f" ORDER BY {by}"
            return frame(con, f'SELECT {quoted} FROM "{schema}"."{name}"{where}{order}', params)

    def batches(
        self, table: str, columns: Sequence[str], *, rows: int = 1_000_000
    ) -> Iterator[pl.DataFrame]:
        """Granted ``columns`` of ``table`` in frames of up to ``rows`` rows, in no promised
        order, none kept: for a pass over a table too large to hold whole (digests of its
        rows as a set). The warehouse is held until the last frame is taken."""
        grant = self._grant(table)
        if grant != ALL_COLUMNS:
            self._granted(table, grant, columns)
        schema, name = table.split(".")
        quoted = ", ".join(f'"{c}"' for c in columns)
        with self._wh.connect() as con:
            existing = {
                r[0] for r in con.execute(_COLUMNS, {"schema": schema, "table": name}).fetchall()
            }
            self._granted(table, sorted(existing), columns)
            reader = con.sql(f'SELECT {quoted} FROM "{schema}"."{name}"').to_arrow_reader(rows)
            n = 0
            for batch in reader:
                part = pl.from_arrow(batch)
                assert isinstance(part, pl.DataFrame)
                n += len(part)
                yield part
            self.read_log[table] = self.read_log.get(table, 0) + n

    def warehouse_sql(
        self,
        query: str,
        *,
        tables: Mapping[str, Sequence[str]],
        params: Mapping[str, Any] | None = None,
        rows: Mapping[str, tuple[str, Sequence[Any]]] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> pl.DataFrame:
        """Run ``query`` in the warehouse's own DuckDB over granted columns of ``tables``
        (one query of ``warehouse``, which says what is checked and replaced)."""
        with self.warehouse(tables, rows=rows, types=types) as wh:
            return wh.frame(query, params)

    @contextmanager
    def warehouse(
        self,
        tables: Mapping[str, Sequence[str]],
        *,
        rows: Mapping[str, tuple[str, Sequence[Any]]] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> Iterator[WarehouseQueries]:
        """Queries in the warehouse's own DuckDB over granted columns of ``tables``, on
        one connection held until the block ends (``WarehouseQueries``).

        For work over tables too large to hold as frames (the deal states over tens of
        millions of activity rows): DuckDB reads the file where it lies, under revstack's
        memory limit, and only the results come back. ``sql`` loads every table into
        memory first. ``rows={table: (column, values)}`` keeps only the rows whose
        ``column`` is among ``values`` (none when empty); ``types={"schema.table.column":
        "DOUBLE"}`` casts a column as it is selected.
        """
        for table, columns in tables.items():
            grant = self._grant(table)
            if grant != ALL_COLUMNS:
                self._granted(table, grant, columns)
        self.queried.update(tables)
        where = dict(rows or {})
        casts = dict(types or {})
        subs: dict[str, tuple[str, dict[str, Any]]] = {}
        for i, (table, columns) in enumerate(tables.items()):
            schema, name = table.split(".")
            cols = ", ".join(
                f'CAST("{c}" AS {casts[f"{table}.{c}"]}) AS "{c}"'
                if f"{table}.{c}" in casts
                else f'"{c}"'
                for c in columns
            )
            cond, args = "", {}
            if table in where:
                col, values = where[table]
                self._granted(table, columns, [col])
                if len(values):
                    args = {f"__rows{i}": list(values)}
                    cond = f' WHERE "{col}" IN (SELECT unnest($__rows{i}))'
                else:
                    cond = " WHERE false"
            # names: granted, checked
            subs[table] = (f'(SELECT {cols} FROM "{schema}"."{name}"{cond})', args)
        with self._wh.connect() as con:
            con.execute("SET enable_progress_bar = false")
            queries = WarehouseQueries(self.agent, con, subs)
            try:
                yield queries
            finally:
                queries.drop()
                _give_back(con)

    def unrecorded(self, proposals: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``proposals`` this agent has not proposed before.

        The engine drops a proposal whose idempotency key is already recorded (a repeat,
        or one people rejected or rolled back: docs/engine.md, Tiers) before anything
        else looks at it, so leaving those out changes nothing that is stored; an agent
        asks this before building what only a new proposal needs (a merge's evidence).
        Needs the key's columns (action_type, object_type, record_id, field, old_value,
        new_value); reads only the keys of ops.proposals.
        """
        if proposals.is_empty():
            return proposals
        asked = proposals.select(_KEY_COLUMNS).with_row_index("ord")
        with self._wh.connect() as con, registered(con, "asked", asked):
            keep = frame(con, _UNRECORDED, {"agent": self.agent})["ord"]
        return (
            proposals.with_row_index("_ord")
            .filter(pl.col("_ord").is_in(keep.implode()))
            .drop("_ord")
        )

    def sql(self, query: str, *, tables: Sequence[str], params: Any = None) -> pl.DataFrame:
        """Run ``query`` where only ``tables`` (loaded through ``table``) exist."""
        sandbox = scratch()
        try:
            sandbox.execute("SET enable_progress_bar = false")
            for t in tables:
                schema, name = t.split(".") if "." in t else ("", t)
                if t not in self._arrow:
                    # Registering a polars frame converts it to Arrow at every query (six
                    # queries over 2M activity rows were 3 s of a hygiene run at load 12);
                    # an Arrow table registers without a copy. Polars' own string views
                    # (the newest compat level) hand over its buffers as they are: the
                    # default level copies every string into Arrow's older layout (2M
                    # activity rows: 0.4-0.7 s; DuckDB reads views as fast).
                    self._arrow[t] = self.table(t).to_arrow(compat_level=pl.CompatLevel.newest())
                sandbox.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                sandbox.register(f"__{schema}_{name}", self._arrow[t])
                sandbox.execute(
                    f'CREATE VIEW "{schema}"."{name}" AS SELECT * FROM "__{schema}_{name}"'
                )
            # No files, no ATTACH of the warehouse itself, and no way to turn that back on.
            sandbox.execute("SET enable_external_access = false")
            sandbox.execute("SET lock_configuration = true")
            try:
                return frame(sandbox, query, params)
            except (duckdb.CatalogException, duckdb.PermissionException) as exc:
                raise AccessDenied(
                    f"{self.agent}: query reached outside its granted tables ({exc})"
                ) from exc
        finally:
            sandbox.close()

    def validated(
        self,
        source: str,
        data: pl.DataFrame,
        schema: Mapping[str, pl.DataType],
        *,
        key: str,
        min_confidence: float | None = None,
        confidence: str = "confidence",
    ) -> pl.DataFrame:
        """Handoff check on another agent's output (or any input) before acting on it.

        Rows missing a ``schema`` column value, of the wrong type, or below
        ``min_confidence`` are dropped; each is recorded in ``skipped`` (logged with
        the run) instead of being acted on. A missing column drops every row.
        """
        missing = [c for c in schema if c not in data.columns]
        if missing:
            self.skipped.append(
                {"source": source, "rows": len(data), "problem": f"missing columns {missing}"}
            )
            return data.clear().select([pl.lit(None, t).alias(c) for c, t in schema.items()])
        typed = data.with_columns(
            [pl.col(c).cast(t, strict=False).alias(c) for c, t in schema.items()]
        )
        bad_type = pl.any_horizontal([typed[c].is_null() & data[c].is_not_null() for c in schema])
        null = pl.any_horizontal([pl.col(c).is_null() for c in schema])
        low = pl.lit(False)
        if min_confidence is not None and confidence in typed.columns:
            low = pl.col(confidence).cast(pl.Float64, strict=False).fill_null(-1.0) < min_confidence
        flagged = typed.with_columns(
            _problem=pl.when(bad_type)
            .then(pl.lit("wrong type"))
            .when(null)
            .then(pl.lit("missing value"))
            .when(low)
            .then(pl.lit(f"confidence below {min_confidence}"))
            .otherwise(None)
        )
        for row in (
            flagged.filter(pl.col("_problem").is_not_null()).select(key, "_problem").iter_rows()
        ):
            self.skipped.append({"source": source, "key": row[0], "problem": row[1]})
        return flagged.filter(pl.col("_problem").is_null()).drop("_problem")
