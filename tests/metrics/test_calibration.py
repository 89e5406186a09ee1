"""Reliability of an agent's confidence, by hand on a tiny queue and against truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from revstack.agents.engine import decide
from revstack.data.warehouse import Warehouse
from revstack.metrics.calibration import calibration_summary, confidence_reliability
from revstack.metrics.verdicts import truth_verdicts
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures


def test_reliability_by_hand_from_people(run_wh: Warehouse) -> None:  # noqa: F811
    from tests.agents.test_batches import _queue

    _queue(run_wh, 4, confidence=0.92, prefix="hi")  # bin 9: 3 of 4 right
    _queue(run_wh, 2, confidence=0.55, prefix="lo")  # bin 5: 0 of 2 right
    for pid, ok in [
        ("p-hi0", True),
        ("p-hi1", True),
        ("p-hi2", True),
        ("p-hi3", False),
        ("p-lo0", False),
        ("p-lo1", False),
    ]:
        if ok:
            decide(run_wh, pid, approve=True, by="rev")
        else:
            decide(run_wh, pid, approve=False, by="rev", note="wrong")
    with run_wh.connect() as con:
        curve = {r["bin"]: r for r in confidence_reliability(con).to_dicts()}
        [summary] = calibration_summary(con).to_dicts()
    assert set(curve) == {5, 9}
    assert (curve[9]["judged"], curve[9]["right"], curve[9]["observed"]) == (4, 3, 0.75)
    assert curve[9]["mean_confidence"] == pytest.approx(0.92) and curve[9]["judge"] == "people"
    assert curve[5]["observed"] == 0.0 and curve[5]["observed_high"] > 0.0
    # ECE: (4 * |0.92 - 0.75| + 2 * |0.55 - 0|) / 6; Brier: (3 * 0.08^2 + 0.92^2 + 2 * 0.55^2) / 6
    assert summary["calibration_error"] == pytest.approx((4 * 0.17 + 2 * 0.55) / 6)
    assert summary["brier"] == pytest.approx((3 * 0.08**2 + 0.92**2 + 2 * 0.55**2) / 6)
    assert summary["confidences_used"] == 2
    # stored before any calibration: the agent's score is the confidence
    assert summary["raw_calibration_error"] == summary["calibration_error"]
    assert summary["raw_brier"] == summary["brier"]


def test_the_summary_sets_the_calibrated_confidence_beside_the_agents_score(
    run_wh: Warehouse,  # noqa: F811
) -> None:
    from tests.agents.test_batches import _queue

    _queue(run_wh, 10, confidence=0.9, prefix="c")
    with run_wh.connect() as con:  # as the engine stores it: score 0.9 read as 0.3
        con.execute(
            "UPDATE ops.proposals SET raw_confidence = 0.9, confidence = 0.3 "
            "WHERE proposal_id LIKE 'p-c%'"
        )
    for i in range(10):
        ok = i < 3
        decide(run_wh, f"p-c{i}", approve=ok, by="rev", note=None if ok else "wrong")
    with run_wh.connect() as con:
        [summary] = calibration_summary(con).to_dicts()
        raw = confidence_reliability(con, score="raw_confidence")
        with pytest.raises(ValueError, match="raw_confidence"):
            confidence_reliability(con, score="tier")
    assert summary["calibration_error"] == pytest.approx(0.0)  # 3 of 10 at 0.3
    assert summary["raw_calibration_error"] == pytest.approx(0.6)  # 3 of 10 at 0.9
    assert summary["raw_brier"] == pytest.approx((3 * 0.1**2 + 7 * 0.9**2) / 10)
    assert raw["bin"].to_list() == [9] and raw["mean_confidence"][0] == pytest.approx(0.9)


@pytest.mark.slow
def test_truth_judges_first_and_every_verdict_is_counted(small_run: Path) -> None:
    with Warehouse(small_run).connect() as con:
        curve = confidence_reliability(con)
        verdicts = truth_verdicts(con)
    assert int(curve.filter(curve["judge"] == "truth")["judged"].sum()) == len(verdicts)
    low, observed, high = (
        curve[c].to_list() for c in ("observed_low", "observed", "observed_high")
    )
    assert all(lo - 1e-12 <= o <= hi + 1e-12 for lo, o, hi in zip(low, observed, high, strict=True))
