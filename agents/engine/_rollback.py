"""Roll back everything an agent wrote in a time window, newest first, in one transaction.

A field is restored to the value it had before the agent's write only if it still
holds what the agent wrote; if a person or another agent changed it since, the
field is left alone and reported as a conflict. A rollback is itself logged (one
``rollback`` audit row per restored field, all sharing a rollback id) and can be
undone the same way with ``undo=ROLLBACK_ID``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import cast

import duckdb
import polars as pl

from revstack.agents.engine._apply import apply_batch
from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, frame, registered

__all__ = ["RollbackReport", "rollback"]

_POINTERS = """
SELECT seq, CAST(json_extract(detail, '$.undoes_seq') AS BIGINT) AS target
FROM ops.audit_log WHERE action = 'rollback' ORDER BY seq DESC
"""
_BY_AGENT = """
SELECT seq, logged_at, actor, object_type, record_id, field, before, after, proposal_id
FROM ops.audit_log
WHERE action = 'apply' AND actor = $agent AND field IS NOT NULL
  AND logged_at >= $since AND logged_at <= $until
  AND seq NOT IN (SELECT seq FROM undone WHERE seq IS NOT NULL)
ORDER BY seq DESC
"""
_BY_PROPOSAL = """
SELECT seq, logged_at, actor, object_type, record_id, field, before, after, proposal_id
FROM ops.audit_log
WHERE action = 'apply' AND proposal_id = $proposal AND field IS NOT NULL
  AND seq NOT IN (SELECT seq FROM undone WHERE seq IS NOT NULL)
ORDER BY seq DESC
"""
_BY_BATCH = """
SELECT seq, logged_at, actor, object_type, record_id, field, before, after, proposal_id
FROM ops.audit_log
WHERE action = 'apply' AND field IS NOT NULL AND proposal_id IN (
      SELECT proposal_id FROM ops.review_batch_members WHERE batch_id = $batch)
  AND json_extract_string(detail, '$.batch') = $batch
  AND seq NOT IN (SELECT seq FROM undone WHERE seq IS NOT NULL)
ORDER BY seq DESC
"""
_BY_ROLLBACK = """
SELECT seq, logged_at, actor, object_type, record_id, field, before, after, proposal_id
FROM ops.audit_log
WHERE action = 'rollback' AND run_id = $rollback_id
  AND seq NOT IN (SELECT seq FROM undone WHERE seq IS NOT NULL)
ORDER BY seq DESC
"""
_MARK = """
UPDATE ops.proposals SET status = $status
WHERE proposal_id IN (SELECT proposal_id FROM marked)
"""


@dataclass
class RollbackReport:
    rollback_id: str
    dry_run: bool
    restored: pl.DataFrame  # object_type, record_id, field, from (current), to (restored)
    conflicts: pl.DataFrame  # object_type, record_id, field, agent_wrote, now_holds
    considered: int = 0
    notes: list[str] = field(default_factory=list)


def rollback(
    wh: Warehouse,
    *,
    by: str,
    agent: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    undo: str | None = None,
    proposal: str | None = None,
    batch: str | None = None,
    dry_run: bool = False,
) -> RollbackReport:
    """Restore the previous value of every field ``agent`` wrote in [since, until].

    With ``undo``, re-apply what the rollback ``undo`` restored; with ``proposal``, undo
    the write of that one proposal (an unmerge is this for a merge); with ``batch``, undo
    every write that a batch decision made, as one unit. ``dry_run`` computes exactly the
    same changes inside a transaction and rolls it back.
    """
    if sum(x is not None for x in (agent, undo, proposal, batch)) != 1:
        raise EngineError(
            "name either an agent and a window (--agent, --since), a proposal (--proposal), "
            "a batch decision (--batch) or a rollback to undo (--undo)"
        )
    if agent is not None and since is None:
        raise EngineError("a rollback by agent needs --since")
    rollback_id = "rb-" + uuid.uuid4().hex[:12]

    def work(con: duckdb.DuckDBPyConnection) -> RollbackReport:
        require_role(con, by, "admin")
        with registered(con, "undone", _undone(con)):
            if agent is not None:
                params = {"agent": agent, "since": since, "until": until or dt.datetime.max}
                writes = frame(con, _BY_AGENT, params)
            elif proposal is not None:
                writes = frame(con, _BY_PROPOSAL, {"proposal": proposal})
                if writes.is_empty():
                    raise EngineError(
                        f"proposal {proposal} wrote nothing that is not already undone"
                    )
            elif batch is not None:
                writes = frame(con, _BY_BATCH, {"batch": batch})
                if writes.is_empty():
                    raise EngineError(f"batch {batch} wrote nothing that is not already undone")
            else:
                writes = frame(con, _BY_ROLLBACK, {"rollback_id": undo})
        return _restore(con, writes, rollback_id, by, dry_run, "applied" if undo else "rolled_back")

    return in_transaction(wh, work, commit=not dry_run)


def _undone(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Seqs of writes currently undone: pointed at by a rollback row that is not undone.

    Rollback rows point at older rows, so walking newest first settles each row's
    state before anything it points at.
    """
    undone: set[int] = set()
    for seq, target in frame(con, _POINTERS).iter_rows():
        if seq not in undone:
            undone.add(int(target))
    return pl.DataFrame({"seq": sorted(undone)}, schema={"seq": pl.Int64})


def _restore(
    con: duckdb.DuckDBPyConnection,
    writes: pl.DataFrame,
    rollback_id: str,
    by: str,
    dry_run: bool,
    new_status: str,
) -> RollbackReport:
    at = now_utc()
    # Waves: the newest write of each field first, then the next newest, so a field the
    # agent wrote twice goes back step by step to its value before the first write.
    writes = writes.with_columns(
        wave=pl.col("seq")
        .rank("ordinal", descending=True)
        .over("object_type", "record_id", "field")
    )
    restored, conflicts, entries = [], [], []
    for wave in range(1, int(cast(int | None, writes["wave"].max()) or 0) + 1):
        part = writes.filter(pl.col("wave") == wave)
        result = apply_batch(
            con,
            part.select(
                proposal_id=pl.col("seq").cast(pl.String),
                object_type="object_type",
                record_id="record_id",
                field="field",
                old_value="after",
                new_value="before",
            ),
            now=at,
        ).with_columns(seq=pl.col("proposal_id").cast(pl.Int64))
        joined = part.join(result, on="seq")
        ok = joined.filter(pl.col("applied"))
        bad = joined.filter(~pl.col("applied"))
        restored.append(
            ok.select(
                "object_type",
                "record_id",
                "field",
                pl.col("after").alias("from"),
                pl.col("before").alias("to"),
                "seq",
            )
        )
        conflicts.append(
            bad.select(
                "object_type",
                "record_id",
                "field",
                pl.col("after").alias("agent_wrote"),
                pl.col("before_right").alias("now_holds"),
                "seq",
            )
        )
        for r in ok.iter_rows(named=True):
            entries.append(
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="rollback",
                    object_type=r["object_type"],
                    record_id=r["record_id"],
                    field=r["field"],
                    before=r["after"],
                    after=r["before"],
                    proposal_id=r["proposal_id"],
                    run_id=rollback_id,
                    detail=to_json({"undoes_seq": r["seq"], "undoes_actor": r["actor"]}),
                )
            )
    restored_df = (
        pl.concat(restored)
        if restored
        else _empty(["object_type", "record_id", "field", "from", "to", "seq"])
    )
    conflicts_df = (
        pl.concat(conflicts)
        if conflicts
        else _empty(["object_type", "record_id", "field", "agent_wrote", "now_holds", "seq"])
    )
    if not conflicts_df.is_empty():
        entries.append(
            AuditEntry(
                actor=by,
                actor_kind="person",
                action="rollback_conflict",
                run_id=rollback_id,
                detail=to_json({"conflicts": conflicts_df.drop("seq").to_dicts()}),
            )
        )
    append(con, entries, at=at)
    proposal_ids = (
        writes.join(restored_df.select("seq"), on="seq").select("proposal_id").drop_nulls()
    )
    if not proposal_ids.is_empty():
        with registered(con, "marked", proposal_ids):
            con.execute(_MARK, {"status": new_status})
    return RollbackReport(
        rollback_id, dry_run, restored_df.drop("seq"), conflicts_df.drop("seq"), len(writes)
    )


def _empty(cols: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={c: (pl.Int64 if c == "seq" else pl.String) for c in cols})
