"""The trust ramp's statistics and suggestions, on decisions made through the engine."""

from __future__ import annotations

import pytest

from revstack.agents.engine import decide
from revstack.data.warehouse import Warehouse
from revstack.metrics.trust import suggestions, trust_cycles, wilson_lower
from tests.agents.conftest import insert_proposal


def test_wilson_lower_bound_matches_the_formula_by_hand() -> None:
    # 95 of 100: p = .95, z = 1.96 -> (0.95 + 0.019208 - 1.96*sqrt(0.000475 + 0.00009604)) / 1.038416
    assert wilson_lower(95, 100) == pytest.approx(0.8882, abs=1e-4)
    assert wilson_lower(0, 0) is None
    assert wilson_lower(10, 10) < 1.0


def test_forty_clean_approvals_suggest_graduation_and_rejections_do_not(
    engine_wh: Warehouse,
) -> None:
    with engine_wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, employees, source) SELECT 'G' || i, 'g', i, 't' FROM range(120) t(i)"
        )
    for i in range(120):
        insert_proposal(
            engine_wh,
            f"g{i}",
            f"G{i}",
            "employees",
            str(i),
            str(i + 1),
            agent="good" if i < 80 else "bad",
        )
    for i in range(80):
        decide(engine_wh, f"g{i}", approve=True, by="rev")
    for i in range(80, 120):
        decide(engine_wh, f"g{i}", approve=i % 2 == 0, by="rev", note="headcount is stale")
    with engine_wh.connect() as con:
        cycles = trust_cycles(con)
    good = cycles.filter(cycles["agent"] == "good").row(0, named=True)
    assert (good["reviewed"], good["approved_unchanged"]) == (80, 80)
    assert good["approval_lower_bound"] == pytest.approx(wilson_lower(80, 80))
    s = suggestions(cycles)
    assert s.filter(s["agent"] == "good")["suggestion"].to_list() == ["graduate to tier 1"]
    assert s.filter(s["agent"] == "bad").is_empty()  # half rejected: stays tier 2
    bad = cycles.filter(cycles["agent"] == "bad").row(0, named=True)
    assert bad["override_notes"][:1] == ["headcount is stale"]


def test_threshold_curve_counts_by_hand() -> None:
    import numpy as np
    import polars as pl

    from revstack.metrics.thresholds import threshold_curve

    labelled = pl.DataFrame(
        {"confidence": [0.95, 0.9, 0.8, 0.6, 0.4], "correct": [True, False, True, None, False]}
    )
    curve = threshold_curve(labelled, np.array([0.5, 0.85, 0.99]))
    assert curve["auto"].to_list() == [4, 2, 0]
    assert curve["queue"].to_list() == [1, 3, 5]
    assert curve["wrong_auto"].to_list() == [1, 1, 0]
    assert curve["expected_error_rate"].to_list()[:2] == [1 / 3, 1 / 2]
    assert curve["expected_error_rate"].to_list()[2] is None
