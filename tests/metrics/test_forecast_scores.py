"""Forecast scores on tiny cases checked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from metrics.forecast import accuracy, deal_calibration
from metrics.forecast_scores import (
    brier,
    crps_from_draws,
    crps_from_quantiles,
    pinball,
    point_scores,
    range_scores,
    reliability,
)  # fmt: skip

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
    assert crps_from_quantiles(np.quantile(x, levels), levels, 130.0) == pytest.approx(exact, rel=0.02)


def test_brier_and_reliability_by_hand() -> None:
    assert brier([0.8, 0.3], [1, 0]) == pytest.approx((0.04 + 0.09) / 2)
    r = reliability([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1])
    assert r["bin"].to_list() == [0, 1, 9]
    assert r["predicted"].to_list() == pytest.approx([0.05, 0.135, 0.975])
    assert r["observed"].to_list() == pytest.approx([0.0, 0.5, 1.0])
    assert r["deals"].to_list() == [1, 2, 2]


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    q = [dt.date(2025, 1, 1), dt.date(2025, 4, 1)]
    agent = pl.DataFrame({
        "period_kind": ["quarter"] * 2, "period_start": q, "offset": [0, 0], "segment_kind": ["company"] * 2,
        "segment": ["company"] * 2, "p10": [80.0, 150.0], "p50": [95.0, 180.0], "p90": [120.0, 190.0],
        "expected": [100.0, 175.0], "crps": [4.0, 12.0], "actual": [100.0, 200.0],
    })  # fmt: skip
    base = pl.DataFrame({
        "period_kind": ["quarter"] * 2, "period_start": q, "offset": [0, 0], "segment_kind": ["company"] * 2,
        "segment": ["company"] * 2, "method": ["rep_commit"] * 2, "value": [120.0, 160.0], "actual": [100.0, 200.0],
    })  # fmt: skip
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


def test_deal_calibration_reports_the_base_rate_for_scale() -> None:
    d = pl.DataFrame({"period_kind": ["month"] * 4, "p": [0.9, 0.1, 0.2, 0.7], "won": [1, 0, 0, 1]})
    out = deal_calibration(d)["month"]
    assert out["brier"] == pytest.approx((0.01 + 0.01 + 0.04 + 0.09) / 4)
    assert out["brier_base_rate"] == pytest.approx(0.25)
