"""Migration 021: a file with merge_records proposals, a policy and batches from before
merges were split by kind opens with them renamed, and the next run knows them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from revstack.agents.engine import Context
from revstack.data.warehouse import Warehouse, frame, release_all

_OLD_KEY = """md5(concat_ws(chr(31), agent, action_type, object_type, record_id,
    coalesce(field, chr(0)), coalesce(old_value::VARCHAR, chr(0)),
    coalesce(new_value::VARCHAR, chr(0))))"""


def _proposal(con: duckdb.DuckDBPyConnection, pid: str, record: str, status: str) -> None:
    con.execute(
        """INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type,
               record_id, field, old_value, new_value, confidence, reason, tier, tier_reason,
               status, shadow, idempotency_key, created_at)
           VALUES ($id, 'run-1', 'crm_hygiene', 'merge_records', 'entity_map', $record,
               'entity_id', '"x"', '"y"', 0.97, 'same name', 2, 'contract', $status, false,
               '', now())""",
        {"id": pid, "record": record, "status": status},
    )


def test_stored_merges_take_their_kind_and_the_next_run_knows_them(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    Warehouse(path)._migrate(con, upto=20)  # the file revstack left before 021
    _proposal(con, "m1", "accounts:A1", "approved")
    _proposal(con, "m2", "contacts:C1", "pending")
    _proposal(con, "m3", "contacts:C2", "approved")
    con.execute(f"UPDATE ops.proposals SET idempotency_key = {_OLD_KEY}")
    con.execute(
        "INSERT INTO ops.policy VALUES ('pol-1', 'crm_hygiene', 'merge_records', 1, 0.95, "
        "'ana', now(), 'graduated on 3 batches', true)"
    )
    for batch, members in (("batch-1", ["m2", "m3"]), ("batch-2", ["m1", "m3"])):
        con.execute(
            "INSERT INTO ops.review_batches (batch_id, agent, action_type, object_type, field, "
            "band, size, sample_size, bar, confidence, seed, opened_at, opened_by, status) "
            "VALUES ($b, 'crm_hygiene', 'merge_records', 'entity_map', 'entity_id', "
            "'0.95-1.00', 2, 2, 0.05, 0.95, 0, now(), 'ana', 'open')",
            {"b": batch},
        )
        for i, m in enumerate(members, 1):
            con.execute(
                "INSERT INTO ops.review_batch_members VALUES ($b, $m, $i)",
                {"b": batch, "m": m, "i": i},
            )
    con.close()

    wh = Warehouse(path)
    with wh.connect() as con:
        actions = dict(frame(con, "SELECT proposal_id, action_type FROM ops.proposals").iter_rows())
        policy = frame(
            con, "SELECT action_type, tier, min_confidence, active FROM ops.policy ORDER BY 1"
        )
        batches = dict(
            frame(con, "SELECT batch_id, action_type FROM ops.review_batches").iter_rows()
        )
        stored = frame(con, "SELECT * FROM ops.proposals ORDER BY proposal_id")
    assert actions == {"m1": "merge_accounts", "m2": "merge_contacts", "m3": "merge_contacts"}
    # the graduation people made holds for both kinds; the old row is history
    assert policy.rows() == [
        ("merge_accounts", 1, 0.95, True),
        ("merge_contacts", 1, 0.95, True),
        ("merge_records", 1, 0.95, False),
    ]
    # a batch of one kind takes its name; one that held both keeps its history
    assert batches == {"batch-1": "merge_contacts", "batch-2": "merge_records"}
    # the same merges proposed again by a run are repeats the engine drops
    ctx = Context(wh, agent="crm_hygiene", reads={}, as_of=dt.datetime(2026, 1, 1))
    again = stored.select(
        "action_type", "object_type", "record_id", "field", "old_value", "new_value"
    ).with_columns(pl.col("old_value").cast(pl.String), pl.col("new_value").cast(pl.String))
    assert ctx.unrecorded(again).is_empty()
    assert len(ctx.unrecorded(again.with_columns(new_value=pl.lit('"z"')))) == 3
    release_all()
