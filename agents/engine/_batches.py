"""Review at scale: the queue in batches, a random sample of each reviewed card by card,
and the rest decided in one act that carries the sample's evidence.

``open_batches`` groups the pending tier-2 proposals that no open batch holds by agent,
action, object, field and confidence band, freezes each group as a batch and draws a
seeded random order over it; the first ``sample_size`` members are the sample. People
decide sample cards with ``decide`` like any other. ``batch_status`` reads each batch's
evidence (``_sampling``); ``decide_batch`` lets an admin approve the rest once the whole
sample is decided and rules out the batch's error bar, or reject the rest with a reason,
in one transaction whose audit rows all name the batch (``rollback(batch=...)`` undoes
them together).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine._apply import apply_batch
from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._sampling import Evidence, evidence, look_confidence, sample_size
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row, frame, registered, scalar

__all__ = [
    "BANDS",
    "BatchDecision",
    "batch_evidence",
    "batch_status",
    "decide_batch",
    "extend_sample",
    "open_batches",
    "sample_cards",
]

# Confidence bands: proposals an agent is equally sure of are reviewed as one kind.
BANDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)

_UNBATCHED = """
SELECT proposal_id, agent, action_type, object_type, field, confidence FROM ops.unbatched
WHERE $agent IS NULL OR agent = $agent
ORDER BY proposal_id
"""
_NEXT_BATCH = "SELECT nextval('ops.review_batch_seq')"
_INSERT_BATCHES = "INSERT INTO ops.review_batches BY NAME SELECT * FROM new_batches"
_INSERT_MEMBERS = "INSERT INTO ops.review_batch_members BY NAME SELECT * FROM new_members"
_BATCH = "SELECT * FROM ops.review_batches WHERE batch_id = $id"
# Each member with its proposal's state; a member is in the sample while its draw_order
# is within the batch's sample_size.
_MEMBERS = """
SELECT m.batch_id, m.proposal_id, m.draw_order, m.draw_order <= b.sample_size AS in_sample,
       p.status, p.decided_by, p.run_id, p.agent, p.action_type, p.object_type, p.record_id,
       p.field, p.old_value, p.new_value, p.confidence, p.reason, p.tier, p.tier_reason,
       p.evidence
FROM ops.review_batch_members m
JOIN ops.review_batches b USING (batch_id)
JOIN ops.proposals p USING (proposal_id)
WHERE ($id IS NULL OR m.batch_id = $id) AND ($status IS NULL OR b.status = $status)
ORDER BY m.batch_id, m.draw_order
"""
_SET_PROPOSALS = """
UPDATE ops.proposals AS p
SET status = d.status, decided_at = $at, decided_by = $by, decision_note = $note,
    final_value = d.final_value
FROM batch_decided d
WHERE p.proposal_id = d.proposal_id AND p.status = 'pending'
"""
_COUNT_SET = """
SELECT count(*) FROM ops.proposals
WHERE proposal_id IN (SELECT proposal_id FROM batch_decided) AND decided_at = $at AND decided_by = $by
"""
_RELEASE = """
UPDATE ops.field_leases AS l SET released_at = $at
FROM batch_decided d
WHERE l.object_type = d.object_type AND l.record_id = d.record_id AND l.field = d.field
  AND l.proposal_id = d.proposal_id AND l.released_at IS NULL
"""
_SET_BATCH = """
UPDATE ops.review_batches
SET status = $status, decided_at = $at, decided_by = $by, decision_note = $note, evidence = $evidence
WHERE batch_id = $id AND status = 'open'
"""
# A larger sample is another look at the batch, tested at that look's stricter level.
_SET_SAMPLE = """
UPDATE ops.review_batches SET sample_size = $n, looks = looks + 1
WHERE batch_id = $id AND status = 'open'
"""

# What a sample card's decision says about the agent: an approval unchanged is right,
# an edit or a rejection is wrong, a stale card (the record changed first) says nothing.
_RIGHT, _WRONG, _STALE = ("approved",), ("edited", "rejected"), ("stale",)


def _band(confidence: pl.Expr) -> pl.Expr:
    """'0.90-0.95' for a confidence in [0.90, 0.95); the last band holds 1.0 too."""
    labels = {
        i: f"{lo:.2f}-{hi:.2f}" for i, (lo, hi) in enumerate(zip(BANDS, BANDS[1:], strict=False))
    }
    index = pl.sum_horizontal([(confidence >= edge).cast(pl.Int32) for edge in BANDS[1:-1]])
    return index.replace_strict(labels, return_dtype=pl.String)


def open_batches(
    wh: Warehouse,
    *,
    by: str,
    bar: float = 0.05,
    confidence: float = 0.95,
    seed: int = 0,
    agent: str | None = None,
) -> pl.DataFrame:
    """Batch every pending tier-2 proposal that no open batch holds; the new batches.

    ``bar`` is the error rate a batch's sample must rule out at ``confidence`` before
    its rest can be approved in one act, over all the looks its sample gets; it sets the
    sample size at the first look's level (72 of a large batch at 5%). The sample is drawn with ``seed``: the same seed and queue draw the same.
    """
    if not (0 < bar < 1 and 0 < confidence < 1):
        raise EngineError("--bar and --confidence are shares between 0 and 1 (0.05, 0.95)")

    def work(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        require_role(con, by, "reviewer")
        queue = frame(con, _UNBATCHED, {"agent": agent})
        if queue.is_empty():
            return pl.DataFrame()
        queue = queue.with_columns(band=_band(pl.col("confidence")))
        kind = ["agent", "action_type", "object_type", "field", "band"]
        at = now_utc()
        batches, members, entries = [], [], []
        for key, group in queue.group_by(kind, maintain_order=True):
            batch_id = f"batch-{scalar(con, _NEXT_BATCH)}"
            ids = group["proposal_id"].to_list()
            order = random.Random(f"{seed}:{batch_id}").sample(range(1, len(ids) + 1), len(ids))
            n = sample_size(len(ids), bar, look_confidence(confidence, 1))
            batches.append(
                {
                    **dict(zip(kind, key, strict=True)),
                    "batch_id": batch_id,
                    "size": len(ids),
                    "sample_size": n,
                    "looks": 1,
                    "bar": bar,
                    "confidence": confidence,
                    "seed": seed,
                    "opened_at": at,
                    "opened_by": by,
                    "status": "open",
                }
            )
            members.append(
                pl.DataFrame({"batch_id": batch_id, "proposal_id": ids, "draw_order": order})
            )
            entries.append(
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="batch_open",
                    run_id=batch_id,
                    detail=to_json(
                        {
                            "batch": batch_id,
                            "size": len(ids),
                            "sample_size": n,
                            "bar": bar,
                            "confidence": confidence,
                            "seed": seed,
                            **dict(zip(kind, key, strict=True)),
                        }
                    ),
                )
            )
        new = pl.DataFrame(batches)
        with (
            registered(con, "new_batches", new),
            registered(con, "new_members", pl.concat(members)),
        ):
            con.execute(_INSERT_BATCHES)
            con.execute(_INSERT_MEMBERS)
        append(con, entries, at=at)
        return new.select("batch_id", *kind, "size", "sample_size")

    return in_transaction(wh, work)


def _evidence_of(batch: dict[str, Any], members: pl.DataFrame) -> Evidence:
    sample = members.filter(pl.col("in_sample"))
    count = {s: int(n) for s, n in sample.group_by("status").len().iter_rows()}
    return evidence(
        batch_size=int(batch["size"]),
        sample_size=int(batch["sample_size"]),
        right=sum(count.get(s, 0) for s in _RIGHT),
        wrong=sum(count.get(s, 0) for s in _WRONG),
        stale=sum(count.get(s, 0) for s in _STALE),
        bar=float(batch["bar"]),
        confidence=float(batch["confidence"]),
        looks=int(batch["looks"]),
    )


def batch_evidence(con: duckdb.DuckDBPyConnection, batch_id: str) -> Evidence:
    """What a batch's sample says now."""
    batch = frame(con, _BATCH, {"id": batch_id})
    if batch.is_empty():
        raise EngineError(f"no batch {batch_id!r}")
    return _evidence_of(batch.row(0, named=True), _members(con, batch_id))


def _members(
    con: duckdb.DuckDBPyConnection, batch_id: str | None, status: str | None = None
) -> pl.DataFrame:
    return frame(con, _MEMBERS, {"id": batch_id, "status": status})


def batch_status(con: duckdb.DuckDBPyConnection, *, status: str | None = "open") -> pl.DataFrame:
    """One row per batch (``status`` None = all): its kind, size, sample, what the sample
    says (right, wrong, the error bound and the reviews still needed to reach the bar),
    how many members still wait, and the evidence as a sentence."""
    batches = frame(
        con,
        "SELECT * FROM ops.review_batches WHERE $status IS NULL OR status = $status "
        "ORDER BY CAST(split_part(batch_id, '-', 2) AS INTEGER)",
        {"status": status},
    )
    if batches.is_empty():
        return pl.DataFrame()
    members = _members(con, None, status)
    by_batch = dict(members.group_by("batch_id"))
    rows = []
    for b in batches.iter_rows(named=True):
        m = by_batch.get((b["batch_id"],), members.clear())
        ev = _evidence_of(b, m) if b["status"] == "open" else None
        stored = json.loads(b["evidence"]) if b["evidence"] else {}
        interval = ev.right_share_interval if ev else stored.get("right_share_interval")
        rows.append(
            {
                "batch_id": b["batch_id"],
                "agent": b["agent"],
                "action_type": b["action_type"],
                "object_type": b["object_type"],
                "field": b["field"],
                "band": b["band"],
                "status": b["status"],
                "size": b["size"],
                "sample_size": b["sample_size"],
                "looks": b["looks"],
                "sample_decided": ev.decided if ev else stored.get("decided"),
                "right": ev.right if ev else stored.get("right"),
                "wrong": ev.wrong if ev else stored.get("wrong"),
                "error_upper_bound": ev.error_upper_bound
                if ev
                else stored.get("error_upper_bound"),
                "right_low": interval[0] if interval else None,
                "right_high": interval[1] if interval else None,
                "still_needed": ev.still_needed if ev else None,
                "meets_bar": ev.meets_bar if ev else stored.get("meets_bar"),
                "fails_bar": ev.fails_bar if ev else stored.get("fails_bar"),
                "waiting": int((m["status"] == "pending").sum()),
                "bar": b["bar"],
                "evidence": ev.sentence() if ev else b["decision_note"],
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def sample_cards(
    con: duckdb.DuckDBPyConnection, batch_id: str, *, waiting_only: bool = True
) -> pl.DataFrame:
    """The batch's sample, in draw order (only the cards still waiting, by default)."""
    cards = _members(con, batch_id).filter(pl.col("in_sample"))
    return cards.filter(pl.col("status") == "pending") if waiting_only else cards


def extend_sample(wh: Warehouse, batch_id: str, *, by: str, more: int) -> int:
    """Take the next ``more`` members in the batch's draw order into its sample (the
    sample stays a simple random sample) for another look at it; returns the new sample
    size. A sample that already holds the whole batch is left as it is: nothing new
    would be seen, so it is no new look."""
    if more < 1:
        raise EngineError("extend the sample by at least one proposal")

    def work(con: duckdb.DuckDBPyConnection) -> int:
        require_role(con, by, "reviewer")
        batch = frame(con, _BATCH, {"id": batch_id})
        if batch.is_empty() or batch["status"][0] != "open":
            raise EngineError(f"{batch_id} is not an open batch")
        n = min(int(batch["size"][0]), int(batch["sample_size"][0]) + more)
        if n == int(batch["sample_size"][0]):
            return n
        con.execute(_SET_SAMPLE, {"n": n, "id": batch_id})
        looks = int(batch["looks"][0]) + 1
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="batch_sample",
                    run_id=batch_id,
                    detail=to_json({"batch": batch_id, "sample_size": n, "looks": looks}),
                )
            ],
        )
        return n

    return in_transaction(wh, work)


@dataclass(frozen=True)
class BatchDecision:
    batch_id: str
    approve: bool
    evidence: Evidence
    counts: dict[str, int]  # outcome -> proposals decided in this act

    @property
    def message(self) -> str:
        done = ", ".join(f"{n:,} {k}" for k, n in sorted(self.counts.items())) or "nothing left"
        verb = "approved" if self.approve else "rejected"
        return f"{self.batch_id} {verb}: {done}. Evidence: {self.evidence.sentence()}"


def decide_batch(
    wh: Warehouse, batch_id: str, *, approve: bool, by: str, note: str | None = None
) -> BatchDecision:
    """Approve or reject every member of an open batch that still waits, in one act.

    An approval needs the whole sample decided and its evidence below the batch's bar
    (an admin cannot wave a batch through on a partial or failing sample); a rejection
    needs a note. Members someone decided card by card are left as they were.
    """
    if not approve and not (note and note.strip()):
        raise EngineError("rejecting a batch needs a note saying why (--note)")

    def work(con: duckdb.DuckDBPyConnection) -> BatchDecision:
        require_role(con, by, "admin")
        found = frame(con, _BATCH, {"id": batch_id})
        if found.is_empty():
            raise EngineError(f"no batch {batch_id!r}")
        batch = found.row(0, named=True)
        if batch["status"] != "open":
            raise EngineError(f"{batch_id} is already {batch['status']} (by {batch['decided_by']})")
        members = _members(con, batch_id)
        ev = _evidence_of(batch, members)
        if approve and not ev.meets_bar:
            raise EngineError(f"{batch_id} cannot be approved yet: {ev.sentence()}")
        rest = members.filter(~pl.col("in_sample") & (pl.col("status") == "pending"))
        at = now_utc()
        counts = _decide_rest(
            con, rest, approve=approve, by=by, note=note, batch_id=batch_id, at=at
        )
        record = {**ev.to_dict(), "decided_now": counts, "note": note}
        con.execute(
            _SET_BATCH,
            {
                "status": "approved" if approve else "rejected",
                "at": at,
                "by": by,
                "note": note or ev.sentence(),
                "evidence": to_json(record),
                "id": batch_id,
            },
        )
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="batch_approve" if approve else "batch_reject",
                    run_id=batch_id,
                    detail=to_json({"batch": batch_id, **record}),
                )
            ],
            at=at,
        )
        return BatchDecision(batch_id, approve, ev, counts)

    return in_transaction(wh, work)


def _decide_rest(
    con: duckdb.DuckDBPyConnection,
    rest: pl.DataFrame,
    *,
    approve: bool,
    by: str,
    note: str | None,
    batch_id: str,
    at: Any,
) -> dict[str, int]:
    """Decide ``rest`` as ``decide`` would one by one: the same statuses, leases and audit
    rows (each naming the batch), written as frames."""
    if rest.is_empty():
        return {}
    writes = rest.filter(pl.col("field").is_not_null())
    applied = pl.DataFrame(
        schema={
            "proposal_id": pl.String,
            "applied": pl.Boolean,
            "before": pl.String,
            "after": pl.String,
        }
    )
    if approve and not writes.is_empty():
        applied = apply_batch(
            con,
            writes.select(
                "proposal_id", "object_type", "record_id", "field", "old_value", "new_value"
            ),
            now=at,
        )
    status = (
        pl.lit("rejected")
        if not approve
        else pl.when(pl.col("field").is_null() | pl.col("applied"))
        .then(pl.lit("approved"))
        .otherwise(pl.lit("stale"))
    )
    d = rest.join(applied, on="proposal_id", how="left").with_columns(status=status)
    d = d.with_columns(
        final_value=pl.when(pl.col("status") == "approved")
        .then(pl.col("new_value"))
        .otherwise(None)
    )
    decision_note = note or f"batch {batch_id}"
    with registered(
        con,
        "batch_decided",
        d.select("proposal_id", "status", "final_value", "object_type", "record_id", "field"),
    ):
        con.execute(_SET_PROPOSALS, {"at": at, "by": by, "note": decision_note})
        done = first_row(con, _COUNT_SET, {"at": at, "by": by})
        if done is None or int(done[0]) != len(d):
            raise duckdb.TransactionException("Conflict on batch decision; retry")
        con.execute(_RELEASE, {"at": at})
    _audit_rest(con, d, by=by, approve=approve, batch_id=batch_id, note=note, at=at)
    return {s: int(n) for s, n in d.group_by("status").len().iter_rows()}


def _audit_rest(
    con: duckdb.DuckDBPyConnection,
    d: pl.DataFrame,
    *,
    by: str,
    approve: bool,
    batch_id: str,
    note: str | None,
    at: Any,
) -> None:
    """A person's row per proposal, then the agent's write (or the engine's stale) under it."""
    n = pl.int_range(0, pl.len())
    person = d.select(
        order=n * 2,
        actor=pl.lit(by),
        actor_kind=pl.lit("person"),
        action=pl.lit("approve" if approve else "reject"),
        object_type="object_type",
        record_id="record_id",
        field="field",
        before="old_value",
        after="new_value",
        proposal_id="proposal_id",
        run_id="run_id",
        detail=pl.lit(to_json({"batch": batch_id, "note": note})),
    )
    written = d.with_columns(order=n * 2 + 1).filter(pl.col("field").is_not_null())
    if not approve:
        written = written.clear()
    agent = written.select(
        "order",
        actor=pl.when(pl.col("applied")).then(pl.col("agent")).otherwise(pl.lit("engine")),
        actor_kind=pl.when(pl.col("applied")).then(pl.lit("agent")).otherwise(pl.lit("system")),
        action=pl.when(pl.col("applied")).then(pl.lit("apply")).otherwise(pl.lit("stale")),
        object_type="object_type",
        record_id="record_id",
        field="field",
        before=pl.when(pl.col("applied")).then(pl.col("before")).otherwise(pl.col("old_value")),
        after=pl.when(pl.col("applied")).then(pl.col("after")).otherwise(pl.col("before")),
        proposal_id="proposal_id",
        run_id="run_id",
        detail=pl.when(pl.col("applied"))
        .then(pl.lit(to_json({"approved_by": by, "batch": batch_id})))
        .otherwise(
            pl.lit(to_json({"reason": "the record changed since the proposal", "batch": batch_id}))
        ),
    )
    rows = pl.concat([person, agent], how="vertical_relaxed").sort("order").drop("order")
    append(con, rows, at=at)
