"""Combine the simulation with the reps' commit, team by team, and size the range.

The simulation knows the CRM; the reps know things the CRM does not (a buyer's tone on
a call, a budget freeze heard about). A team's commit is a second forecast whose errors
are only partly those of the simulation, so a weighted mean of the two beats either
(Bates & Granger 1969). It is done per team, not for the company: a rep's private
knowledge is about their own deals, and at the company level both forecasts' errors are
mostly the same common swings (docs/forecast.md, How it works, step 5, compares the
two). What the combination may know is what the backtest had seen by the snapshot's
moment, at the same point of the same kind of period (for months, also the same month
of the quarter: reps over-call the first two months and under-call the third):

- each forecast's bias on the part still to come (what came after the snapshot over
  what was forecast for it, a ratio of sums over teams and periods, shrunk toward 1
  while there are few periods);
- the weight of the debiased commit that minimised the past squared errors of the mix
  over every team and period, ``(v_a - c) / (v_a + v_c - 2c)``, clipped to [0, 1] and
  shrunk toward 0 (the simulation alone) with ``prior_weight`` pseudo-periods;
- how wide the company's range must be: its past errors in units of the simulation's
  own spread, shrunk toward 1 with ``prior_scale`` pseudo-periods;
- for quarters, the simulation's bias particular to the quarter of the year
  (``with_season``): a deal model trained on one to three of each quarter learns the
  fourth quarter's push and the first quarter's hangover only in part (docs/forecast.md,
  How it works, step 5), and a quarter's slot pools all four.

``Combination.apply`` moves each team's uncertain part (what is not won yet) by one
factor per draw, so owners keep their share of each draw and segments still add up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np

from revstack.agents.forecast._periods import anchor
from revstack.agents.forecast._snapshot import SnapshotDraws

__all__ = ["Combination", "Record", "combine", "season_of", "slot", "with_season"]


def slot(kind: str, period_start: dt.date, offset: int) -> tuple[str, int, int]:
    """Which past snapshots a snapshot learns from: same kind and point (and month of
    the quarter, for months). A live snapshot between fixed points learns from the
    latest point before it."""
    return kind, anchor(kind, offset), (period_start.month - 1) % 3 if kind == "month" else 0


def season_of(period_start: dt.date) -> int:
    """The quarter of the year a period is in, 0-3."""
    return (period_start.month - 1) // 3


@dataclass(frozen=True)
class Record:
    """One scored snapshot, per team, as the simulation issued it (before combining)."""

    slot: tuple[str, int, int]
    period_end: dt.date
    won: np.ndarray  # per team: won so far at the moment
    mean: np.ndarray  # per team: the simulation's expected total
    commit: np.ndarray  # per team: the reps' commit at the moment (NaN: nobody submitted)
    actual: np.ndarray  # per team
    spread: float  # the simulation's spread of the company total (half its 16-84% range)
    season: int = 0  # the quarter of the year the period is in (``season_of``)


@dataclass(frozen=True)
class Combination:
    """How one snapshot's draws are moved: bias factors, commit weight and scale."""

    sim_bias: float = 1.0
    commit_bias: float = 1.0
    weight: float = 0.0
    scale: float = 1.0
    periods: int = 0
    season: float = (
        1.0  # the part of ``sim_bias`` that is the quarter of the year's (``with_season``)
    )

    def centre(self, won: np.ndarray, mean: np.ndarray, commit: np.ndarray) -> np.ndarray:
        """Combined expected total per team (the simulation where there is no commit)."""
        agent = won + self.sim_bias * (mean - won)
        has = np.isfinite(commit)
        called = won + self.commit_bias * np.maximum(np.where(has, commit, 0.0) - won, 0.0)
        return np.where(has, (1.0 - self.weight) * agent + self.weight * called, agent)

    def apply(self, s: SnapshotDraws, team_of: np.ndarray, commit: np.ndarray) -> SnapshotDraws:
        """The snapshot's draws moved to the combined centres and scaled around them.

        ``team_of``: team index per owner; ``commit``: per team."""
        n_teams = len(commit)
        member = np.zeros((len(team_of), n_teams))
        member[np.arange(len(team_of)), team_of] = 1.0
        rest = s.owner_draws - s.so_far[None, :]  # draws x owners: not won yet
        team_rest = rest @ member  # draws x teams
        won = s.so_far @ member
        mean = won + team_rest.mean(axis=0)
        target = self.centre(won, mean, commit) - won
        target = np.maximum(
            target[None, :] + self.scale * (team_rest - team_rest.mean(axis=0)), 0.0
        )
        factor = np.divide(target, team_rest, out=np.zeros_like(target), where=team_rest > 0)
        moved = rest * (factor @ member.T)
        # A draw with nothing to come in a team that must have something: the usual split.
        usual = s.pipeline_mean + s.new_mean
        team_usual = usual @ member
        size = np.bincount(team_of, minlength=n_teams)[team_of]
        share = np.where(
            team_usual[team_of] > 0,
            usual / np.where(team_usual[team_of] > 0, team_usual[team_of], 1.0),
            1.0 / size,
        )  # a team with nothing expected at all: equal shares
        empty = np.where(team_rest > 0, 0.0, target)
        moved += (empty @ member.T) * share[None, :]
        # Parts keep their proportions within each owner, so parts add up to the expected.
        ratio = np.divide(moved.mean(axis=0), usual, out=np.ones_like(usual), where=usual > 0)
        return SnapshotDraws(
            s.so_far[None, :] + moved,
            s.so_far,
            s.pipeline_mean * ratio,
            s.new_mean * ratio,
            s.deal_cov,
        )


def _bias(came: np.ndarray, forecast: np.ndarray, shrink: float) -> float:
    ratio = float(came.sum()) / max(float(forecast.sum()), 1.0)
    return max(ratio, 1e-3) ** shrink


_PRIOR_BIAS = 3.0  # pseudo-periods of no bias, for the simulation's and the commit's bias


def _sim_bias(past: list[Record], prior_bias: float) -> float:
    """What came after the snapshots over what the simulation said would, shrunk toward 1."""
    n = len(past)
    y, won, mean = (
        np.concatenate([getattr(r, f) for r in past]) for f in ("actual", "won", "mean")
    )
    return _bias(np.maximum(y - won, 0.0), mean - won, n / (n + prior_bias))


def with_season(
    mix: Combination, known: list[Record], season: int, *, prior: float = 3.0
) -> Combination:
    """``mix`` with the simulation's bias in one quarter of the year on top of its slot's.

    ``known``: scored snapshots of every point of quarters whose periods are over. Each
    one in ``season`` gives the log of what came over what its slot's bias (learned
    from all of ``known``) made of the simulation; their sum over their number plus
    ``prior`` pseudo-snapshots is the factor's log. The weight and scale are left as
    they are: they were fitted on quarters of every season."""
    slots: dict[tuple[str, int, int], list[Record]] = {}
    for r in known:
        slots.setdefault(r.slot, []).append(r)
    slot_bias = {k: _sim_bias(v, _PRIOR_BIAS) for k, v in slots.items()}
    logs = [
        np.log(
            max(float(r.actual.sum() - r.won.sum()), 1.0)
            / max(slot_bias[r.slot] * float(r.mean.sum() - r.won.sum()), 1.0)
        )
        for r in known
        if r.season == season
    ]
    if not logs:
        return mix
    factor = float(np.exp(np.sum(logs) / (len(logs) + prior)))
    return dataclasses.replace(mix, sim_bias=mix.sim_bias * factor, season=factor)


def combine(
    past: list[Record],
    *,
    prior_bias: float = _PRIOR_BIAS,
    prior_weight: float = 4.0,
    prior_scale: float = 4.0,
) -> Combination:
    """The combination for a snapshot, from the scored snapshots of its slot."""
    n = len(past)
    if n == 0:
        return Combination()
    y, won, mean, commit = (
        np.concatenate([getattr(r, f) for r in past]) for f in ("actual", "won", "mean", "commit")
    )
    came = np.maximum(y - won, 0.0)
    sim_bias = _sim_bias(past, prior_bias)
    agent = won + sim_bias * (mean - won)
    has = np.isfinite(commit)
    k = len({i for i, r in enumerate(past) if np.isfinite(r.commit).any()})
    weight, commit_bias = 0.0, 1.0
    if k >= 2:
        call = np.maximum(commit[has] - won[has], 0.0)
        commit_bias = _bias(came[has], call, k / (k + prior_bias))
        ea, ec = agent[has] - y[has], won[has] + commit_bias * call - y[has]
        va, vc, cv = float(ea @ ea), float(ec @ ec), float(ea @ ec)
        denom = va + vc - 2.0 * cv
        raw = float(np.clip((va - cv) / denom, 0.0, 1.0)) if denom > 0 else 0.0
        weight = raw * k / (k + prior_weight)
    mix = Combination(sim_bias, commit_bias, weight)
    z2 = (
        np.array(
            [
                (r.actual.sum() - mix.centre(r.won, r.mean, r.commit).sum()) / max(r.spread, 1.0)
                for r in past
            ]
        )
        ** 2
    )
    scale = float(np.sqrt((z2.sum() + prior_scale) / (n + prior_scale)))
    return Combination(sim_bias, commit_bias, weight, scale, n)
