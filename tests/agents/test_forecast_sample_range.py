"""The whole company's range from a sample of its teams (``_sample_range``): the
sample's range correction is moved by how much wider the sample's simulation is,
relative to its mean, than the whole company's."""

from __future__ import annotations

import numpy as np
import pytest

from revstack.agents.forecast._calibrate import LevelMap
from revstack.agents.forecast._sample_range import stretch, widen
from revstack.agents.forecast._snapshot import Segments, SnapshotDraws

_Q = np.array([0.1, 0.5, 0.9])


def _independent(owners: int, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """Each owner wins about 100, more or less, apart from every other."""
    return np.random.default_rng(seed).exponential(100.0, (draws, owners))


def _shared(owners: int, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """Every owner wins as much as every other in each draw."""
    return np.repeat(_independent(1, draws, seed), owners, axis=1)


def test_independent_owners_stretch_by_the_root_of_the_company_over_the_sample() -> None:
    sampled = np.arange(32) < 8
    f = stretch(_independent(32), sampled)
    assert f == pytest.approx(2.0, rel=0.1)  # sqrt(32 / 8)


def test_owners_who_move_together_are_not_stretched() -> None:
    assert stretch(_shared(32), np.arange(32) < 8) == pytest.approx(1.0)


def test_never_narrower_than_the_sample_and_nothing_without_a_sampled_owner() -> None:
    # the sample is everyone but one owner, who varies more than all of them together
    d = 100.0 + _independent(32) / 100.0
    d[:, 0] = _independent(1, seed=1)[:, 0] * 50.0
    assert stretch(d, np.arange(32) > 0) == 1.0
    assert stretch(_independent(32), np.zeros(32, dtype=bool)) is None


def _seg(owners: int, regions: int) -> Segments:
    return Segments(
        [f"u{i}" for i in range(owners)],
        np.arange(owners) // 4,  # teams of four
        np.arange(owners) % regions,
        [f"t{i}" for i in range(owners // 4)],
        [f"r{i}" for i in range(regions)],
    )


def _maps(past: list[dict[str, np.ndarray]]) -> dict[str, LevelMap]:
    return {
        k: LevelMap(symmetric=True).fit(np.concatenate([p[k] for p in past]))
        for k in ("company", "region", "team", "rep")
    }


def _snapshot(d: np.ndarray) -> SnapshotDraws:
    zero = np.zeros(d.shape[1])
    return SnapshotDraws(d, zero, d.mean(axis=0), zero, np.zeros(0))


def test_widen_moves_the_company_and_regions_and_keeps_teams_and_reps() -> None:
    rng = np.random.default_rng(1)
    # a sample whose own range was right: its past outcomes fell evenly in its draws
    past = [{k: rng.random(6) for k in ("company", "region", "team", "rep")} for _ in range(40)]
    maps = _maps(past)
    seg = _seg(32, 2)
    sampled = seg.team_of < 2  # two of eight teams
    got, factors = widen(maps, past, _snapshot(_independent(32)), seg, sampled)
    assert factors["company"] == pytest.approx(2.0, rel=0.1)
    assert factors["region"] == pytest.approx(2.0, rel=0.15)
    for kind in ("company", "region"):
        lo, mid, hi = got[kind].levels(_Q)
        was_lo, _, was_hi = maps[kind].levels(_Q)
        # read further out in the whole company's draws, around the same middle
        assert lo < was_lo - 0.03 and hi > was_hi + 0.03
        assert mid == pytest.approx(0.5, abs=1e-9)
    assert got["team"] is maps["team"] and got["rep"] is maps["rep"]


def test_widen_leaves_a_company_that_moves_as_one_as_the_sample_taught() -> None:
    rng = np.random.default_rng(2)
    past = [{k: rng.random(6) for k in ("company", "region", "team", "rep")} for _ in range(40)]
    maps = _maps(past)
    seg = _seg(32, 2)
    got, factors = widen(maps, past, _snapshot(_shared(32)), seg, seg.team_of < 2)
    assert factors["company"] == pytest.approx(1.0)
    np.testing.assert_allclose(got["company"].levels(_Q), maps["company"].levels(_Q), atol=2e-3)


def test_nothing_learned_nothing_moved() -> None:
    maps = _maps([{k: np.array([0.5]) for k in ("company", "region", "team", "rep")}])
    seg = _seg(8, 2)
    got, factors = widen(maps, [], _snapshot(_independent(8)), seg, seg.team_of < 1)
    assert factors == {} and all(got[k] is maps[k] for k in maps)
