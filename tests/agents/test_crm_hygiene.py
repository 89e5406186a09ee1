"""The hygiene agent's enrichment slice, on a generated company, measured against truth."""

from __future__ import annotations

import polars as pl
import pytest

from agents.engine._decide import decide
from agents.engine._people import add_person
from agents.engine._run import run_agents
from agents.registry import specs
from data.generator import generate
from data.warehouse import Warehouse, frame, release_all


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("hygiene") / "small.duckdb")
    generate(wh, scale="small", seed=5)
    add_person(wh, "ana", "admin", by="ana")
    run_agents(wh, specs(), only="crm_hygiene")
    release_all()
    return wh


def _proposals(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            """
            SELECT p.*, t.industry AS t_industry, t.employees AS t_employees, t.annual_revenue AS t_revenue,
                   t.country AS t_country
            FROM ops.proposals p LEFT JOIN truth.entities e ON e.object_type = 'accounts' AND e.record_id = p.record_id
            LEFT JOIN truth.firmographics t ON t.account_id = e.true_entity_id
            WHERE p.agent = 'crm_hygiene'
        """,
        )


def test_only_empty_fields_are_enriched_and_contradictions_wait_for_a_person(
    ran: Warehouse,
) -> None:
    p = _proposals(ran)
    assert len(p) > 100
    assert (p.filter(pl.col("action_type") == "enrich_empty_field")["old_value"] == "null").all()
    corrections = p.filter(pl.col("action_type") == "correct_field")
    assert (corrections["tier"] == 2).all() and (corrections["status"] == "pending").all()
    assert (
        corrections["evidence"].str.contains('"crm":').all()
        and corrections["evidence"].str.contains('"provider_value":').all()
    )


def test_applied_enrichment_is_right_against_truth(ran: Warehouse) -> None:
    p = _proposals(ran).filter(pl.col("action_type") == "enrich_empty_field")
    industry = p.filter(pl.col("field") == "industry")
    right = (industry["new_value"].str.strip_chars('"') == industry["t_industry"]).mean()
    assert right >= 0.8  # the provider is wrong on about 10% of covered fields
    applied = p.filter(pl.col("status") == "applied")
    assert not applied.is_empty()
    with ran.connect() as con:
        crm = dict(con.execute("SELECT account_id, country FROM crm.accounts").fetchall())
    assert all(
        crm[r["record_id"]] == r["new_value"].strip('"')
        for r in applied.filter(pl.col("field") == "country").iter_rows(named=True)
    )


def test_approving_a_correction_writes_the_provider_value(ran: Warehouse) -> None:
    p = _proposals(ran).filter(
        (pl.col("action_type") == "correct_field") & (pl.col("field") == "annual_revenue")
    )
    # a CRM value with cents: the proposal must carry it exactly or the apply turns stale
    fractional = p.filter(pl.col("old_value").cast(pl.Float64) % 1 != 0)
    assert not fractional.is_empty()
    pid, record, new = fractional.select("proposal_id", "record_id", "new_value").row(0)
    decision = decide(ran, pid, approve=True, by="ana")
    assert decision.outcome == "approved"
    with ran.connect() as con:
        value = con.execute(
            "SELECT annual_revenue FROM crm.accounts WHERE account_id = $a", {"a": record}
        ).fetchall()[0][0]
    assert value == pytest.approx(float(new))
