"""The audit log: append-only, hash-chained, one row per thing the stack did.

Each row has a content digest, sha256 of its fields joined by a separator that
cannot occur in them, computed by DuckDB for a whole batch at once; and a chain
hash, ``hash = sha256(prev_hash + digest)``, the only sequential step. Changing or
removing any row breaks every hash after it; ``verify`` recomputes both and names
the first row that does not match. The table itself refuses UPDATE and DELETE
(triggers in migration 002).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from data.warehouse import first_row, frame, registered

__all__ = ["AuditEntry", "GENESIS", "append", "verify", "ChainReport", "to_json"]

GENESIS = "0" * 64

ENTRY_FIELDS = (
    "actor", "actor_kind", "action", "object_type", "record_id", "field",
    "before", "after", "proposal_id", "run_id", "detail",
)  # fmt: skip
_COLUMNS = ("seq", "logged_at", *ENTRY_FIELDS, "prev_hash", "hash")

# The one definition of a row's content digest, used to write and to verify.
_DIGEST = (
    "sha256(concat_ws(chr(31), seq::VARCHAR, strftime(logged_at, '%Y-%m-%dT%H:%M:%S.%f'), "
    + ", ".join(f"coalesce({f}::VARCHAR, chr(0))" for f in ENTRY_FIELDS)
    + "))"
)
_TAIL = "SELECT seq, hash FROM ops.audit_log ORDER BY seq DESC LIMIT 1"
_BATCH_DIGESTS = f"SELECT {_DIGEST} AS digest FROM audit_batch ORDER BY seq"
_INSERT = (
    "INSERT INTO ops.audit_log SELECT "
    + ", ".join(f"b.{c}" for c in _COLUMNS[:-2])
    + ", h.prev_hash, h.hash FROM audit_batch b JOIN audit_hashes h USING (seq)"
)
_SCAN = f"""
SELECT seq, prev_hash, hash, {_DIGEST} AS digest FROM ops.audit_log
WHERE seq > $after ORDER BY seq LIMIT $n
"""

_SCHEMA = {
    "seq": pl.Int64, "logged_at": pl.Datetime("us"),
    **{f: pl.String for f in ENTRY_FIELDS}, "prev_hash": pl.String, "hash": pl.String,
}  # fmt: skip


def to_json(value: Any) -> str:
    """A value as JSON text, keeping its type: None is 'null', '' is '""', 5 is '5'."""
    return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError(f"cannot log a {type(value).__name__}")


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened. ``before``/``after``/``detail`` are JSON text (or None)."""

    actor: str
    actor_kind: str  # agent | person | system
    action: str
    object_type: str | None = None
    record_id: str | None = None
    field: str | None = None
    before: str | None = None
    after: str | None = None
    proposal_id: str | None = None
    run_id: str | None = None
    detail: str | None = None


def _chain(prev: str, digests: Iterable[str]) -> tuple[list[str], list[str]]:
    """(prev_hash, hash) of each row: the one sequential step, kept tight."""
    sha256 = hashlib.sha256
    hashes: list[str] = []
    push = hashes.append
    start = prev
    for digest in digests:
        prev = sha256((prev + digest).encode()).hexdigest()
        push(prev)
    return [start, *hashes[:-1]], hashes


def append(
    con: duckdb.DuckDBPyConnection,
    entries: Iterable[AuditEntry] | pl.DataFrame,
    *,
    at: dt.datetime | None = None,
) -> int:
    """Append entries to the chain inside the caller's transaction; returns how many.

    ``entries`` is AuditEntry objects or a frame with their fields as columns (the
    fast path for big runs). Two writers appending at once read the same tail and
    insert the same ``seq``: the primary key fails one of them, whose whole
    transaction the caller retries, so the chain never forks.
    """
    if isinstance(entries, pl.DataFrame):
        batch = entries.select(
            [pl.col(f) if f in entries.columns else pl.lit(None).alias(f) for f in ENTRY_FIELDS]
        ).cast(dict.fromkeys(ENTRY_FIELDS, pl.String))
    else:
        rows = list(entries)
        batch = pl.DataFrame(
            {f: [getattr(e, f) for e in rows] for f in ENTRY_FIELDS},
            schema=dict.fromkeys(ENTRY_FIELDS, pl.String),
        )
    if batch.is_empty():
        return 0
    logged_at = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    tail = first_row(con, _TAIL)
    last, prev = (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)  # type: ignore[arg-type]
    batch = batch.with_columns(
        seq=pl.int_range(last + 1, last + 1 + len(batch), dtype=pl.Int64),
        logged_at=pl.lit(logged_at, pl.Datetime("us")),
    )
    with registered(con, "audit_batch", batch):
        digests = frame(con, _BATCH_DIGESTS)["digest"].to_list()
        prevs, hashes = _chain(prev, digests)
        chained = pl.DataFrame({"seq": batch["seq"], "prev_hash": prevs, "hash": hashes})
        with registered(con, "audit_hashes", chained):
            con.execute(_INSERT)
    return len(batch)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(con: duckdb.DuckDBPyConnection, *, chunk: int = 500_000) -> ChainReport:
    """Recompute every digest and the chain from the start; name the first bad row."""
    prev, expected, rows, after = GENESIS, 1, 0, 0
    while True:
        part = con.execute(_SCAN, {"after": after, "n": chunk}).fetchall()
        if not part:
            return ChainReport(True, rows)
        for seq, stored_prev, stored_hash, digest in part:
            if seq != expected:
                return ChainReport(False, rows, expected, f"row {expected} is missing")
            if stored_prev != prev:
                return ChainReport(False, rows, seq, "prev_hash does not match the row before")
            h = hashlib.sha256((prev + digest).encode()).hexdigest()
            if h != stored_hash:
                return ChainReport(False, rows, seq, "row content does not match its hash")
            prev, expected, rows = h, seq + 1, rows + 1
        after = int(part[-1][0])
