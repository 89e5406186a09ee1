"""The audit log: append-only, hash-chained, one row per thing the stack did.

Rows are appended in blocks: one block per ``append`` call (a run's audit rows,
or one decision's). Exactly what is chained:

- each row's content digest ``d`` is sha256 of ``seq``, ``logged_at`` and every
  entry field, joined by a separator that cannot occur in them (``_DIGEST``), then the
  operating-system user of the process that wrote the row, where there is one (rows
  from before migration 011 have none, and their text is what it always was);
- every row of a block stores the same ``prev_hash``: the chain value before the
  block (``GENESIS`` for the first block);
- a row that is not the block's last stores ``hash = d``; the block's last row
  stores the block digest ``hash = sha256(prev_hash + d_first + ... + d_last)``
  (hex text, in ``seq`` order), which is the chain value the next block starts from.

A block of one row therefore has ``hash = sha256(prev_hash + d)``: exactly a
row-by-row chain, so a log written one row per block verifies the same way (every one
of its rows is a block of one; docs/engine.md, Audit log). The digests of a batch come
from one vectorised pass over the rows' text and one sha256 call per row; the block
digest is one sha256 call. Changing a row's content breaks its own hash (or its
block's digest); changing a row together with its own hash breaks the block digest and
with it every later block; removing or inserting a row breaks the ``seq`` sequence or
the chain. ``verify`` recomputes all of it and names the first row that does not
match. The table itself refuses UPDATE and DELETE (triggers in migration 002).
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from revstack.data.clock import now_utc
from revstack.data.warehouse import first_row, registered, scalar

__all__ = ["AuditEntry", "GENESIS", "anchor", "append", "verify", "ChainReport", "to_json"]

GENESIS = "0" * 64

ENTRY_FIELDS = (
    "actor",
    "actor_kind",
    "action",
    "object_type",
    "record_id",
    "field",
    "before",
    "after",
    "proposal_id",
    "run_id",
    "detail",
)
_COLUMNS = ("seq", "logged_at", *ENTRY_FIELDS, "prev_hash", "hash", "os_user")
# The digest's text, also built in Python to write (append) and checked against _DIGEST.
_SEP, _NULL, _STAMP = chr(31), chr(0), "%Y-%m-%dT%H:%M:%S.%f"

# The one definition of a row's content digest, used to write and to verify.
_DIGEST = (
    "sha256(concat_ws(chr(31), seq::VARCHAR, strftime(logged_at, '%Y-%m-%dT%H:%M:%S.%f'), "
    + ", ".join(f"coalesce({f}::VARCHAR, chr(0))" for f in ENTRY_FIELDS)
    + ", os_user))"  # concat_ws leaves a NULL out, separator and all
)
# The chain's last seq and value, one row (migration 007). Moving it is what makes two
# appending transactions conflict, so the chain never forks.
_HEAD = "SELECT seq, hash FROM ops.audit_head"
_MOVE_HEAD = "UPDATE ops.audit_head SET seq = $seq, hash = $hash WHERE seq = $was AND hash = $prev"
_INSERT = (
    f"INSERT INTO ops.audit_log ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} "
    "FROM audit_batch"
)
# A few rows (a decision) go in as bound lists: no frame to build and register.
_FEW = 64
# Rows hashed at a time when a frame is appended (their text is held as Python strings).
_HASH_PART = 100_000
_INSERT_ROWS = (
    f"INSERT INTO ops.audit_log ({', '.join(_COLUMNS)}) "
    "SELECT unnest($seq::BIGINT[]), $logged_at::TIMESTAMP, "
    + ", ".join(f"unnest(${f}::VARCHAR[])" for f in ENTRY_FIELDS)
    + ", $prev_hash, unnest($hash::VARCHAR[]), $os_user"
)


@functools.cache
def os_user() -> str | None:
    """Who this process runs as, by the operating system: written beside every row's
    actor, so a name given with --by is at least tied to an account (None if unknown)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


_SCAN = f"""
SELECT seq, prev_hash, hash, {_DIGEST} AS digest FROM ops.audit_log
WHERE seq > $after ORDER BY seq LIMIT $n
"""

_SCHEMA = {
    "seq": pl.Int64,
    "logged_at": pl.Datetime("us"),
    **{f: pl.String for f in ENTRY_FIELDS},
    "prev_hash": pl.String,
    "hash": pl.String,
}


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


def append(
    con: duckdb.DuckDBPyConnection,
    entries: Iterable[AuditEntry] | pl.DataFrame,
    *,
    at: dt.datetime | None = None,
    head: tuple[int, str] | None = None,
) -> int:
    """Append entries to the chain inside the caller's transaction; returns how many.

    ``head`` is ops.audit_head's (seq, hash) if the caller has read it in this
    transaction already (it saves a statement); it is checked when the head moves.

    ``entries`` is AuditEntry objects or a frame with their fields as columns (the
    fast path for big runs). Two writers appending at once both move the chain head
    (ops.audit_head): DuckDB fails one of them with a write conflict, and the caller
    retries its whole transaction, so the chain never forks.
    """
    logged_at = at or now_utc()
    if isinstance(entries, pl.DataFrame):
        if entries.is_empty():
            return 0
        return _append_frame(con, entries, logged_at, head)
    rows = [tuple(getattr(e, f) for f in ENTRY_FIELDS) for e in entries]
    if not rows:
        return 0
    if len(rows) > _FEW:  # bound lists cost per value; a big batch goes in as a frame
        batch = pl.DataFrame(rows, schema=dict.fromkeys(ENTRY_FIELDS, pl.String), orient="row")
        return _append_frame(con, batch, logged_at, head)
    last, prev = head or _head(con)
    stamp = logged_at.strftime(_STAMP)
    who = [] if os_user() is None else [str(os_user())]
    digests = [
        _sha(_SEP.join([str(last + i), stamp, *(_NULL if v is None else v for v in row), *who]))
        for i, row in enumerate(rows, start=1)
    ]
    block = _sha(prev + "".join(digests))
    params: dict[str, Any] = {f: [row[i] for row in rows] for i, f in enumerate(ENTRY_FIELDS)}
    params |= {
        "seq": list(range(last + 1, last + 1 + len(rows))),
        "logged_at": logged_at,
        "prev_hash": prev,
        "hash": [*digests[:-1], block],
        "os_user": os_user(),
    }
    _move_head(con, (last, prev), last + len(rows), block)
    con.execute(_INSERT_ROWS, params)
    return len(rows)


def _append_frame(
    con: duckdb.DuckDBPyConnection,
    entries: pl.DataFrame,
    at: dt.datetime,
    head: tuple[int, str] | None = None,
) -> int:
    batch = entries.select(
        [pl.col(f) if f in entries.columns else pl.lit(None).alias(f) for f in ENTRY_FIELDS]
    ).cast(dict.fromkeys(ENTRY_FIELDS, pl.String))
    last, prev = head or _head(con)
    batch = batch.with_columns(
        seq=pl.int_range(last + 1, last + 1 + len(batch), dtype=pl.Int64),
        logged_at=pl.lit(at, pl.Datetime("us")),
        os_user=pl.lit(os_user(), pl.String),
    )
    digests, block = _digests(batch, at, prev)
    batch = batch.with_columns(prev_hash=pl.lit(prev), hash=digests)
    _move_head(con, (last, prev), last + len(batch), block)
    with registered(con, "audit_batch", batch):
        con.execute(_INSERT)
    return len(batch)


def _digests(batch: pl.DataFrame, at: dt.datetime, prev: str) -> tuple[pl.Series, str]:
    """Each row's digest, the last replaced by the block digest, and the block digest.

    The rows' canonical text in vectorised passes, then one sha256 call per row: faster
    than DuckDB's sha256 over the same text, with no round trip (docs/engine.md). verify
    recomputes the digests with DuckDB's SQL, so the two definitions check each other.
    A part at a time, the block digest fed as it goes: a run of millions of rows would
    otherwise hold all their text as Python strings at once."""
    line = pl.concat_str(
        [
            pl.col("seq").cast(pl.String),
            pl.lit(at.strftime(_STAMP)),
            *(pl.col(f).fill_null(_NULL) for f in ENTRY_FIELDS),
            pl.col("os_user"),
        ],
        separator=_SEP,
        ignore_nulls=True,  # as concat_ws: no user, no separator
    )
    sha = hashlib.sha256
    chained = sha(prev.encode())
    parts = []
    for start in range(0, len(batch), _HASH_PART):
        text = batch.slice(start, _HASH_PART).select(line).to_series().to_list()
        part = [sha(t.encode()).hexdigest() for t in text]
        chained.update("".join(part).encode())
        parts.append(pl.Series(part, dtype=pl.String))
    block = chained.hexdigest()
    digests = pl.concat(parts)
    return digests.scatter(len(digests) - 1, block), block


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = first_row(con, _HEAD)
    if row is None:
        raise RuntimeError("ops.audit_head has no row: the audit chain's head was removed")
    return int(row[0]), str(row[1])


def _move_head(con: duckdb.DuckDBPyConnection, was: tuple[int, str], seq: int, block: str) -> None:
    """Moved before the rows go in: a racing appender then meets a clean write conflict on
    this row, never a duplicate ``seq`` (a constraint error DuckDB does not call a conflict)."""
    moved = first_row(con, _MOVE_HEAD, {"seq": seq, "hash": block, "was": was[0], "prev": was[1]})
    if not moved or int(moved[0]) != 1:
        raise duckdb.TransactionException("Conflict on the audit chain head; retry")


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int  # rows verified before the first bad one (all of them when ok)
    first_bad_seq: int | None = None
    problem: str | None = None
    # A good report from ``verify(..., checkpoint=True)`` can start a later check
    # (``since``): the chain value after row ``rows``, and a checksum of rows 1..rows.
    chain: str | None = None
    checksum: int | None = None
    rehashed_from: int = 1  # the first row this check re-hashed (``since``: the next one)


class _Broken(Exception):
    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


@dataclass
class _Block:
    """The block being read: rows sharing one prev_hash, its digest so far."""

    prev: str
    first: int
    running: Any  # hashlib sha256 over prev + every digest read so far
    last: tuple[int, str, str] | None = None  # (seq, hash, digest), not yet judged

    def add(self, seq: int, stored_hash: str, digest: str) -> None:
        if self.last is not None:  # the row before continues the block: hash = its digest
            before, before_hash, before_digest = self.last
            if before_hash != before_digest:
                if before_hash == self.running.hexdigest():  # a valid end: the next row broke off
                    raise _Broken(seq, "prev_hash does not match the row before")
                raise _Broken(before, "row content does not match its hash")
        self.running.update(digest.encode())
        self.last = (seq, stored_hash, digest)

    def close(self, *, at_end: bool) -> str:
        """The block's last row must hold the block digest; returns the chain value."""
        seq, stored_hash, digest = self.last  # type: ignore[misc]
        if stored_hash != self.running.hexdigest():
            if stored_hash == digest:  # a middle row's hash: what followed it is gone
                raise _Broken(
                    seq + 1,
                    f"row {seq + 1} is missing (the block from row {self.first} has no last row)"
                    if at_end
                    else "prev_hash does not match the row before",
                )
            if seq == self.first:
                raise _Broken(seq, "row content does not match its hash")
            # Every other row of the block matched its own digest, so either this row
            # changed, or another one changed together with its stored hash.
            raise _Broken(
                seq,
                f"row content does not match the digest of its block (rows "
                f"{self.first}-{seq}), or a row of the block was changed "
                "together with its hash",
            )
        return stored_hash


_ROW = "SELECT hash FROM ops.audit_log WHERE seq = $seq"
# Every column of every row up to a seq, as one number: DuckDB's 64-bit hash of each row,
# summed (a sum, so a later checkpoint adds the rows after an earlier one). Not a
# cryptographic digest: it tells whether the rows are still those that were re-hashed.
_CHECKSUM = f"""
SELECT count(*), coalesce(sum(hash({", ".join(_COLUMNS)})), 0)::HUGEINT FROM ops.audit_log
WHERE seq > $after AND seq <= $upto
"""
_NEXT_PREV = "SELECT prev_hash FROM ops.audit_log WHERE seq = $seq + 1"
# A decision by a person leaves a row by that person about the proposal; a decided
# proposal without one means the log lost what the proposals table still holds.
_UNLOGGED = """
SELECT p.proposal_id, p.decided_by FROM ops.proposals p
WHERE p.decided_by IS NOT NULL AND p.decided_by <> 'engine'
  AND NOT EXISTS (SELECT 1 FROM ops.audit_log a
                  WHERE a.proposal_id = p.proposal_id AND a.actor = p.decided_by)
ORDER BY p.decided_at LIMIT 5
"""
_UNLOGGED_COUNT = """
SELECT count(*) FROM ops.proposals p
WHERE p.decided_by IS NOT NULL AND p.decided_by <> 'engine'
  AND NOT EXISTS (SELECT 1 FROM ops.audit_log a
                  WHERE a.proposal_id = p.proposal_id AND a.actor = p.decided_by)
"""


def anchor(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The chain's head as a record to keep outside the warehouse (a file, a ticket, an
    email): the log's last row and its chain value. ``verify(anchor=...)`` later proves
    that everything up to that row is still the log that was anchored."""
    seq, chain = _head(con)
    return {"seq": seq, "hash": chain, "anchored_at": dt.datetime.now(dt.UTC).isoformat()}


def _check_anchor(con: duckdb.DuckDBPyConnection, last: int, kept: dict[str, Any]) -> None:
    seq, chain = int(kept["seq"]), str(kept["hash"])
    if seq > last:
        raise _Broken(
            last + 1,
            f"the log ends at row {last}, before the anchored row {seq}: rows were removed",
        )
    if seq == 0:
        return
    row = first_row(con, _ROW, {"seq": seq})
    following = first_row(con, _NEXT_PREV, {"seq": seq})
    # The anchored row must still hold the anchored chain value, and end its block.
    if row is None or row[0] != chain or (following is not None and following[0] != chain):
        raise _Broken(seq, f"row {seq} is not the row that was anchored: the log was rewritten")


def verify(
    con: duckdb.DuckDBPyConnection,
    *,
    chunk: int = 500_000,
    anchor: dict[str, Any] | None = None,
    since: ChainReport | None = None,
    checkpoint: bool = False,
) -> ChainReport:
    """Recompute every digest, block digest and link from the start; name the first bad row.

    The log must also end where its head (ops.audit_head) says: rows cut off the end
    are named as missing, rows added without moving the head as not in the chain. With
    ``anchor`` (from ``anchor()``, kept outside the warehouse), the anchored row must
    still be there with its chain value: a log cut and rebuilt, head and all, is caught.
    Last, every proposal a person decided must have that person's row in the log.

    ``since``, a good report of an earlier check made with ``checkpoint=True``: rows up
    to its last are not re-hashed but compared with it (their count and checksum, and
    the last one's chain value); any difference there and every row is re-hashed as
    without ``since``, which names the first bad row, and if every row hashes right the
    log was rewritten whole and the check fails all the same. Rows after it are
    checked as above, and so are the head, the anchor and the decisions' rows.
    ``checkpoint``: a good report carries what a later ``since`` compares with.
    """
    chain, expected, after, total = GENESIS, 1, 0, 0
    if since is not None:
        if not _still(con, since):
            whole = verify(con, chunk=chunk, anchor=anchor, checkpoint=checkpoint)
            if not whole.ok:
                return whole
            # Every row hashes right, yet they are not the rows checked before: the log
            # was rebuilt, hashes and all (what an anchor catches).
            return ChainReport(
                False,
                0,
                None,
                f"rows 1-{since.rows} are not the rows an earlier check of this log "
                "re-hashed (its checkpoint): the log was rewritten",
            )
        chain, expected, after = str(since.chain), since.rows + 1, since.rows
        total = int(since.checksum or 0)
    block: _Block | None = None
    try:
        while part := con.execute(_SCAN, {"after": after, "n": chunk}).fetchall():
            for seq, prev, stored_hash, digest in part:
                if seq != expected:
                    raise _Broken(expected, f"row {expected} is missing")
                if block is None or prev != block.prev:
                    if block is not None:
                        chain = block.close(at_end=False)
                    if prev != chain:
                        raise _Broken(seq, "prev_hash does not match the row before")
                    block = _Block(prev, seq, hashlib.sha256(prev.encode()))
                block.add(seq, stored_hash, digest)
                expected = seq + 1
            after = int(part[-1][0])
        if block is not None:
            chain = block.close(at_end=True)
        _check_head(con, expected - 1, chain)
        if anchor is not None:
            _check_anchor(con, expected - 1, anchor)
    except _Broken as broken:
        return ChainReport(False, broken.seq - 1, broken.seq, broken.problem)
    missing = int(scalar(con, _UNLOGGED_COUNT) or 0)
    if missing:
        first = ", ".join(f"{p} by {who}" for p, who in con.execute(_UNLOGGED).fetchall())
        return ChainReport(
            False,
            expected - 1,
            None,
            f"{missing:,} decided proposal(s) have no audit row of their decision ({first})",
        )
    if not checkpoint:
        return ChainReport(True, expected - 1)
    start = since.rows if since is not None else 0
    _, added = _checksum(con, start, expected - 1)
    return ChainReport(
        True, expected - 1, chain=chain, checksum=total + added, rehashed_from=start + 1
    )


def _checksum(con: duckdb.DuckDBPyConnection, after: int, upto: int) -> tuple[int, int]:
    row = first_row(con, _CHECKSUM, {"after": after, "upto": upto})
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _still(con: duckdb.DuckDBPyConnection, since: ChainReport) -> bool:
    """Rows 1..since.rows are as they were when ``since`` re-hashed them (see verify)."""
    if not since.ok or since.chain is None or since.checksum is None:
        raise ValueError("since must be a good report of verify(..., checkpoint=True)")
    if since.rows == 0:
        return True
    row = first_row(con, _ROW, {"seq": since.rows})
    if row is None or row[0] != since.chain:
        return False
    return _checksum(con, 0, since.rows) == (since.rows, since.checksum)


def _check_head(con: duckdb.DuckDBPyConnection, last: int, chain: str) -> None:
    seq, stored = _head(con)
    if seq > last:
        raise _Broken(
            last + 1, f"row {last + 1} is missing (the chain head says the log ends at row {seq})"
        )
    if seq < last:
        raise _Broken(
            seq + 1,
            f"row {seq + 1} is not in the chain (the chain head says the log ends at row {seq})",
        )
    if stored != chain:
        raise _Broken(last, f"the chain head does not match row {last}'s chain value")
