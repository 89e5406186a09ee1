"""The audit log: append-only, hash-chained, one row per thing the stack did.

Each row's hash is sha256(prev_hash + canonical text of the row), so changing or
removing any row breaks every hash after it; ``verify`` recomputes the chain and
names the first row that does not match. The table itself refuses UPDATE and
DELETE (triggers in migration 002).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from data.warehouse import first_row, registered

__all__ = ["AuditEntry", "GENESIS", "append", "verify", "ChainReport", "to_json"]

GENESIS = "0" * 64

_COLUMNS = (
    "seq", "logged_at", "actor", "actor_kind", "action", "object_type", "record_id",
    "field", "before", "after", "proposal_id", "run_id", "detail", "prev_hash", "hash",
)  # fmt: skip

_TAIL = "SELECT seq, hash FROM ops.audit_log ORDER BY seq DESC LIMIT 1"
_INSERT = f"INSERT INTO ops.audit_log SELECT {', '.join(_COLUMNS)} FROM audit_batch"
_SCAN = f"SELECT {', '.join(_COLUMNS)} FROM ops.audit_log WHERE seq > $after ORDER BY seq LIMIT $n"

_SCHEMA = {
    "seq": pl.Int64, "logged_at": pl.Datetime("us"), "actor": pl.String,
    "actor_kind": pl.String, "action": pl.String, "object_type": pl.String,
    "record_id": pl.String, "field": pl.String, "before": pl.String, "after": pl.String,
    "proposal_id": pl.String, "run_id": pl.String, "detail": pl.String,
    "prev_hash": pl.String, "hash": pl.String,
}  # fmt: skip


def to_json(value: Any) -> str | None:
    """A value as JSON text, keeping its type; SQL NULL stays NULL, '' stays '""'."""
    if value is _ABSENT:
        return None
    return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError(f"cannot log a {type(value).__name__}")


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened. ``before``/``after`` are already JSON text (or None)."""

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


def _canonical(seq: int, logged_at: dt.datetime, e: Sequence[Any], prev: str) -> str:
    # Unit separators cannot occur in JSON text or our ids, so fields cannot run together.
    parts = [str(seq), logged_at.isoformat(timespec="microseconds")]
    parts += ["\x00" if v is None else str(v) for v in e]
    parts.append(prev)
    return "\x1f".join(parts)


def _hash(seq: int, logged_at: dt.datetime, e: Sequence[Any], prev: str) -> str:
    return hashlib.sha256(_canonical(seq, logged_at, e, prev).encode()).hexdigest()


_ENTRY_FIELDS = (
    "actor", "actor_kind", "action", "object_type", "record_id", "field",
    "before", "after", "proposal_id", "run_id", "detail",
)  # fmt: skip


def append(
    con: duckdb.DuckDBPyConnection,
    entries: Iterable[AuditEntry] | pl.DataFrame,
    *,
    at: dt.datetime | None = None,
) -> int:
    """Append entries to the chain inside the caller's transaction; returns how many.

    ``entries`` is AuditEntry objects or a frame with their fields as columns (the
    fast path for big runs). Two writers appending at once both read the same tail
    and insert the same ``seq``: the primary key makes one of them fail, and its
    whole transaction is retried by the caller, so the chain never forks.
    """
    if isinstance(entries, pl.DataFrame):
        cols = entries.select(
            [
                pl.col(f) if f in entries.columns else pl.lit(None, pl.String).alias(f)
                for f in _ENTRY_FIELDS
            ]
        )
        rows: list[tuple[Any, ...]] = cols.rows()
    else:
        rows = [tuple(getattr(e, f) for f in _ENTRY_FIELDS) for e in entries]
    if not rows:
        return 0
    logged_at = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    tail = first_row(con, _TAIL)
    seq, prev = (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)  # type: ignore[arg-type]
    seqs, prevs, hashes = [], [], []
    stamp = logged_at.isoformat(timespec="microseconds")
    for values in rows:
        seq += 1
        text = "\x1f".join(
            [str(seq), stamp, *("\x00" if v is None else str(v) for v in values), prev]
        )
        h = hashlib.sha256(text.encode()).hexdigest()
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(h)
        prev = h
    data = {f: [r[i] for r in rows] for i, f in enumerate(_ENTRY_FIELDS)}
    batch = pl.DataFrame(
        {
            "seq": seqs,
            "logged_at": [logged_at] * len(rows),
            **data,
            "prev_hash": prevs,
            "hash": hashes,
        },
        schema=_SCHEMA,
    )
    with registered(con, "audit_batch", batch):
        con.execute(_INSERT)
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(con: duckdb.DuckDBPyConnection, *, chunk: int = 200_000) -> ChainReport:
    """Recompute the chain from the start; name the first row that does not match."""
    prev, expected_seq, rows, after = GENESIS, 1, 0, 0
    while True:
        part = con.execute(_SCAN, {"after": after, "n": chunk}).fetchall()
        if not part:
            return ChainReport(True, rows)
        for r in part:
            seq = int(r[0])
            if seq != expected_seq:
                return ChainReport(False, rows, expected_seq, f"row {expected_seq} is missing")
            if r[13] != prev:
                return ChainReport(False, rows, seq, "prev_hash does not match the row before")
            if _hash(seq, r[1], r[2:13], prev) != r[14]:
                return ChainReport(False, rows, seq, "row content does not match its hash")
            prev, expected_seq, rows = r[14], seq + 1, rows + 1
        after = int(part[-1][0])
