"""The combination of the simulation with the reps' commit, on cases worked by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from revstack.agents.forecast import _simulate
from revstack.agents.forecast._backtest import _team_commit
from revstack.agents.forecast._calibrate import LevelMap
from revstack.agents.forecast._combine import (
    Combination,
    Record,
    combine,
    season_of,
    slot,
    with_season,
)
from revstack.agents.forecast._inputs import typical_amount, with_typical
from revstack.agents.forecast._newbiz import NewBusiness, rep_shares
from revstack.agents.forecast._periods import anchor, live_snapshots, same_point_in_past
from revstack.agents.forecast._simulate import simulate
from revstack.agents.forecast._snapshot import (
    CRPS_LEVELS,
    Segments,
    SnapshotDraws,
    draw_snapshot,
    segment_pits,
    spread,
    summarise,
)

END = dt.date(2026, 1, 1)
NAN = float("nan")


def _rec(
    mean: list[float],
    commit: list[float],
    actual: list[float],
    won: list[float] | None = None,
    spread: float = 10.0,
) -> Record:
    won = won or [0.0] * len(mean)
    return Record(
        ("quarter", 0, 0),
        END,
        *(np.array(v, dtype=float) for v in (won, mean, commit, actual)),
        spread,
    )


def test_slots_separate_points_and_months_of_the_quarter() -> None:
    assert slot("month", dt.date(2026, 1, 1), 0) == slot("month", dt.date(2026, 4, 1), 0)
    assert slot("month", dt.date(2026, 1, 1), 0) != slot("month", dt.date(2026, 3, 1), 0)
    assert slot("month", dt.date(2026, 1, 1), 0) != slot("month", dt.date(2026, 1, 1), 14)
    assert slot("quarter", dt.date(2026, 1, 1), 28) == slot("quarter", dt.date(2026, 7, 1), 28)


def test_no_history_leaves_the_simulation_alone() -> None:
    c = combine([])
    assert (c.sim_bias, c.commit_bias, c.weight, c.scale) == (1.0, 1.0, 0.0, 1.0)
    assert c.centre(np.array([10.0]), np.array([110.0]), np.array([500.0])) == pytest.approx(
        [110.0]
    )


def test_bias_is_a_shrunk_ratio_of_sums_of_what_was_still_to_come() -> None:
    # Two teams, won 20 and 0; the simulation called 80 + 100 of the rest, 100 + 125 came: 225 / 180.
    past = [_rec([100.0, 100.0], [NAN, NAN], [120.0, 125.0], won=[20.0, 0.0])] * 2
    c = combine(past, prior_bias=2.0)
    assert c.sim_bias == pytest.approx(1.25 ** (2 / 4))
    assert c.weight == 0.0  # no commit to weigh


def test_weight_follows_the_error_covariance_over_teams_and_periods() -> None:
    # Uncorrelated errors of equal size: the mean of the two (no bias: sums match).
    past = [
        _rec([110.0, 100.0], [100.0, 110.0], [100.0, 100.0]),
        _rec([90.0, 100.0], [100.0, 90.0], [100.0, 100.0]),
    ]
    c = combine(past, prior_bias=1e9, prior_weight=0.0)
    assert c.sim_bias == pytest.approx(1.0) and c.commit_bias == pytest.approx(1.0)
    assert c.weight == pytest.approx(0.5)
    assert c.centre(np.zeros(2), np.array([120.0, 80.0]), np.array([100.0, NAN])) == pytest.approx(
        [110.0, 80.0]
    )
    # The commit's errors half the simulation's and moving with them: v_a = 200, v_c = 50, c = 100
    # -> (200 - 100) / (200 + 50 - 200) = 2, clipped to 1, shrunk with 2 pseudo-periods of 0.
    past = [_rec([110.0, 90.0], [105.0, 95.0], [100.0, 100.0])] * 2
    assert combine(past, prior_bias=1e9, prior_weight=2.0).weight == pytest.approx(1.0 * 2 / 4)
    # A commit that is always worse, moving with the simulation: no weight.
    past = [_rec([105.0, 95.0], [120.0, 80.0], [100.0, 100.0])] * 2
    assert combine(past, prior_bias=1e9, prior_weight=0.0).weight == 0.0
    # One period with a commit is not enough to weigh it.
    assert combine(past[:1], prior_bias=1e9, prior_weight=0.0).weight == 0.0


def test_scale_is_the_company_error_in_units_of_the_spread() -> None:
    # Company errors of +20 and -20 against a spread of 10, shrunk toward 1 with 2 pseudo-periods.
    past = [
        _rec([50.0, 50.0], [NAN, NAN], [70.0, 50.0]),
        _rec([50.0, 50.0], [NAN, NAN], [30.0, 50.0]),
    ]
    c = combine(past, prior_bias=1e9, prior_scale=2.0)
    assert c.scale == pytest.approx(np.sqrt((4.0 + 4.0 + 2.0) / 4.0))


def test_a_total_of_one_lumpy_deal_still_has_a_spread_to_count_errors_in() -> None:
    # One deal of 100 at 10%: nine draws in ten give nothing, so the 16-84% range is empty.
    total = 100.0 * (np.random.default_rng(0).random(1000) < 0.1)
    assert np.quantile(total, 0.16) == np.quantile(total, 0.84) == 0.0
    unit = spread(total)
    assert unit == pytest.approx(np.abs(total - total.mean()).mean() / 2.0) and unit > 5.0
    # The deal came in once and not once: errors of about ten spreads, not of ninety
    # million (the old unit, a floor of 1 in currency, made the scale about 60).
    past = [
        _rec([10.0], [NAN], [100.0], spread=unit),
        _rec([10.0], [NAN], [0.0], spread=unit),
    ]
    assert 1.0 < combine(past, prior_bias=1e9).scale < 10.0


def test_a_total_of_many_deals_keeps_half_its_16_84_range() -> None:
    rng = np.random.default_rng(1)
    for total in (rng.normal(100.0, 10.0, 4000), rng.gamma(1.0, 50.0, 4000)):
        lo, hi = np.quantile(total, [0.16, 0.84])
        assert spread(total) == (hi - lo) / 2.0


TEAM_OF = np.array([0, 0, 1])


def _draws(rng: np.random.Generator) -> SnapshotDraws:
    so_far = np.array([50.0, 0.0, 30.0])
    pipe = rng.gamma(2.0, 20.0, (4000, 3)) * np.array([1.0, 2.0, 0.5])
    new = rng.gamma(1.0, 5.0, (4000, 3))
    pipe[:5], new[:5] = 0.0, 0.0  # draws in which nothing more is won
    return SnapshotDraws(
        so_far[None, :] + pipe + new, so_far, pipe.mean(axis=0), new.mean(axis=0), np.zeros(0)
    )


def test_moved_draws_reach_each_team_centre_keep_won_revenue_and_add_up() -> None:
    s = _draws(np.random.default_rng(1))
    c = Combination(sim_bias=1.0, commit_bias=0.8, weight=0.5, scale=1.5)
    commit = np.array([300.0, NAN])  # team 1 has no commit: the simulation alone
    moved = c.apply(s, TEAM_OF, commit)
    member = np.eye(2)[TEAM_OF]
    won, mean = s.so_far @ member, s.owner_draws.mean(axis=0) @ member
    target = c.centre(won, mean, commit)
    teams = moved.owner_draws @ member
    assert teams.mean(axis=0) == pytest.approx(
        target, rel=0.02
    )  # the floor at won-so-far moves it a little
    assert teams[:, 1].mean() == pytest.approx(mean[1], rel=0.02)
    assert (moved.owner_draws >= s.so_far[None, :] - 1e-9).all()  # nobody loses what is won
    raw_total = s.owner_draws.sum(axis=1)
    assert np.std(teams.sum(axis=1)) == pytest.approx(1.5 * np.std(raw_total), rel=0.05)
    # Each owner's expected value is its parts, exactly.
    expected = moved.owner_draws.mean(axis=0)
    assert expected == pytest.approx(moved.so_far + moved.pipeline_mean + moved.new_mean, rel=1e-9)
    # Raised far enough, a draw with nothing to come gets the team's usual split between owners.
    up = Combination(sim_bias=3.0).apply(s, TEAM_OF, np.array([NAN, NAN]))
    rest = up.owner_draws[:5] - s.so_far[None, :]
    usual = s.pipeline_mean + s.new_mean
    assert (rest > 0).all()
    assert rest[:, 0] / rest[:, 1] == pytest.approx(np.full(5, usual[0] / usual[1]))


def test_a_quarter_of_the_year_corrects_the_simulation_on_top_of_its_slot() -> None:
    """Two points of quarters, each unbiased over the year (a Q4 over, a Q1 under by
    as much), so the slots' own biases are 1; Q4s came in 20% and 10% above what was said."""

    def rec(point: int, season: int, came: float) -> Record:
        r = _rec([100.0], [NAN], [came])
        return dataclasses.replace(r, slot=("quarter", point, 0), season=season)

    known = [rec(0, 3, 120.0), rec(0, 0, 80.0), rec(28, 3, 110.0), rec(28, 0, 90.0)]
    assert combine(known[:2]).sim_bias == pytest.approx(1.0) and combine(
        known[2:]
    ).sim_bias == pytest.approx(1.0)
    mix = Combination(sim_bias=1.05, commit_bias=0.9, weight=0.3, scale=1.2, periods=2)
    q4 = with_season(mix, known, season=3, prior=3.0)
    factor = np.exp((np.log(1.2) + np.log(1.1)) / (2 + 3.0))
    assert q4.season == pytest.approx(factor) and q4.sim_bias == pytest.approx(1.05 * factor)
    assert (q4.commit_bias, q4.weight, q4.scale, q4.periods) == (0.9, 0.3, 1.2, 2)
    q1 = with_season(mix, known, season=0, prior=3.0)
    assert q1.season == pytest.approx(np.exp((np.log(0.8) + np.log(0.9)) / 5.0)) and q1.season < 1.0
    assert with_season(mix, known, season=1) == mix  # no Q2 seen yet: nothing to learn
    assert [season_of(dt.date(2026, m, 1)) for m in (1, 3, 4, 10, 12)] == [0, 0, 1, 3, 3]


def test_symmetric_level_map_keeps_the_median_and_narrows_or_widens() -> None:
    narrow = LevelMap(symmetric=True).fit(
        np.linspace(0.3, 0.7, 200)
    )  # actuals always near the centre
    lv = narrow.levels(np.array([0.1, 0.5, 0.9]))
    assert lv[1] == pytest.approx(0.5, abs=1e-3) and 0.1 < lv[0] < 0.5 < lv[2] < 0.9
    wide = LevelMap(symmetric=True).fit(np.r_[np.full(100, 0.01), np.full(100, 0.99)])
    lv = wide.levels(np.array([0.1, 0.5, 0.9]))
    assert lv[1] == pytest.approx(0.5, abs=1e-3) and lv[0] < 0.1 and lv[2] > 0.9
    skewed = LevelMap(symmetric=True).fit(np.full(200, 0.05))  # off-centre: read as too narrow only
    assert skewed.levels(np.array([0.5]))[0] == pytest.approx(0.5, abs=1e-3)


def _two_teams() -> tuple[Segments, SnapshotDraws]:
    """Three owners in two teams of one region; owner 2's team has draws 0..999."""
    seg = Segments(["a", "b", "c"], np.array([0, 0, 1]), np.array([0, 0, 0]), ["t0", "t1"], ["r0"])
    c = np.arange(1000.0)
    d = np.column_stack([np.full(1000, 5.0), np.full(1000, 5.0), c])
    return seg, SnapshotDraws(d, np.zeros(3), d.mean(axis=0), np.zeros(3), np.zeros(0))


def test_each_kind_of_segment_is_read_at_its_own_levels() -> None:
    seg, s = _two_teams()
    kinds = ("company", "region", "team", "rep")
    levels = {
        "company": np.array([0.1, 0.5, 0.9]),
        "region": np.array([0.1, 0.5, 0.9]),
        "team": np.array([0.2, 0.5, 0.8]),
        "rep": np.array([0.3, 0.5, 0.7]),
    }
    out = summarise(seg, s, levels, {k: CRPS_LEVELS for k in kinds}, None, kinds)
    t1 = out.filter(segment="t1").row(0, named=True)
    rep = out.filter(segment="c").row(0, named=True)
    company = out.filter(segment_kind="company").row(0, named=True)
    c = np.arange(1000.0)
    assert (t1["p10"], t1["p90"]) == pytest.approx(tuple(np.quantile(c, [0.2, 0.8])))
    assert (rep["p10"], rep["p90"]) == pytest.approx(tuple(np.quantile(c, [0.3, 0.7])))
    assert (company["p10"], company["p90"]) == pytest.approx(
        tuple(np.quantile(c + 10.0, [0.1, 0.9]))
    )
    # One set of draws: every kind's P50 and expected value is the same segment's.
    assert t1["p50"] == rep["p50"] == pytest.approx(np.median(c))
    assert company["expected"] == pytest.approx(t1["expected"] + 10.0)


def test_segment_pits_place_each_actual_in_its_own_draws() -> None:
    seg, s = _two_teams()
    u = segment_pits(seg, s, np.array([5.0, 0.0, 250.0]))
    assert u["rep"] == pytest.approx(
        [0.5, 0.0, 0.2505]
    )  # ties count half; 250 is above 250 of 1000 draws
    assert u["team"] == pytest.approx([0.0, 0.2505])  # team 0 always draws 10 and got 5
    assert u["company"] == pytest.approx([0.2455])  # 10 + c: 245 draws below 255, one equal
    assert u["region"] == pytest.approx(u["company"])


def test_new_business_goes_only_to_owners_who_can_win_it() -> None:
    """A rep who left, a manager and the catch-all owner get none of the not-yet-created
    revenue; the working reps share all of it, by their recent wins and an equal prior."""
    won = dt.datetime(2025, 11, 20)
    actuals = pl.DataFrame(
        {
            "period_kind": ["quarter"] * 3,
            "owner_id": ["a", "b", "gone"],
            "amount": [300.0, 100.0, 600.0],
            "won_at": [won] * 3,
            "created_at": [dt.datetime(2025, 10, 5)] * 3,
        }
    )
    owners = ["a", "b", "gone", "manager", "(none)"]
    working = np.array([True, True, False, False, False])
    shares = rep_shares(actuals, owners, dt.datetime(2026, 1, 1), working=working)
    # 400 won by the working reps, a prior of 0.5 x 400 / 2 = 100 each.
    assert shares == pytest.approx([400 / 600, 200 / 600, 0.0, 0.0, 0.0])
    everyone = rep_shares(actuals, owners, dt.datetime(2026, 1, 1))
    assert (everyone > 0).all() and everyone.sum() == pytest.approx(1.0)
    seg = Segments(
        owners, np.array([0, 0, 0, 1, 2]), np.zeros(5, dtype=int), ["t", "m", "(none)"], ["r"]
    )
    deals = pl.DataFrame({"p": [0.5], "value": [10.0], "owner_idx": [0]})
    s = draw_snapshot(
        seg,
        deals,
        np.zeros(5),
        np.full(200, 1000.0),
        shares,
        rho_c=0.0,
        rho_t=0.0,
        rng=np.random.default_rng(1),
    )
    new = s.owner_draws - s.so_far[None, :]
    assert (new[:, 2:] == 0.0).all()  # exactly none, not a sliver
    assert (new[:, 1] > 0).all()
    # Every draw: all 1,000 of new business, plus the one deal's 10 when it wins.
    assert set(np.round(new.sum(axis=1) - 1000.0, 6)) <= {0.0, 10.0}


def test_simulated_deals_sum_into_their_owners() -> None:
    owner = np.array([3, 0, 3, 1, 0, 3])  # unsorted, owner 2 has no deal
    value = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    sure = simulate(
        np.ones(6),
        value,
        owner,
        np.zeros(6, dtype=int),
        4,
        rho_c=0.1,
        rho_t=0.05,
        draws=50,
        rng=np.random.default_rng(0),
    )[0]
    assert (sure == np.array([18.0, 8.0, 0.0, 37.0])[None, :]).all()
    never = simulate(
        np.zeros(6),
        value,
        owner,
        np.zeros(6, dtype=int),
        4,
        rho_c=0.1,
        rho_t=0.05,
        draws=50,
        rng=np.random.default_rng(0),
    )[0]
    assert (never == 0.0).all()
    half, _ = simulate(
        np.full(6, 0.5),
        value,
        owner,
        np.zeros(6, dtype=int),
        4,
        rho_c=0.0,
        rho_t=0.0,
        draws=20000,
        rng=np.random.default_rng(0),
    )
    assert half.mean(axis=0) == pytest.approx([9.0, 4.0, 0.0, 18.5], rel=0.03)
    # Every draw's owner sums are sums of whole deals: owner 1 has one deal of 8.
    assert set(np.unique(half[:, 1])) <= {0.0, 8.0}


def _whole(
    p: np.ndarray,
    value: np.ndarray,
    owner: np.ndarray,
    team: np.ndarray,
    n_owners: int,
    rng: np.random.Generator,
    draws: int,
    covariance: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``simulate`` written on whole arrays, every draw at once, as it first was."""
    from scipy.special import ndtri

    out = np.zeros((draws, n_owners))
    threshold = ndtri(np.clip(p, 1e-9, 1 - 1e-9)).astype(np.float32)
    f = rng.standard_normal((draws, 1), dtype=np.float32) * np.float32(np.sqrt(0.05))
    g = rng.standard_normal((draws, int(team.max()) + 1), dtype=np.float32) * np.float32(
        np.sqrt(0.03)
    )
    z = rng.standard_normal((draws, len(p)), dtype=np.float32)
    z *= np.float32(np.sqrt(1.0 - 0.05 - 0.03))
    z += f
    z += g[:, team]
    order = np.argsort(owner, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(owner[order]) != 0])
    won = (z < threshold) * value
    out[:, owner[order][starts]] = np.add.reduceat(won[:, order], starts, axis=1)
    if not covariance:
        return out, np.zeros(0)
    total = won.sum(axis=1)
    return out, (won - won.mean(axis=0)).T @ (total - total.mean()) / max(draws - 1, 1)


@pytest.mark.parametrize("block", [1, 7, 32, 10_000])
@pytest.mark.parametrize("covariance", [True, False])
def test_draws_in_blocks_are_the_whole_arrays_draws(
    block: int, covariance: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block of draws at a time gives the numbers drawn all at once, to the bit, and
    leaves the stream where it would (the snapshot draws new business from it next); the
    deals' covariances with the total, updated block by block, are the whole matrix's
    up to rounding (a different order of summing)."""
    monkeypatch.setattr(_simulate, "_BLOCK", block)
    rs = np.random.default_rng(3)
    n, owners, draws = 700, 23, 101  # 101 draws: a last block shorter than the others
    p, value = rs.beta(0.5, 3, n), rs.lognormal(9, 1.5, n)
    owner = rs.integers(0, owners, n)
    team = rs.integers(0, 4, owners)[owner]
    a, b = np.random.default_rng([7, 1]), np.random.default_rng([7, 1])
    got = simulate(
        p,
        value,
        owner,
        team,
        owners,
        rho_c=0.05,
        rho_t=0.03,
        draws=draws,
        rng=a,
        covariance=covariance,
    )
    want = _whole(p, value, owner, team, owners, b, draws, covariance)
    assert got[0].shape == (draws, owners) and got[0].any()
    assert np.array_equal(got[0], want[0])
    assert len(got[1]) == (n if covariance else 0)
    assert np.allclose(got[1], want[1], rtol=1e-9, atol=1e-12 * np.abs(want[1]).max(initial=0))
    if covariance:  # a covariance worth the name: big deals move the total most
        assert np.corrcoef(got[1], value**2 * p * (1 - p))[0, 1] > 0.9
    assert a.random() == b.random()


def test_a_team_commit_is_its_submitters_calls_or_nothing() -> None:
    users = pl.DataFrame(
        {"user_id": ["a", "b", "c"], "team": ["T1", "T1", "T2"], "region": ["R", "R", "R"]}
    )
    seg = Segments.from_users(users)
    owners = np.full(len(seg.owners), NAN)
    owners[seg.owners.index("a")] = 100.0  # b in the same team has not submitted, nor has c
    team = _team_commit(seg, owners)
    assert team[seg.teams.index("T1")] == pytest.approx(100.0)
    assert np.isnan(team[seg.teams.index("T2")])  # nobody there submitted: the simulation alone
    assert np.isnan(_team_commit(seg, None)).all()


def test_live_offsets_learn_from_the_fixed_point_before_them() -> None:
    assert [anchor("month", d) for d in (0, 13, 14, 30)] == [0, 0, 14, 14]
    assert [anchor("quarter", d) for d in (27, 28, 60, 91)] == [0, 28, 56, 56]
    assert slot("quarter", dt.date(2026, 7, 1), 50) == ("quarter", 28, 0)
    live = live_snapshots(dt.datetime(2026, 3, 30, 17))
    past = same_point_in_past(live, dt.date(2025, 12, 1))
    months = past.filter(period_kind="month").sort("period_start")
    assert months["period_start"].to_list() == [
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]
    assert set(months["offset"]) == {29}
    # Day 29 of February 2026 does not exist: held at its last day, at the live time of day.
    assert months["moment"].to_list()[-1] == dt.datetime(2026, 2, 28, 17)
    assert (months["moment"].dt.date() < months["period_end"]).all()


def test_blank_wins_are_valued_at_the_mean_of_earlier_wins() -> None:
    t = [dt.datetime(2026, 1, d) for d in range(1, 8)]
    won = pl.DataFrame(
        {
            "won_at": t,
            "raw_amount": [10.0, 1000.0, 10.0, 1000.0, 10.0, None, 1.0],
            "product": ["p"] * 7,
        }
    )
    typical = typical_amount(won)
    blank = with_typical(won.filter(pl.col("raw_amount").is_null()), typical, "won_at")
    # Five earlier known wins: (10 + 1000 + 10 + 1000 + 10) / 5 (the geometric mean would be 63).
    assert blank["typical"][0] == pytest.approx(406.0)


def test_new_business_ignores_the_years_before_any_and_keeps_its_spread_sane() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[
        np.zeros(12), 1e5 * np.exp(rng.normal(0, 0.2, 26))
    ]  # a CRM empty for a year, then steady
    nb = NewBusiness("month").fit(y)
    assert (
        nb.n_ == 26 and nb.method_ == "ets_seasonal"
    )  # the 12 empty months left out; 26 >= 24: seasonal
    assert nb.sigma_ <= 1.0
    draws = nb.sample(4000, rng)
    assert 5e4 < np.median(draws) < 2e5 and draws.max() < 50 * np.median(draws)


def test_new_business_that_is_often_nothing_keeps_its_mean() -> None:
    rng = np.random.default_rng(1)
    y = np.where(rng.random(40) < 0.5, 0.0, 2e4 * np.exp(rng.normal(0, 0.5, 40)))
    y[0] = 1e4  # so nothing is trimmed
    nb = NewBusiness("quarter").fit(y)
    assert nb.method_ == "hurdle" and nb.p_ == pytest.approx(np.mean(y > 0))
    draws = nb.sample(20000, rng)
    assert np.mean(draws == 0) == pytest.approx(1 - nb.p_, abs=0.02)
    # Within a factor of 1.5 of the series' own mean (a log-normal through the zeros
    # centred near log(1) and forecast almost nothing).
    assert y.mean() / 1.5 < draws.mean() < 1.5 * y.mean()
