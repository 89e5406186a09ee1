"""Truth's verdict on each proposal, checked apart from the SQL that gives it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.verdicts import truth_verdicts


@pytest.mark.slow
def test_verdicts_agree_with_truth_record_by_record(small_run: Path) -> None:
    with Warehouse(small_run).connect() as con:
        verdicts = truth_verdicts(con)
        proposals = frame(
            con,
            "SELECT proposal_id, action_type, record_id, field, new_value ->> '$' AS new "
            "FROM ops.proposals",
        )
        entity = dict(
            frame(
                con, "SELECT object_type || ':' || record_id, true_entity_id FROM truth.entities"
            ).iter_rows()
        )
        firmo = {
            r["account_id"]: r
            for r in frame(con, "SELECT * FROM truth.firmographics").iter_rows(named=True)
        }
    judged = proposals.join(verdicts, on="proposal_id")
    assert set(judged["action_type"]) <= {
        "merge_accounts",
        "merge_contacts",
        "enrich_empty_field",
        "correct_field",
        "move_stage",
        "close_phantom_deal",
        "move_to_at_risk",
    }
    merges = judged.filter(pl.col("action_type").str.starts_with("merge_"))
    assert len(merges) > 0
    for r in merges.iter_rows(named=True):
        kind = r["record_id"].split(":")[0]
        assert r["correct"] == (entity[r["record_id"]] == entity[f"{kind}:{r['new']}"])
    industry = judged.filter(pl.col("field") == "industry")
    assert len(industry) > 0
    for r in industry.iter_rows(named=True):
        assert r["correct"] == (r["new"].lower() == firmo[r["record_id"]]["industry"].lower())
    # A deal moved to at-risk that truth says was lost within 90 days was at risk.
    with Warehouse(small_run).connect() as con:
        lost_soon = set(
            frame(
                con,
                "SELECT p.proposal_id FROM ops.proposals p JOIN truth.deal_outcomes o "
                "ON o.opportunity_id = p.record_id WHERE p.action_type = 'move_to_at_risk' "
                "AND o.outcome = 'lost' AND o.outcome_date <= p.created_at + INTERVAL 90 DAY",
            )["proposal_id"]
        )
    at_risk = judged.filter(pl.col("action_type") == "move_to_at_risk")
    assert len(at_risk) > 0 and lost_soon
    assert at_risk.filter(pl.col("proposal_id").is_in(list(lost_soon)))["correct"].all()
    # flags and briefings get no verdict
    unjudged = proposals.join(verdicts, on="proposal_id", how="anti")
    assert "flag_missing_field" in set(unjudged["action_type"])


def test_no_truth_no_verdicts(wh: Warehouse) -> None:
    with wh.connect() as con:
        con.execute("DROP TABLE IF EXISTS truth.entities")
        assert truth_verdicts(con).is_empty()
