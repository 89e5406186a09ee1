"""The realism report (issue #17) and the properties the generator plants so that no single
field or rule gives a real CRM's hard questions away (small company, seed 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revstack.data.generator import REALISM_COLUMNS, real_figures, realism
from revstack.data.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def test_the_report_measures_every_tell_with_a_target(small_company: Warehouse) -> None:
    table = realism(small_company)
    assert table.columns == REALISM_COLUMNS
    assert {"stage path", "phantoms", "working week", "duplicates", "forecast"} <= set(
        table["tell"]
    )
    assert table["figure"].null_count() == 0
    shares = table.filter(~table["measure"].str.contains(r"\(days\)"))
    assert ((shares["figure"] >= 0) & (shares["figure"] <= 1)).all()
    # a row with a band says pass or fail, one without says neither
    banded = table["target"] != ""
    assert (table["ok"].is_null() == ~banded).all()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no public data in ../shared/data")
def test_real_data_gives_its_figures() -> None:
    real = real_figures(SHARED)
    # dedupe_orgs: hand-labelled organisations, where an exact phone match is often wrong
    phone = real["account pairs with the same phone that are different companies"]
    assert 0.10 < phone < 0.25


@pytest.fixture(scope="module")
def table(small_company: Warehouse) -> dict[str, float]:
    t = realism(small_company)
    return dict(zip(t["measure"], t["figure"], strict=True))


def test_people_work_a_working_week(table: dict[str, float]) -> None:
    # activities: weekdays, office hours, no day swallowing the weekend
    assert table["completed activities on a weekend"] < 0.08
    assert table["busiest weekday's share of completed activities"] < 0.26
    assert table["completed activities before 07:00 or from 20:00"] < 0.10
    assert table["stage changes on a weekend"] < 0.08
    # forecast calls at any working hour, some late, some never made
    assert table["forecast submissions at the commonest time of day"] < 0.20
    assert (
        0.02 <= table["rep-periods without a submission (between a rep's first and last)"] <= 0.20
    )


def test_the_stage_path_does_not_give_the_outcome_away(table: dict[str, float]) -> None:
    assert 0.05 <= table["deals created past prospecting"] <= 0.60
    assert 0.02 <= table["deals that moved back a stage"] <= 0.30
    assert 0.03 <= table["win rate of closed deals that never reached negotiation"] <= 0.30
    assert 0.03 <= table["win rate of closed deals never in commit"] <= 0.40
    assert table["win rate of closed deals with 120+ days in one open stage"] >= 0.03
    assert table["wins within 7 days of creation (share of wins)"] > 0
    assert table["close-date changes on open deals that pull the date in"] >= 0.10
    assert table["closed deals whose CRM close date is the true outcome date"] <= 0.95


def test_a_stale_close_date_does_not_mark_a_phantom(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        stale, genuine, phantoms = con.execute(
            """SELECT count(*) FILTER (WHERE stale), count(*) FILTER (WHERE stale AND NOT is_phantom),
                      count(*) FILTER (WHERE is_phantom)
               FROM (SELECT t.is_phantom, coalesce(o.close_date < DATE '2026-09-24', FALSE) AS stale
                     FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id)
                     WHERE NOT o.is_closed)"""
        ).fetchone()
    assert phantoms > 0 and stale > 0
    assert genuine / stale >= 0.5  # the rule 'close date over a week past' is wrong half the time


def test_duplicates_carry_traps(table: dict[str, float], small_company: Warehouse) -> None:
    # subsidiaries on the group's website and switchboard are other companies
    assert table["account pairs sharing a website domain that are different companies"] >= 0.03
    assert table["account pairs with the same phone that are different companies"] >= 0.03
    assert 0.10 <= table["contact records that duplicate another"] <= 0.30
    with small_company.connect() as con:
        linked, own = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE e.true_entity_id <> p.true_entity_id)
               FROM crm.accounts a JOIN truth.entities e ON e.record_id = a.account_id
               JOIN truth.entities p ON p.record_id = a.parent_account_id
               WHERE a.parent_account_id IS NOT NULL"""
        ).fetchone()
    assert linked >= 10 and own == linked  # a subsidiary is its own company, not a duplicate


def test_segments_teams_and_renewals_differ(table: dict[str, float]) -> None:
    assert table["spread of win rates across segments (points)"] >= 0.05
    assert table["spread of median cycle across teams (days)"] >= 15
    assert 0.70 <= table["renewal win rate"] <= 0.95
