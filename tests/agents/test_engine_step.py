"""The engine step's choices between proposals, and the events a run's own writes make."""

from __future__ import annotations

import hashlib

import polars as pl

from revstack.agents.engine import (
    POLICY_SCHEMA,
    PROPOSAL_INPUT,
    Agent,
    AgentResult,
    AgentSpec,
    Context,
    run_agents,
)
from revstack.data.warehouse import Warehouse, frame

POLICY = pl.DataFrame(
    {
        "action_type": ["fill_industry", "fill_employees"],
        "object_type": ["accounts", "accounts"],
        "field": ["industry", "employees"],
        "tier": [1, 2],
        "min_confidence": [0.5, 0.5],
    },
    schema=POLICY_SCHEMA,
)


def _row(action: str, record: str, field: str, old: str, new: str, conf: float, why: str) -> dict:
    return {
        "action_type": action,
        "object_type": "accounts",
        "record_id": record,
        "field": field,
        "old_value": old,
        "new_value": new,
        "confidence": conf,
        "evidence": "{}",
        "reason": why,
    }


def _key(agent: str, row: dict) -> str:
    """The idempotency key as docs/engine.md defines it."""
    parts = [
        agent,
        row["action_type"],
        row["object_type"],
        row["record_id"],
        row["field"],
        row["old_value"],
        row["new_value"],
    ]
    return hashlib.md5(chr(31).join(parts).encode()).hexdigest()


class Rows(Agent):
    """Returns the rows it was given; ``meanwhile`` runs while the warehouse is closed."""

    name = "rows"
    version = "1.0"

    def __init__(self, rows: list[dict], meanwhile=None) -> None:
        self.rows, self.meanwhile = rows, meanwhile

    def run(self, ctx: Context) -> AgentResult:
        ctx.table("crm.accounts", ["account_id"])
        if self.meanwhile is not None:
            self.meanwhile()
        return AgentResult(pl.DataFrame(self.rows, schema=PROPOSAL_INPUT))


def _spec(name: str, agent: Agent | None) -> AgentSpec:
    return AgentSpec(
        name=name,
        version="1.0",
        contract_version="1",
        owner="ops@x",
        mode="live",
        depends_on=(),
        triggers=("record_created", "record_changed"),
        reads={"crm.accounts": ["account_id"]},
        policy=POLICY,
        factory=None if agent is None else (lambda: agent),
    )


def _stored(wh: Warehouse, agent: str) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            "SELECT record_id, field, new_value, confidence, status, tier_reason, reason, "
            "idempotency_key FROM ops.proposals WHERE agent = $a ORDER BY record_id, confidence",
            {"a": agent},
        )


def test_repeats_collapse_and_the_most_confident_proposal_takes_the_field(
    run_wh: Warehouse,
) -> None:
    tie = [_row("fill_industry", "a4", "industry", "null", f'"{v}"', 0.8, v) for v in ("X", "Y")]
    rows = [
        _row("fill_industry", "a1", "industry", "null", '"Software"', 0.6, "low repeat"),
        _row("fill_industry", "a1", "industry", "null", '"Software"', 0.95, "high repeat"),
        _row("fill_employees", "a2", "employees", "20", "25", 0.7, "weaker"),
        _row("fill_employees", "a2", "employees", "20", "26", 0.9, "stronger"),
        *tie,
    ]
    [result] = run_agents(run_wh, [_spec("rows", Rows(rows))])
    assert result.status == "succeeded"
    p = _stored(run_wh, "rows")
    a1 = p.filter(pl.col("record_id") == "a1")
    assert (len(a1), a1["confidence"][0], a1["reason"][0]) == (1, 0.95, "high repeat")
    assert a1["status"][0] == "applied"
    a2 = dict(
        zip(
            p.filter(pl.col("record_id") == "a2")["new_value"],
            p.filter(pl.col("record_id") == "a2")["status"],
            strict=True,
        )
    )
    assert a2 == {"26": "pending", "25": "superseded"}
    winner = min(tie, key=lambda r: _key("rows", r))  # equal confidence: the smaller key
    a4 = dict(
        zip(
            p.filter(pl.col("record_id") == "a4")["idempotency_key"],
            p.filter(pl.col("record_id") == "a4")["status"],
            strict=True,
        )
    )
    assert a4 == {_key("rows", r): "applied" if r is winner else "superseded" for r in tie}
    assert set(p["idempotency_key"]) == {_key("rows", r) for r in rows}  # keys as documented


def test_own_writes_wake_others_not_the_writer_and_other_changes_wait_for_the_next_look(
    run_wh: Warehouse,
) -> None:
    run_agents(run_wh, [_spec("rows", None), _spec("listener", None)])  # first look: a1..a4 exist

    def someone_else_edits_a3() -> None:  # another process, while the agent computes
        with run_wh.connect() as con:
            con.execute("UPDATE crm.accounts SET name = 'Initech Ltd' WHERE account_id = 'a3'")

    write = [_row("fill_industry", "a1", "industry", "null", '"Software"', 0.95, "fill")]
    [result] = run_agents(run_wh, [_spec("rows", Rows(write, someone_else_edits_a3))], only="rows")
    assert result.counts["applied"] == 1
    pending = """
        SELECT e.kind, e.record_id FROM ops.events e
        WHERE NOT EXISTS (SELECT 1 FROM ops.event_consumption c
                          WHERE c.event_id = e.event_id AND c.agent = $a)
          AND e.kind IN ('record_created', 'record_changed') ORDER BY 2"""
    with run_wh.connect() as con:
        for_writer = con.execute(pending, {"a": "rows"}).fetchall()
        for_listener = con.execute(pending, {"a": "listener"}).fetchall()
    assert ("record_changed", "a1") not in for_writer  # its own echo is consumed
    assert ("record_changed", "a1") in for_listener  # the others hear of it
    assert ("record_changed", "a3") not in for_listener  # not looked at yet ...
    run_agents(run_wh, [_spec("rows", None), _spec("listener", None)])  # ... the next look
    with run_wh.connect() as con:
        changed = con.execute(
            "SELECT record_id, count(*) FROM ops.events WHERE kind = 'record_changed' "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert changed == [("a1", 1), ("a3", 1)]  # each change recorded once, nothing lost
