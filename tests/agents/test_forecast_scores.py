"""Forecast scores on tiny cases checked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from revstack.agents.forecast import (
    accuracy,
    brier,
    crps_from_draws,
    crps_from_quantiles,
    deal_calibration,
    mape_ratio,
    pinball,
    point_scores,
    range_scores,
    reliability,
    share_interval,
)

ACTUAL = [100.0, 200.0, 50.0]


def test_point_scores_by_hand() -> None:
    s = point_scores(ACTUAL, [110.0, 180.0, 50.0])
    # errors +10%, -10%, 0%
    assert s["mape"] == pytest.approx(0.2 / 3)
    assert s["wape"] == pytest.approx(30 / 350)
    assert s["bias"] == pytest.approx(0.0)
    assert s["over_share"] == pytest.approx(1 / 3)
    assert s["within_5"] == pytest.approx(1 / 3)
    assert s["within_10"] == pytest.approx(1.0)


def test_a_zero_actual_is_left_out_of_percentages_and_counted() -> None:
    s = point_scores([0.0, 100.0], [5.0, 150.0])
    assert s["n"] == 1 and s["n_zero"] == 1
    assert s["mape"] == pytest.approx(0.5)
    assert s["wape"] == pytest.approx(55 / 100)  # WAPE keeps every period's absolute error


def test_range_scores_by_hand() -> None:
    r = range_scores(ACTUAL, p10=[90, 210, 40], p50=[100, 220, 45], p90=[120, 250, 48])
    # 100 in [90, 120]; 200 below 210; 50 above 48
    assert r["coverage"] == pytest.approx(1 / 3)
    assert r["below_p10"] == pytest.approx(1 / 3) and r["above_p90"] == pytest.approx(1 / 3)
    # Wilson 95% for 1 of 3: (0.9736 -+ 0.8334) / 2.2805
    assert r["coverage_ci"] == pytest.approx([0.0615, 0.7923], abs=1e-3)
    # pinball 0.1 on p10: d = 10, -10, 10 -> 1, 9, 1
    assert r["pinball_10"] == pytest.approx(11 / 3)
    # pinball 0.5 on p50: d = 0, -20, 5 -> 0, 10, 2.5
    assert r["pinball_50"] == pytest.approx(12.5 / 3)
    # pinball 0.9 on p90: d = -20, -50, 2 -> 2, 5, 1.8
    assert r["pinball_90"] == pytest.approx(8.8 / 3)
    assert r["width"] == pytest.approx(26.0)
    assert r["relative_width"] == pytest.approx((0.3 + 0.2 + 0.16) / 3)


def test_pinball_is_asymmetric() -> None:
    assert pinball([10.0], [0.0], 0.9) == pytest.approx(9.0)
    assert pinball([0.0], [10.0], 0.9) == pytest.approx(1.0)


def test_crps_of_a_two_point_distribution_and_of_a_point() -> None:
    # F = 0.5 on [0, 10): integral of (F - 1{x >= 4})^2 = 0.25 * 10
    assert crps_from_draws(np.array([0.0, 10.0]), 4.0) == pytest.approx(2.5)
    assert crps_from_draws(np.array([7.0]), 4.0) == pytest.approx(3.0)
    # The quantile form converges on the exact one for a fine grid.
    rng = np.random.default_rng(1)
    x = rng.normal(100, 20, 20_000)
    levels = np.arange(0.005, 1.0, 0.01)
    exact = crps_from_draws(x, 130.0)
    assert crps_from_quantiles(np.quantile(x, levels), levels, 130.0) == pytest.approx(
        exact, rel=0.02
    )


def test_brier_and_reliability_by_hand() -> None:
    assert brier([0.8, 0.3], [1, 0]) == pytest.approx((0.04 + 0.09) / 2)
    r = reliability([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1])
    assert r["bin"].to_list() == [0, 1, 9]
    assert r["predicted"].to_list() == pytest.approx([0.05, 0.135, 0.975])
    assert r["observed"].to_list() == pytest.approx([0.0, 0.5, 1.0])
    assert r["deals"].to_list() == [1, 2, 2]


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    q = [dt.date(2025, 1, 1), dt.date(2025, 4, 1)]
    agent = pl.DataFrame(
        {
            "period_kind": ["quarter"] * 2,
            "period_start": q,
            "offset": [0, 0],
            "segment_kind": ["company"] * 2,
            "segment": ["company"] * 2,
            "p10": [80.0, 150.0],
            "p50": [95.0, 180.0],
            "p90": [120.0, 190.0],
            "expected": [100.0, 175.0],
            "crps": [4.0, 12.0],
            "actual": [100.0, 200.0],
        }
    )
    base = pl.DataFrame(
        {
            "period_kind": ["quarter"] * 2,
            "period_start": q,
            "offset": [0, 0],
            "segment_kind": ["company"] * 2,
            "segment": ["company"] * 2,
            "method": ["rep_commit"] * 2,
            "value": [120.0, 160.0],
            "actual": [100.0, 200.0],
        }
    )
    return agent, base


def test_accuracy_side_by_side_by_hand() -> None:
    agent, base = _frames()
    [rec, _all] = accuracy(agent, base)
    assert rec["offset"] == 0 and _all["offset"] == "all"
    # agent P50 errors: -5%, -10%; commit: +20%, -20%
    assert rec["agent"]["mape"] == pytest.approx(0.075)
    assert rec["agent"]["bias"] == pytest.approx(-0.075)
    assert rec["baselines"]["rep_commit"]["mape"] == pytest.approx(0.20)
    assert rec["range"]["coverage"] == pytest.approx(0.5)  # 200 is above P90 = 190
    # CRPS skill: 1 - mean agent CRPS (8) / mean commit absolute error ((20 + 40) / 2)
    assert rec["crps_skill"]["rep_commit"] == pytest.approx(1 - 8 / 30)
    # MAPE ratio 7.5% / 20%; resampling the two quarters gives Q1 alone (5/20), Q2 alone
    # (10/20) or both (15/40): the interval runs between the quarters' own ratios.
    ratio = rec["mape_ratio"]["rep_commit"]
    assert ratio["ratio"] == pytest.approx(0.375)
    assert (ratio["low"], ratio["high"], ratio["periods"]) == (
        pytest.approx(0.25),
        pytest.approx(0.5),
        2,
    )
    # Over all points, coverage also gets an interval by period: one held, one did not.
    assert _all["range"]["coverage_ci_periods"] == [pytest.approx(0.0), pytest.approx(1.0)]
    assert "coverage_ci_periods" not in rec["range"]  # one snapshot per period: Wilson's is right


def test_mape_ratio_by_hand() -> None:
    # Period "a": two snapshots, errors 5% and 15% against the baseline's 20% and 20%;
    # period "b": one snapshot, 30% against 10%. Snapshots with a zero actual are left out.
    r = mape_ratio(
        ["a", "a", "b", "b"],
        [100.0, 100.0, 100.0, 0.0],
        [105.0, 85.0, 130.0, 5.0],
        [120.0, 80.0, 110.0, 9.0],
    )
    assert r["ratio"] == pytest.approx(0.50 / 0.50)
    # Resampled periods: "a" alone 20/40, "b" alone 30/10, mixed 50/50 (and their repeats).
    assert r["low"] == pytest.approx(0.5) and r["high"] == pytest.approx(3.0) and r["periods"] == 2
    assert mape_ratio(["a"], [0.0], [1.0], [2.0])["ratio"] is None
    assert (
        mape_ratio(["a", "b"], [10.0, 10.0], [11.0, 9.0], [10.0, 10.0])["ratio"] is None
    )  # baseline exact


def test_mape_ratio_resamples_whole_periods() -> None:
    rng = np.random.default_rng(3)
    period = np.repeat(np.arange(12), 3)  # twelve quarters, three snapshots each
    actual = np.full(36, 100.0)
    # A period's snapshots err together: one error per period, repeated.
    forecast = actual + np.repeat(rng.normal(0, 5, 12), 3)
    baseline = actual + np.repeat(rng.normal(0, 7, 12), 3)
    by_period = mape_ratio(period, actual, forecast, baseline, seed=1)
    # Three copies of every snapshot are the same twelve periods: the same interval.
    thrice = mape_ratio(
        np.repeat(period, 3),
        np.repeat(actual, 3),
        np.repeat(forecast, 3),
        np.repeat(baseline, 3),
        seed=1,
    )
    assert (thrice["low"], thrice["high"]) == (
        pytest.approx(by_period["low"]),
        pytest.approx(by_period["high"]),
    )
    # Taking each snapshot for a period of its own claims three times the evidence.
    by_snapshot = mape_ratio(np.arange(36), actual, forecast, baseline, seed=1)
    assert by_snapshot["ratio"] == pytest.approx(by_period["ratio"])
    assert by_snapshot["high"] - by_snapshot["low"] < 0.75 * (by_period["high"] - by_period["low"])
    assert by_period["low"] < by_period["ratio"] < by_period["high"]


def test_deal_calibration_reports_the_base_rate_for_scale() -> None:
    d = pl.DataFrame({"period_kind": ["month"] * 4, "p": [0.9, 0.1, 0.2, 0.7], "won": [1, 0, 0, 1]})
    out = deal_calibration(d)["month"]
    assert out["brier"] == pytest.approx((0.01 + 0.01 + 0.04 + 0.09) / 4)
    assert out["brier_base_rate"] == pytest.approx(0.25)


def test_share_interval_resamples_whole_periods() -> None:
    # Period "a" held twice, "b" missed once: resampled, a+a 4/4 (a quarter of draws),
    # a+b 2/3 (half), b+b 0/2 (a quarter): the middle fifth is all 2/3.
    assert share_interval(["a", "a", "b"], [1, 1, 0], level=0.2) == [
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
    ]
    assert share_interval(["a", "a", "b"], [1, 1, 0], level=0.95) == [
        pytest.approx(0.0),
        pytest.approx(1.0),
    ]
    assert share_interval([], []) is None
    rng = np.random.default_rng(5)
    period = np.repeat(np.arange(30), 3)
    hit = np.repeat(rng.random(30) < 0.8, 3)  # a period's points hold or miss together
    by_period = share_interval(period, hit, seed=2)
    by_point = share_interval(np.arange(90), hit, seed=2)
    assert by_period[0] < hit.mean() < by_period[1]
    assert by_point[1] - by_point[0] < 0.75 * (by_period[1] - by_period[0])


def test_calls_in_keeps_the_snapshots_at_which_most_reps_had_called() -> None:
    agent, base = _frames()
    # Q1: 4 of 5 reps had called (80%: in); Q2: 3 of 5 (out).
    base = base.with_columns(reps=pl.Series([5, 5]), reps_submitted=pl.Series([4, 3]))
    [_, every] = accuracy(agent, base)
    calls = every["calls_in"]
    assert (calls["snapshots"], calls["share"]) == (1, pytest.approx(0.5))
    # Q1 alone: the agent's 5% against the commit's 20%.
    assert calls["mape_ratio"]["ratio"] == pytest.approx(0.25)
    assert calls["mape_ratio"]["periods"] == 1
    # Frames without the counts (a backtest stored before them) have no such figure.
    [_, old] = accuracy(*_frames())
    assert old["calls_in"] is None
