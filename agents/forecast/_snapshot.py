"""One snapshot: draw the period's outcomes, sum them into segments, read the range.

Per owner, won revenue in a draw = won so far + the open deals won in that draw
(``_simulate``) + that owner's part of the not-yet-created revenue drawn for the
company (split with a Dirichlet around the owners' recent shares, so the company
draw is exactly the sum of its parts). Teams, regions and the company are sums of
owners. Quantiles are read at the levels the backtest correction gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.agents.forecast._calibrate import pit
from revstack.agents.forecast._scores import crps_from_quantiles
from revstack.agents.forecast._simulate import simulate

__all__ = [
    "Segments",
    "SnapshotDraws",
    "draw_snapshot",
    "segment_pits",
    "spread",
    "summarise",
    "CRPS_LEVELS",
]

CRPS_LEVELS = np.arange(0.025, 1.0, 0.05)
_DIRICHLET = 60.0  # how tightly new business follows the owners' usual shares


@dataclass(frozen=True)
class Segments:
    """Owners and the segments they roll up into."""

    owners: list[str]
    team_of: np.ndarray  # owner index -> team index
    region_of: np.ndarray
    teams: list[str]
    regions: list[str]

    @classmethod
    def from_users(cls, users: pl.DataFrame) -> Segments:
        u = users.select(
            "user_id", pl.col("team").fill_null("(none)"), pl.col("region").fill_null("(none)")
        )
        u = pl.concat(
            [
                u.sort("user_id"),
                pl.DataFrame({"user_id": ["(none)"], "team": ["(none)"], "region": ["(none)"]}),
            ]
        )
        teams = sorted(u["team"].unique().to_list())
        regions = sorted(u["region"].unique().to_list())
        ti, ri = {t: i for i, t in enumerate(teams)}, {r: i for i, r in enumerate(regions)}
        return cls(
            u["user_id"].to_list(),
            np.array([ti[t] for t in u["team"]]),
            np.array([ri[r] for r in u["region"]]),
            teams,
            regions,
        )

    def index(self, owners: pl.Series) -> np.ndarray:
        pos = {o: i for i, o in enumerate(self.owners)}
        none = pos["(none)"]
        return (
            owners.cast(pl.String)
            .replace_strict(pos, default=none, return_dtype=pl.Int64)
            .fill_null(none)
            .to_numpy()
        )


@dataclass
class SnapshotDraws:
    owner_draws: np.ndarray  # draws x owners: total won in the period
    so_far: np.ndarray  # owners
    pipeline_mean: np.ndarray  # owners
    new_mean: np.ndarray  # owners
    deal_cov: np.ndarray  # open deals: covariance with the company total


def draw_snapshot(
    seg: Segments,
    deals: pl.DataFrame,
    so_far: np.ndarray,
    new_total: np.ndarray,
    shares: np.ndarray,
    *,
    rho_c: float,
    rho_t: float,
    rng: np.random.Generator,
    covariance: bool = True,
) -> SnapshotDraws:
    """``deals``: open deals with ``p``, ``value`` and ``owner_idx``; ``new_total``: company
    draws of not-yet-created revenue; ``shares``: per-owner share of it; ``covariance``:
    whether to compute each deal's covariance with the total (``deal_cov``, else empty)."""
    n = len(seg.owners)
    draws = len(new_total)
    owner = deals["owner_idx"].to_numpy()
    pipe, cov = simulate(
        deals["p"].to_numpy(),
        deals["value"].to_numpy(),
        owner,
        seg.team_of[owner],
        n,
        rho_c=rho_c,
        rho_t=rho_t,
        draws=draws,
        rng=rng,
        covariance=covariance,
    )
    split = np.zeros((draws, n))
    takes = shares > 0  # owners who can win new business get all of it; the rest exactly none
    if takes.sum() > 1:
        split[:, takes] = rng.dirichlet(shares[takes] * _DIRICHLET, draws)
    else:
        split[:, np.flatnonzero(takes) if takes.any() else 0] = 1.0
    new = split * new_total[:, None]
    return SnapshotDraws(
        so_far[None, :] + pipe + new, so_far, pipe.mean(axis=0), new.mean(axis=0), cov
    )


def _segment_draws(
    seg: Segments, d: np.ndarray, kinds: tuple[str, ...]
) -> tuple[list[tuple[str, str]], np.ndarray]:
    cols, names = [], []
    if "company" in kinds:
        cols.append(d.sum(axis=1, keepdims=True))
        names.append(("company", "company"))
    for kind, of, labels in (
        ("region", seg.region_of, seg.regions),
        ("team", seg.team_of, seg.teams),
    ):
        if kind in kinds:
            m = np.zeros((len(seg.owners), len(labels)))
            m[np.arange(len(seg.owners)), of] = 1.0
            cols.append(d @ m)
            names += [(kind, lab) for lab in labels]
    if "rep" in kinds:
        cols.append(d)
        names += [("rep", o) for o in seg.owners]
    return names, np.hstack(cols)


def _sum_to(seg: Segments, v: np.ndarray, kinds: tuple[str, ...]) -> np.ndarray:
    return _segment_draws(seg, v[None, :], kinds)[1][0]


def spread(total: np.ndarray) -> float:
    """Half the 16-84% range: a standard deviation that one wild draw cannot inflate.

    Never less than half the mean absolute deviation. A total of a few lumpy deals can
    be the same in most draws (one deal at 10%: nothing in nine draws of ten), so its
    16-84% range is nothing while the total is far from certain, and an error counted
    in units of nothing is counted in the hundred thousands (the combination's scale,
    ``_combine``). For a normal total the floor is 0.4 of the range's half and for a
    skewed sum of many deals less, so it binds only where the range has collapsed."""
    lo, hi = np.quantile(total, [0.16, 0.84])
    floor = float(np.abs(total - total.mean()).mean()) / 2.0
    return max(float(hi - lo) / 2.0, floor)


def summarise(
    seg: Segments,
    s: SnapshotDraws,
    levels: dict[str, np.ndarray],
    crps_levels: dict[str, np.ndarray],
    actual_by_owner: np.ndarray | None,
    kinds: tuple[str, ...],
) -> pl.DataFrame:
    """Per segment: P10/P50/P90 read at the levels of its kind (``levels[kind]``, the
    backtest's correction for that kind of segment), expected value, its parts, the
    actual and CRPS (when the period is over). Segments with nothing in them are left out."""
    names, d = _segment_draws(seg, s.owner_draws, kinds)
    kind_of = np.array([k for k, _ in names])
    q = np.empty((3, d.shape[1]))
    grid = np.empty((len(CRPS_LEVELS), d.shape[1]))
    for kind in kinds:
        cols = kind_of == kind
        q[:, cols] = np.quantile(d[:, cols], levels[kind], axis=0)
        if actual_by_owner is not None:
            grid[:, cols] = np.quantile(d[:, cols], crps_levels[kind], axis=0)
    out = {
        "segment_kind": kind_of.tolist(),
        "segment": [n for _, n in names],
        "p10": q[0],
        "p50": q[1],
        "p90": q[2],
        "expected": d.mean(axis=0),
        "won_to_date": _sum_to(seg, s.so_far, kinds),
        "pipeline_expected": _sum_to(seg, s.pipeline_mean, kinds),
        "new_expected": _sum_to(seg, s.new_mean, kinds),
    }
    if actual_by_owner is not None:
        actual = _sum_to(seg, actual_by_owner, kinds)
        out["actual"] = actual
        out["crps"] = np.array(
            [crps_from_quantiles(grid[:, j], CRPS_LEVELS, actual[j]) for j in range(d.shape[1])]
        )
    else:
        out["actual"] = np.full(d.shape[1], np.nan)
        out["crps"] = np.full(d.shape[1], np.nan)
    df = pl.DataFrame(out).with_columns(pl.col("actual", "crps").fill_nan(None))
    busy = (
        (pl.col("segment_kind") == "company")
        | (pl.col("expected") > 0)
        | (pl.col("actual").fill_null(0) > 0)
    )
    return df.filter(busy)


def segment_pits(
    seg: Segments, s: SnapshotDraws, actual_by_owner: np.ndarray
) -> dict[str, np.ndarray]:
    """Per segment kind, where each busy segment's actual fell in its draws (the share of
    draws below it, ties counted half): what the next snapshots' range correction learns."""
    kinds = ("company", "region", "team", "rep")
    names, d = _segment_draws(seg, s.owner_draws, kinds)
    actual = _sum_to(seg, actual_by_owner, kinds)
    busy = (d.mean(axis=0) > 0) | (actual > 0)
    u = pit(d, actual)
    assert isinstance(u, np.ndarray)  # draws x segments: one share per segment
    kind_of = np.array([k for k, _ in names])
    return {k: u[(kind_of == k) & busy] for k in kinds}
