"""Confidence as a probability: the engine's map from an agent's score, fitted on what
people decided one card at a time, checked against a hand calculation and end to end."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from revstack.agents.engine import (
    MIN_JUDGED,
    POLICY_SCHEMA,
    PRIOR_SD_INTERCEPT,
    PRIOR_SD_SLOPE,
    Agent,
    AgentResult,
    AgentSpec,
    Calibration,
    Context,
    add_person,
    decide,
    decide_batch,
    fit_calibration,
    fit_calibrations,
    open_batches,
    run_agents,
    sample_cards,
)
from revstack.data.warehouse import Warehouse, frame


def _posterior(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The negative log posterior on a grid of (a, b), written out apart from the fit."""
    z = a[..., None] + b[..., None] * x
    p = 1 / (1 + np.exp(-z))
    loglik = (y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
    prior = -0.5 * (a / PRIOR_SD_INTERCEPT) ** 2 - 0.5 * ((b - 1) / PRIOR_SD_SLOPE) ** 2
    return -(loglik + prior)


def test_the_fit_is_the_posterior_mode_found_by_brute_force() -> None:
    rng = np.random.default_rng(4)
    scores = rng.uniform(0.3, 0.99, 300)
    # the agent is overconfident: the truth is a flatter curve than its score
    right = rng.random(300) < 1 / (1 + np.exp(-(-0.8 + 0.4 * np.log(scores / (1 - scores)))))
    cal = fit_calibration("x", scores, right)
    a, b = np.meshgrid(np.linspace(-3, 2, 501), np.linspace(0, 2, 401), indexing="ij")
    grid = _posterior(a, b, np.log(scores / (1 - scores)), right.astype(float))
    i, j = np.unravel_index(np.argmin(grid), grid.shape)
    assert cal.intercept == pytest.approx(a[i, j], abs=0.011)
    assert cal.slope == pytest.approx(b[i, j], abs=0.006)
    assert cal.slope < 0.8  # it learned the agent claims too much spread
    assert (cal.judged, cal.judged_right) == (300, int(right.sum()))


def test_one_score_for_every_proposal_moves_only_its_level() -> None:
    # hygiene's correct_field: every proposal 0.50, one in seven right
    scores = np.full(420, 0.5)
    right = np.arange(420) % 7 == 0
    cal = fit_calibration("correct_field", scores, right)
    assert cal.slope == pytest.approx(1.0)  # logit(0.5) = 0: the data say nothing of b
    p = float(cal(np.array([0.5]))[0])
    # 60 right of 420 (14.3%); the prior pulls towards 0.5 by a little on this many
    assert 0.143 < p < 0.16
    few = fit_calibration("correct_field", scores[:21], right[:21])
    assert float(few(np.array([0.5]))[0]) > p  # fewer judgements, more of the prior


def test_the_map_never_reverses_the_agents_ordering() -> None:
    scores = np.repeat([0.6, 0.9], 100)
    right = np.concatenate([np.ones(100, bool), np.zeros(100, bool)])  # the higher, the worse
    cal = fit_calibration("x", scores, right)
    assert cal.slope == 0.0
    low, high = cal(np.array([0.6, 0.9]))
    assert low == pytest.approx(high)
    assert 0.4 < low < 0.6  # half right overall


def test_no_judgements_and_a_fresh_prior_leave_the_score_as_it_is() -> None:
    ident = Calibration("x", 0, 0, 0.0, 1.0)
    s = np.array([0.01, 0.3, 0.5, 0.97])
    assert np.allclose(ident(s), s)


class Guesser(Agent):
    """Proposes an industry for every account without one, at a fixed score."""

    name = "guesser"
    version = "1.0"
    score = 0.7

    def run(self, ctx: Context) -> AgentResult:
        a = ctx.table("crm.accounts", ["account_id", "industry"])
        return AgentResult(
            a.filter(pl.col("industry").is_null()).select(
                action_type=pl.lit("set_industry"),
                object_type=pl.lit("accounts"),
                record_id="account_id",
                field=pl.lit("industry"),
                old_value=pl.lit("null"),
                new_value=pl.lit('"Software"'),
                confidence=pl.lit(self.score),
                evidence=pl.lit("{}"),
                reason=pl.lit("a guess"),
            )
        )


def _spec(min_confidence: float) -> AgentSpec:
    policy = pl.DataFrame(
        {
            "action_type": ["set_industry"],
            "object_type": ["accounts"],
            "field": ["industry"],
            "tier": [1],
            "min_confidence": [min_confidence],
        },
        schema=POLICY_SCHEMA,
    )
    return AgentSpec(
        name="guesser",
        version="1.0",
        contract_version="1",
        owner="t",
        mode="live",
        depends_on=(),
        triggers=("record_created", "record_changed"),
        reads={"crm.accounts": ["account_id", "industry"]},
        policy=policy,
        factory=Guesser,
    )


def _accounts(wh: Warehouse, prefix: str, n: int) -> None:
    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, employees, source) "
            "SELECT $p || i, 'Company ' || $p || i, i, 'test' FROM range($n) t(i)",
            {"p": prefix, "n": n},
        )


def _proposals(wh: Warehouse, prefix: str) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            "SELECT proposal_id, status, tier, confidence, raw_confidence FROM ops.proposals "
            "WHERE record_id LIKE $p || '%' ORDER BY proposal_id",
            {"p": prefix},
        )


@pytest.fixture
def people(wh: Warehouse) -> Warehouse:
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    return wh


def test_approvals_earn_an_action_the_confidence_its_contract_asks_for(people: Warehouse) -> None:
    wh, spec = people, _spec(min_confidence=0.8)
    _accounts(wh, "A", 40)
    run_agents(wh, [spec], only="guesser")
    first = _proposals(wh, "A")
    # no judgements yet: the score is the confidence, and 0.7 < 0.8 sends every one to a person
    assert (first["confidence"] == 0.7).all() and (first["raw_confidence"] == 0.7).all()
    assert set(first["status"]) == {"pending"}
    for pid in first["proposal_id"]:
        decide(wh, pid, approve=True, by="rev")

    _accounts(wh, "B", 10)
    run_agents(wh, [spec], only="guesser")
    later = _proposals(wh, "B")
    assert (later["raw_confidence"] == 0.7).all()
    # 40 of 40 approved: the map lifts 0.7 past the tier-1 threshold, and they apply
    assert (later["confidence"] > 0.8).all() and set(later["status"]) == {"applied"}
    with wh.connect() as con:
        [fit] = frame(con, "SELECT * FROM ops.calibrations").to_dicts()
        [meta] = frame(
            con, "SELECT metadata->>'$.agent.calibrated' AS c FROM ops.runs ORDER BY run_id DESC"
        )["c"][:1]
    assert (fit["agent"], fit["action_type"], fit["judged"], fit["judged_right"]) == (
        "guesser",
        "set_industry",
        40,
        40,
    )
    stored = Calibration("set_industry", 40, 40, fit["intercept"], fit["slope"])
    assert later["confidence"].to_list() == [round(float(stored(np.array([0.7]))[0]), 4)] * 10
    assert meta == '{"set_industry":40}'


def test_rejections_lower_the_confidence_people_see_and_the_score_is_kept(
    people: Warehouse,
) -> None:
    wh, spec = people, _spec(min_confidence=0.95)
    Guesser.score = 0.9
    try:
        _accounts(wh, "A", MIN_JUDGED)
        run_agents(wh, [spec], only="guesser")
        first = _proposals(wh, "A")["proposal_id"].to_list()
        for i, pid in enumerate(first):  # one in four right
            decide(wh, pid, approve=i % 4 == 0, by="rev", note=None if i % 4 == 0 else "wrong")
        _accounts(wh, "B", 5)
        run_agents(wh, [spec], only="guesser")
    finally:
        Guesser.score = 0.7
    later = _proposals(wh, "B")
    assert (later["raw_confidence"] == 0.9).all()
    # 5 of 20 right at 0.9: the prior holds the estimate above 25%, far below 90%
    assert later["confidence"].max() < 0.6 and later["confidence"].min() > 0.25


def test_below_the_minimum_number_of_judgements_nothing_is_calibrated(people: Warehouse) -> None:
    wh, spec = people, _spec(min_confidence=0.8)
    _accounts(wh, "A", MIN_JUDGED - 1)
    run_agents(wh, [spec], only="guesser")
    for pid in _proposals(wh, "A")["proposal_id"]:
        decide(wh, pid, approve=False, by="rev", note="wrong")
    _accounts(wh, "B", 3)
    run_agents(wh, [spec], only="guesser")
    assert (_proposals(wh, "B")["confidence"] == 0.7).all()
    with wh.connect() as con:
        assert fit_calibrations(con, "guesser") == {}
        assert frame(con, "SELECT count(*) n FROM ops.calibrations")["n"][0] == 0


def test_the_rest_of_a_batch_is_not_a_judgement(people: Warehouse) -> None:
    wh, spec = people, _spec(min_confidence=0.99)
    _accounts(wh, "A", 300)
    run_agents(wh, [spec], only="guesser")
    [batch] = open_batches(wh, by="ana", seed=3)["batch_id"]
    with wh.connect() as con:
        sample = sample_cards(con, batch)["proposal_id"].to_list()
    for pid in sample:
        decide(wh, pid, approve=True, by="rev")
    decide_batch(wh, batch, approve=True, by="ana")
    with wh.connect() as con:
        decided = frame(con, "SELECT count(*) n FROM ops.proposals WHERE status = 'approved'")
        [cal] = fit_calibrations(con, "guesser").values()
    assert decided["n"][0] == 300
    assert cal.judged == len(sample) < 300 and cal.judged_right == len(sample)
