"""Size the whole company's range from what a sample of its teams taught.

A sampled backtest (``_sample``) learns its range correction (``LevelMap``) from where
past outcomes fell in the sample's own simulation: in units of the simulation's spread.
The two spreads do not shrink alike from a sample of teams to the whole company. The
simulation's relative spread falls with every team added, as a sum of independent
draws does; the real error is mostly a swing the teams share, which adding teams does
not average away. Read at the sample's levels, the whole company's range came out too
narrow (docs/forecast.md, Known limits, has the measures).

So the whole company's relative error is taken to be as large as the sample's: a past
outcome at z = Phi^-1(PIT) of the sample's simulation is moved to
z * rel_sample / rel_whole, the rel being the two simulations' relative spreads (half
their 16-84% range over their mean), both read from the snapshot being forecast, drawn
over every owner. The company's correction is learned from the moved PITs, and each
region's the same way (its sampled teams against all of its teams, the factors pooled
as the regions' level map is). Teams and reps keep the sample's: whole teams are
sampled.

Why not estimate how much of the error is shared and shrink the rest: the products of
different teams' errors say it, but from a sample of a few teams that estimate is
noise. On the generated mid company (8 of 30 teams) it put the shared part of the
monthly error at nothing, while the errors of the sampled teams and of the other
22 moved together (correlation 0.5). Taking all of the sample's relative error errs
wide where team errors are independent, by at most the square root of the
company's teams over the sample's: the factor is then that ratio itself. It is never
below 1: the sample's own correction is the narrowest the whole company gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from revstack.agents.forecast._calibrate import LevelMap
from revstack.agents.forecast._snapshot import Segments, SnapshotDraws, spread

__all__ = ["stretch", "widen"]

# PITs of 0 or 1 (an outcome outside every draw) are read as half a draw inside, so
# that their z is finite; the backtest's past snapshots have 1,000 draws.
_EDGE = 0.5 / 1000


def _relative_spread(total: np.ndarray) -> float:
    mean = float(total.mean())
    return spread(total) / mean if mean > 0 else 0.0


def stretch(draws: np.ndarray, sampled: np.ndarray) -> float | None:
    """How far a sample's z stretch for one segment: ``draws`` (draws x owners) of the
    segment's owners, ``sampled`` per owner whether their team is in the sample. None
    when the segment has no sampled owner or nothing drawn."""
    if not sampled.any():
        return None
    whole = _relative_spread(draws.sum(axis=1))
    part = _relative_spread(draws[:, sampled].sum(axis=1))
    if whole <= 0 or part <= 0:
        return None
    return max(part / whole, 1.0)


def widen(
    maps: Mapping[str, LevelMap],
    past: Sequence[Mapping[str, np.ndarray]],
    draws: SnapshotDraws,
    seg: Segments,
    sampled: np.ndarray,
) -> tuple[dict[str, LevelMap], dict[str, float]]:
    """``maps`` with the company's and regions' corrections learned from the sample's
    PITs (``past``, one mapping of segment kind to PITs per scored snapshot) moved to
    the whole company's scale, and the factor of each.

    ``draws``: the snapshot being forecast, over every owner of ``seg``, combined;
    ``sampled``: per owner of ``seg``, whether their team is in the sample."""
    out, factors = dict(maps), dict[str, float]()
    if not past:
        return out, factors
    d = draws.owner_draws
    found: dict[str, float | None] = {}
    if "company" in maps:
        found["company"] = stretch(d, sampled)
    if "region" in maps:
        each = [
            f
            for r in range(len(seg.regions))
            if (f := stretch(d[:, seg.region_of == r], sampled[seg.region_of == r])) is not None
        ]
        found["region"] = float(np.sqrt(np.mean(np.square(each)))) if each else None
    for kind, f in found.items():
        if f is None:
            continue
        u = np.clip(np.concatenate([p[kind] for p in past]), _EDGE, 1.0 - _EDGE)
        m = maps[kind]
        out[kind] = LevelMap(prior=m.prior, floor=m.floor, symmetric=m.symmetric).fit(
            ndtr(f * ndtri(u))
        )
        factors[kind] = f
    return out, factors
