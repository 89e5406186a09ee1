"""The forecast's baselines and frames on a four-deal CRM worked out by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest

from revstack.agents.features import TABLES
from revstack.agents.forecast import Inputs, prepare
from revstack.agents.forecast._backtest import _baseline_segments
from revstack.contracts import load_definitions

T = dt.datetime
FEB = dt.date(2025, 2, 1)


def _rows(rows: list[tuple], prefix: str) -> pl.DataFrame:
    """History rows (deal, changed_at, stage, amount, close_date, category, owner) with
    ids ``prefix`` + row number and no stored probability."""
    df = pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "opportunity_id",
            "changed_at",
            "stage",
            "amount",
            "close_date",
            "forecast_category",
            "changed_by",
        ],
    )
    return df.with_columns(
        history_id=pl.format(prefix + "{}", pl.int_range(pl.len())),
        probability=pl.lit(None, pl.Float64),
    )


def _history() -> pl.DataFrame:
    rows = [  # deal, changed_at, stage, amount, close_date, category, owner
        ("D1", T(2025, 1, 5), "proposal", 1000.0, dt.date(2025, 2, 20), "best_case", "u1"),
        ("D2", T(2025, 1, 10), "negotiation", 2000.0, dt.date(2025, 2, 10), "commit", "u1"),
        ("D2", T(2025, 2, 5), "closed_won", 2000.0, dt.date(2025, 2, 5), "closed", "u1"),
        ("D3", T(2025, 1, 3), "discovery", 500.0, dt.date(2025, 3, 15), "pipeline", "u2"),
        ("D4", T(2024, 12, 1), "negotiation", 800.0, dt.date(2025, 1, 20), "commit", "u2"),
        ("D4", T(2025, 1, 20), "closed_won", 800.0, dt.date(2025, 1, 20), "closed", "u2"),
    ]
    return _rows(rows, "H")


def _empty(table: str) -> pl.DataFrame:
    types = {
        "occurred_at": pl.Datetime("us"),
        "added_at": pl.Datetime("us"),
        "updated_at": pl.Datetime("us"),
        "is_active": pl.Boolean,
        "email_bounced": pl.Boolean,
    }
    return pl.DataFrame(schema={c: types.get(c, pl.String) for c in TABLES[table]})


def tiny_inputs() -> Inputs:
    history = _history().select(TABLES["crm.opportunity_history"])
    deals = pl.DataFrame(
        {
            "opportunity_id": ["D1", "D2", "D3", "D4"],
            "lead_source": ["inbound"] * 4,
            "opportunity_type": ["new_business"] * 4,
            "product": ["P"] * 4,
        }
    )
    users = pl.DataFrame({"user_id": ["u1", "u2"], "team": ["T1", "T2"], "region": ["NA", "EMEA"]})
    subs = pl.DataFrame(
        {
            "user_id": ["u1"] * 3,
            "period_type": ["month"] * 3,
            "period_start": [FEB] * 3,
            "submitted_at": [T(2025, 2, 1, 9), T(2025, 2, 15, 9), T(2025, 2, 16, 9)],
            "commit_amount": [1500.0, 2600.0, 9999.0],
        }
    )
    tables = {t: _empty(t) for t in TABLES if t != "crm.opportunity_history"}
    tables["crm.opportunity_history"] = history
    return Inputs(history, deals, users, subs, tables, False, load_definitions(), T(2025, 3, 1))


@pytest.fixture(scope="module")
def tiny() -> dict:
    return prepare(tiny_inputs())


def _value(pre: dict, method: str, offset: int) -> float:
    b = pre["baselines"].filter(method=method, period_kind="month", period_start=FEB, offset=offset)
    return float(b["value"].sum())


def test_snapshots_sit_at_noon_on_the_fixed_points(tiny: dict) -> None:
    feb = tiny["snaps"].filter(period_kind="month", period_start=FEB)
    assert feb["moment"].to_list() == [T(2025, 2, 1, 12), T(2025, 2, 15, 12)]
    assert feb["period_end"].to_list() == [dt.date(2025, 3, 1)] * 2


def test_rep_commit_is_the_last_submission_known_at_the_moment(tiny: dict) -> None:
    assert _value(tiny, "rep_commit", 0) == 1500.0
    assert _value(tiny, "rep_commit", 14) == 2600.0  # the 16th's 9,999 is not known on the 15th


def test_stage_weighted_with_crm_probabilities(tiny: dict) -> None:
    # Feb 1: D1 proposal 0.4 x 1000 + D2 negotiation 0.7 x 2000; D3 closes in March.
    assert _value(tiny, "stage_weighted_crm", 0) == pytest.approx(400 + 1400)
    # Feb 15: D2 was won on the 5th (2000 so far) + D1 0.4 x 1000.
    assert _value(tiny, "stage_weighted_crm", 14) == pytest.approx(2000 + 400)


def test_stage_weighted_with_historical_rates(tiny: dict) -> None:
    # In January at day 0 the one negotiation deal closing in January (D4) was won:
    # rate 1.0 for negotiation; proposal has no history yet, so its CRM 0.4 stands.
    assert _value(tiny, "stage_weighted_history", 0) == pytest.approx(2000 + 400)


def test_seasonal_naive_falls_back_to_the_previous_period_without_a_year(tiny: dict) -> None:
    assert _value(tiny, "seasonal_naive", 0) == 800.0  # January's D4
    assert (
        tiny["baselines"]
        .filter(method="seasonal_naive", period_kind="quarter", period_start=dt.date(2025, 1, 1))
        .is_empty()
    )  # Q4 2024 won nothing


def test_deal_rows_label_wins_inside_the_period_only(tiny: dict) -> None:
    rows = (
        tiny["rows"].filter(period_kind="month", period_start=FEB, offset=0).sort("opportunity_id")
    )
    assert rows["opportunity_id"].to_list() == ["D1", "D2", "D3"]
    assert rows["won"].to_list() == [0, 1, 0]
    assert rows["in_period"].to_list() == [True, True, False]
    jan = tiny["rows"].filter(period_kind="month", period_start=dt.date(2025, 1, 1), offset=0)
    assert jan["opportunity_id"].to_list() == ["D4"]  # D1-D3 did not exist on Jan 1


def _three_reps() -> Inputs:
    """February 2025 with three reps: u1 calls on the 1st (1,500); u2 never calls and has
    an open negotiation deal (D5, 3,000) and one won on the 10th (D6, 1,200); u3 calls
    late, on the 10th (700), and has an open proposal deal (D7, 1,000)."""
    base = tiny_inputs()
    more = _rows(
        [
            ("D5", T(2025, 1, 8), "negotiation", 3000.0, dt.date(2025, 2, 25), "commit", "u2"),
            ("D6", T(2025, 1, 9), "negotiation", 1200.0, dt.date(2025, 2, 10), "commit", "u2"),
            ("D6", T(2025, 2, 10), "closed_won", 1200.0, dt.date(2025, 2, 10), "closed", "u2"),
            ("D7", T(2025, 1, 11), "proposal", 1000.0, dt.date(2025, 2, 28), "best_case", "u3"),
        ],
        "X",
    )
    history = pl.concat([base.history, more.select(base.history.columns)])
    deals = pl.concat(
        [
            base.deals,
            pl.DataFrame(
                {
                    "opportunity_id": ["D5", "D6", "D7"],
                    "lead_source": ["inbound"] * 3,
                    "opportunity_type": ["new_business"] * 3,
                    "product": ["P"] * 3,
                }
            ),
        ]
    )
    users = pl.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "team": ["T1", "T2", "T2"], "region": ["NA"] * 3}
    )
    late = pl.DataFrame(
        {
            "user_id": ["u3"],
            "period_type": ["month"],
            "period_start": [FEB],
            "submitted_at": [T(2025, 2, 10, 9)],
            "commit_amount": [700.0],
        }
    )
    tables = {**base.feature_tables, "crm.opportunity_history": history}
    return dataclasses.replace(
        base,
        history=history,
        deals=deals,
        users=users,
        submissions=pl.concat([base.submissions, late]),
        feature_tables=tables,
    )


@pytest.fixture(scope="module")
def three() -> dict:
    return prepare(_three_reps())


def _per_rep(pre: dict, method: str, offset: int) -> dict[str, float]:
    b = pre["baselines"].filter(method=method, period_kind="month", period_start=FEB, offset=offset)
    return dict(zip(b["owner_id"], b["value"], strict=True))


def test_rep_commit_fills_a_rep_who_has_not_called_at_the_stages_past_rates(
    three: dict,
) -> None:
    # The one period over by Feb 1 (and by Feb 15, at its day 14) is January, whose one
    # negotiation deal (D4) was won in it: rate 1.0; proposal has no history (CRM 0.4).
    # Feb 1: u1 has called; u2 has not (D5 3,000 + D6 1,200 at 1.0, nothing won yet);
    # u3 calls only on the 10th, so counts D7 at 0.4 x 1,000.
    assert _per_rep(three, "rep_commit", 0) == pytest.approx(
        {"u1": 1500.0, "u2": 3000.0 + 1200.0, "u3": 400.0}
    )
    # Feb 15: u1's second call; u2 still silent: D5, and D6's 1,200 won on the 10th; u3's call.
    assert _per_rep(three, "rep_commit", 14) == pytest.approx(
        {"u1": 2600.0, "u2": 3000.0 + 1200.0, "u3": 700.0}
    )
    called = three["baselines"].filter(method="rep_commit", period_kind="month", period_start=FEB)
    who = called.filter("submitted").sort("offset", "owner_id")
    assert who.select("offset", "owner_id").rows() == [(0, "u1"), (14, "u1"), (14, "u3")]
    assert called["submitted"].null_count() == 0


def test_the_crm_fill_weighs_a_silent_rep_at_the_crm_probabilities(three: dict) -> None:
    # Feb 1: u2's D5 0.7 x 3,000 + D6 0.7 x 1,200; Feb 15: D5 and the 1,200 won.
    assert _per_rep(three, "rep_commit_crm_fill", 0) == pytest.approx(
        {"u1": 1500.0, "u2": 2100.0 + 840.0, "u3": 400.0}
    )
    assert _per_rep(three, "rep_commit_crm_fill", 14) == pytest.approx(
        {"u1": 2600.0, "u2": 2100.0 + 1200.0, "u3": 700.0}
    )


def test_rep_commit_submitted_is_the_calls_alone(three: dict) -> None:
    assert _per_rep(three, "rep_commit_submitted", 0) == {"u1": 1500.0}
    assert _per_rep(three, "rep_commit_submitted", 14) == {"u1": 2600.0, "u3": 700.0}


def test_the_company_commit_counts_its_reps_and_those_who_had_called(three: dict) -> None:
    inp = _three_reps()
    seg = _baseline_segments(three, inp, three["snaps"]).filter(
        segment_kind="company", period_kind="month", period_start=FEB
    )
    filled = seg.filter(method="rep_commit").sort("offset")
    assert filled["value"].to_list() == pytest.approx([1500 + 4200 + 400, 2600 + 4200 + 700])
    assert filled["reps"].to_list() == [3, 3]
    assert filled["reps_submitted"].to_list() == [1, 2]
    crm = seg.filter(method="rep_commit_crm_fill").sort("offset")
    assert crm["reps_submitted"].to_list() == [1, 2]
    # The counts belong to the filled commits alone.
    filled = pl.col("method").is_in(["rep_commit", "rep_commit_crm_fill"])
    assert seg.filter(~filled)["reps"].null_count() == len(seg.filter(~filled)) > 0
