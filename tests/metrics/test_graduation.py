"""Graduation from stratified batch evidence, and the measures after graduation."""

from __future__ import annotations

import polars as pl
import pytest

from revstack.agents.engine import (
    decide,
    decide_batch,
    error_upper_bound,
    extend_sample,
    open_batches,
    run_agents,
    set_policy,
)
from revstack.data.warehouse import Warehouse
from revstack.metrics.graduation import (
    all_suggestions,
    batch_evidence,
    continuous_precision,
    demotions,
    trust_report,
)
from revstack.metrics.trust import suggestions, trust_cycles
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures
from tests.agents.test_batches import _decide_sample, _queue


def test_strata_are_weighted_by_size_not_pooled(run_wh: Warehouse) -> None:  # noqa: F811
    wh = run_wh
    _queue(wh, 2000, confidence=0.85, prefix="big")  # one batch, sampled thinly
    _queue(wh, 40, confidence=0.97, prefix="small")  # another, reviewed (almost) whole
    batches = open_batches(wh, by="rev").sort("size")
    small, big = batches.to_dicts()
    # 59 right rule out 5% for the big batch alone and no more: with the small batch's
    # errors beside it, the action needs a larger sample there to show it is below 5%
    big["sample_size"] = extend_sample(wh, big["batch_id"], by="rev", more=41)
    _decide_sample(wh, big["batch_id"])
    _decide_sample(wh, small["batch_id"], wrong=4)
    decide_batch(wh, big["batch_id"], approve=True, by="ana")

    with wh.connect() as con:
        [e] = batch_evidence(con).to_dicts()
        sugg = all_suggestions(con)
    n_big, n_small = big["sample_size"], small["sample_size"]
    assert (e["batches"], e["proposals"], e["sampled"], e["wrong"]) == (2, 2040, n_big + n_small, 4)
    # by hand: each batch's share of the action's proposals times its sample's share
    w_big, w_small = 2000 / 2040, 40 / 2040
    assert e["right_share"] == pytest.approx(w_big * 1.0 + w_small * (n_small - 4) / n_small)
    ub = w_big * error_upper_bound(0, n_big, 2000) + w_small * error_upper_bound(4, n_small, 40)
    assert e["error_upper_bound"] == pytest.approx(ub)
    assert e["error_upper_bound"] < 0.05 and e["batches_meeting_bar"] == 1
    # the weighted bound is under the bar, but the small batch failed its own: the
    # graduation would cover its field too, so there is no suggestion; and the action's
    # pooled cycles are not asked instead, since its samples are stratified
    assert sugg.is_empty()


@pytest.mark.slow
def test_clean_strata_graduate_the_action(run_wh: Warehouse) -> None:  # noqa: F811
    wh = run_wh
    _queue(wh, 2000, confidence=0.85, prefix="big")
    _queue(wh, 300, confidence=0.97, prefix="mid")
    small, big = open_batches(wh, by="rev").sort("size").to_dicts()
    extend_sample(wh, big["batch_id"], by="rev", more=60)
    _decide_sample(wh, big["batch_id"], wrong=1)
    _decide_sample(wh, small["batch_id"])
    with wh.connect() as con:
        [e] = batch_evidence(con).to_dicts()
        [s] = all_suggestions(con).to_dicts()
        cycles = trust_cycles(con)
    assert e["wrong"] == 1 and e["batches_meeting_bar"] == 2 and e["error_upper_bound"] < 0.05
    # no evidence below the lowest band sampled (0.80): the graduation starts there
    assert (s["suggestion"], s["source"], s["min_confidence"]) == (
        "graduate to tier 1 at confidence 0.80 and up",
        "batches",
        0.8,
    )
    assert "2 batches of 2,300 proposals" in s["evidence"]
    # the cycle rule, asked of the same decisions pooled, would suggest it as well: the
    # batches' evidence is the one that counts, and the action gets one suggestion
    assert not suggestions(cycles).is_empty()


def test_too_few_sampled_decisions_suggest_nothing(run_wh: Warehouse) -> None:  # noqa: F811
    _queue(run_wh, 20)
    [batch] = open_batches(run_wh, by="rev").to_dicts()
    _decide_sample(run_wh, batch["batch_id"])
    with run_wh.connect() as con:
        [e] = batch_evidence(con).to_dicts()
        assert e["sampled"] == batch["sample_size"] < 30 and all_suggestions(con).is_empty()


def test_continuous_samples_and_demotions_are_reported(wh: Warehouse) -> None:
    from tests.agents.test_continuous_sampling import SPEC, _proposals, _setup

    graduation = _setup(wh, 3000)
    run_agents(wh, [SPEC], only="bumper")
    first, second, *rest = _proposals(wh, "set_industry").filter(pl.col("status") == "pending")[
        "proposal_id"
    ]
    decide(wh, first, approve=True, by="rev")
    decide(wh, second, approve=False, by="rev", note="guessed")
    with wh.connect() as con:
        [c] = continuous_precision(con).to_dicts()
        [d] = demotions(con).to_dicts()
        report = trust_report(con)
    assert (c["policy_id"], c["right"], c["wrong"], c["waiting"]) == (graduation, 1, 1, len(rest))
    assert c["precision"] == 0.5 and c["precision_low"] < 0.5 < c["precision_high"]
    assert (d["agent"], d["action_type"], d["graduation"]) == ("bumper", "set_industry", graduation)
    assert d["proposal_id"] == second and "guessed" in d["reason"]
    assert report["graduations"] == [] and len(report["demotions"]) == 1
    # graduating again is a person's act on new evidence
    set_policy(wh, agent="bumper", action_type="set_industry", tier=1, by="ana", reason="again")
    with wh.connect() as con:
        assert [g["changed_by"] for g in trust_report(con)["graduations"]] == ["ana"]


@pytest.mark.slow
def test_a_failing_low_band_graduates_only_the_bands_above_it(run_wh: Warehouse) -> None:  # noqa: F811
    wh = run_wh
    _queue(wh, 400, confidence=0.6, prefix="low")  # band 0.50-0.70: a third wrong
    _queue(wh, 3000, confidence=0.97, prefix="high")  # band 0.95-1.00: clean
    low, high = open_batches(wh, by="rev").sort("band").to_dicts()
    _decide_sample(wh, low["batch_id"], wrong=low["sample_size"] // 3)
    extend_sample(wh, high["batch_id"], by="rev", more=40)
    _decide_sample(wh, high["batch_id"])
    with wh.connect() as con:
        [s] = all_suggestions(con).to_dicts()
        [whole] = batch_evidence(con).to_dicts()
        [upper] = batch_evidence(con, min_band=0.95).to_dicts()
    assert (
        whole["batches_meeting_bar"] == 1 and upper["batches"] == upper["batches_meeting_bar"] == 1
    )
    assert s["suggestion"] == "graduate to tier 1 at confidence 0.95 and up"
    assert s["min_confidence"] == 0.95 and "1 batch of 3,000 proposals" in s["evidence"]
