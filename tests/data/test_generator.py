"""The generated company: deterministic, internally consistent, realistic, and honest about
every defect it injects."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from contracts import load_definitions, stage_violations_sql
from data.errors import InputError
from data.generator import RATES, generate
from data.generator._write import TABLES
from data.warehouse import Warehouse, frame, release_all


@pytest.fixture
def company(small_company: Warehouse) -> Warehouse:
    return small_company


def _q(wh: Warehouse, sql: str, params=None) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, sql, params)


def _digest(wh: Warehouse) -> dict[str, str]:
    out = {}
    with wh.connect() as con:
        for t in TABLES:
            rows = con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            out[t] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_same_seed_same_company_other_seed_another(company: Warehouse, tmp_path: Path) -> None:
    again = Warehouse(tmp_path / "again.duckdb")
    generate(again, scale="small", seed=3)
    other = Warehouse(tmp_path / "other.duckdb")
    generate(other, scale="small", seed=4)
    release_all()
    first = _digest(company)
    assert _digest(again) == first
    assert all(
        _digest(other)[t] != first[t]
        for t in ("crm.accounts", "crm.opportunities", "truth.defects")
    )


def test_every_defect_points_at_a_real_record(company: Warehouse) -> None:
    orphans = _q(
        company,
        """
        SELECT d.* FROM truth.defects d
        WHERE (d.object_type = 'accounts' AND d.record_id NOT IN (SELECT account_id FROM crm.accounts))
           OR (d.object_type = 'contacts' AND d.record_id NOT IN (SELECT contact_id FROM crm.contacts))
           OR (d.object_type = 'opportunities' AND d.record_id NOT IN (SELECT opportunity_id FROM crm.opportunities))
    """,
    )
    assert orphans.is_empty()
    missing = _q(
        company,
        "SELECT count(*) AS n FROM crm.accounts WHERE account_id NOT IN (SELECT record_id FROM truth.entities WHERE object_type = 'accounts')",
    )
    assert missing["n"].item() == 0


def test_defect_counts_match_the_configured_rates(company: Warehouse) -> None:
    counts = dict(
        _q(
            company, "SELECT defect_class, count(DISTINCT record_id) FROM truth.defects GROUP BY 1"
        ).iter_rows()
    )
    n_acc = _q(company, "SELECT count(*) AS n FROM crm.accounts")["n"].item()
    n_con = _q(company, "SELECT count(*) AS n FROM crm.contacts")["n"].item()
    assert counts["duplicate_account"] / n_acc == pytest.approx(RATES.duplicate_accounts, abs=0.02)
    assert counts["duplicate_contact"] / n_con == pytest.approx(RATES.duplicate_contacts, abs=0.02)
    industry_blank = _q(
        company,
        "SELECT count(*) AS n FROM truth.defects WHERE defect_class = 'missing_required_field' AND field = 'industry'",
    )["n"].item()
    assert industry_blank / n_acc >= RATES.missing["accounts"]["industry"] * 0.8
    for cls in (
        "stage_violation",
        "phantom_deal",
        "departed_champion",
        "wrong_firmographics",
        "provider_error",
    ):
        assert counts.get(cls, 0) > 0, cls


def test_missing_fields_in_truth_are_exactly_the_blank_ones(company: Warehouse) -> None:
    truth = _q(
        company,
        "SELECT record_id FROM truth.defects WHERE defect_class = 'missing_required_field' AND field = 'email'",
    )
    blank = _q(
        company,
        "SELECT contact_id AS record_id FROM crm.contacts WHERE email IS NULL OR trim(email) = ''",
    )
    assert sorted(truth["record_id"]) == sorted(blank["record_id"])


def test_crm_agrees_with_truth_about_outcomes(company: Warehouse) -> None:
    bad = _q(
        company,
        """
        SELECT o.opportunity_id FROM crm.opportunities o JOIN truth.deal_outcomes t USING (opportunity_id)
        WHERE (o.is_closed AND o.is_won AND t.outcome <> 'won')
           OR (o.is_closed AND NOT o.is_won AND t.outcome <> 'lost')
           OR (t.is_phantom AND (o.is_closed OR t.outcome <> 'lost'))
    """,
    )
    assert bad.is_empty()


def test_history_ends_in_the_current_state(company: Warehouse) -> None:
    bad = _q(
        company,
        """
        WITH last AS (SELECT * FROM crm.opportunity_history QUALIFY row_number() OVER (PARTITION BY opportunity_id ORDER BY changed_at DESC, history_id DESC) = 1)
        SELECT o.opportunity_id FROM crm.opportunities o JOIN last l USING (opportunity_id)
        WHERE o.stage <> l.stage OR o.amount IS DISTINCT FROM l.amount OR o.close_date IS DISTINCT FROM l.close_date
           OR o.forecast_category IS DISTINCT FROM l.forecast_category
    """,
    )
    assert bad.is_empty()


def test_stage_criteria_hold_except_for_the_planted_violations(company: Warehouse) -> None:
    definitions = load_definitions()
    with company.connect() as con:
        found = frame(con, stage_violations_sql(definitions), {"as_of": "2026-10-01"})
    planted = set(
        _q(company, "SELECT record_id FROM truth.defects WHERE defect_class = 'stage_violation'")[
            "record_id"
        ]
    )
    blanked = set(
        _q(
            company,
            "SELECT record_id FROM truth.defects WHERE defect_class = 'missing_required_field' AND object_type = 'opportunities'",
        )["record_id"]
    )
    flagged = set(found["opportunity_id"])
    assert planted <= flagged  # every planted violation breaks a criterion
    assert flagged - planted <= blanked  # anything else is explained by a blanked field


def test_the_hidden_process_is_realistic_and_not_easy(company: Warehouse) -> None:
    deals = _q(
        company,
        """
        SELECT t.outcome, t.win_probability, o.amount, date_diff('day', o.created_at, t.outcome_date) AS cycle,
               (SELECT count(DISTINCT contact_id) FROM crm.opportunity_contacts c WHERE c.opportunity_id = o.opportunity_id) AS buyers
        FROM truth.deal_outcomes t JOIN crm.opportunities o USING (opportunity_id) WHERE t.outcome <> 'open'
    """,
    )
    win_rate = (deals["outcome"] == "won").mean()
    assert 0.15 <= win_rate <= 0.35
    assert 30 <= deals["cycle"].median() <= 120
    big = deals.filter(pl.col("amount") > deals["amount"].quantile(0.8))["cycle"].median()
    small = deals.filter(pl.col("amount") < deals["amount"].quantile(0.2))["cycle"].median()
    assert big > small
    multi = deals.filter(pl.col("buyers") >= 3)
    single = deals.filter(pl.col("buyers") <= 1)
    assert (multi["outcome"] == "won").mean() > (single["outcome"] == "won").mean() + 0.05
    assert (single["outcome"] == "won").mean() > 0.05  # thin deals still win sometimes


def test_rep_commits_are_informative_but_rarely_exact(company: Warehouse) -> None:
    rp = _q(
        company,
        """
        WITH last AS (SELECT * FROM crm.forecast_submissions WHERE period_type = 'quarter'
                      QUALIFY row_number() OVER (PARTITION BY user_id, period_start ORDER BY submitted_at DESC) = 1)
        SELECT l.commit_amount::DOUBLE AS commit, coalesce(r.won_amount, 0)::DOUBLE AS actual
        FROM last l LEFT JOIN truth.revenue r ON r.owner_id = l.user_id AND r.period_start = l.period_start AND r.period_type = 'quarter'
        WHERE l.period_start < DATE '2026-07-01' AND coalesce(r.won_amount, 0) > 0
    """,
    )
    within5 = ((rp["commit"] - rp["actual"]).abs() / rp["actual"] <= 0.05).mean()
    assert 0.08 <= within5 <= 0.40  # the design: about one rep-period in five
    assert rp.select(pl.corr("commit", "actual")).item() > 0.5


def test_future_meetings_exist_for_deal_prep(company: Warehouse) -> None:
    n = _q(
        company,
        "SELECT count(*) AS n FROM crm.activities WHERE status = 'scheduled' AND occurred_at > TIMESTAMP '2026-10-01'",
    )["n"].item()
    assert n > 10


def test_unknown_scale_and_existing_data_are_refused(company: Warehouse) -> None:
    with pytest.raises(InputError, match="unknown scale 'huge'"):
        generate(company, scale="huge")
    before = _digest(company)
    with pytest.raises(InputError, match="--replace"):
        generate(company, scale="small", seed=9)
    assert _digest(company) == before
