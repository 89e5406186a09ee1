"""Deal outcomes drawn together, so that a period's range is as wide as it really is.

Independent coin flips make the total of a few thousand deals far too certain: in a
real quarter deals win and lose together (the market, the quarter-end push, a team's
manager). Each deal's outcome comes from a Gaussian copula with a company factor and a
team factor: deal i is won in draw d when

    sqrt(rho_c) F_d + sqrt(rho_t) G_{d, team(i)} + sqrt(1 - rho_c - rho_t) e_{d,i} < Phi^-1(p_i)

so each deal still wins with its own probability. Draws are made per rep and summed
into teams, regions and the company, so every segment comes from the same draws and
the totals add up. ``pick_rho`` picks the factor loadings whose implied variance
of the won amount matches what past snapshots actually showed (Gauss–Hermite
quadrature over the factor, no simulation).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["simulate", "implied_variance", "pick_rho", "variance_grid", "RHO_GRID"]

RHO_GRID = np.array([0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.12, 0.16, 0.22, 0.3, 0.4])
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
# Draws simulated at once. A block's normals (32 draws of ~10,000 deals: 1.4 MB) stay in
# the cache through the steps that read them; the whole snapshot's (4,000 draws: 170 MB,
# and its won amounts 340 MB more, gathered once more into owner order) did not, and a
# live snapshot's draws took twice the CPU (docs/forecast.md, Speed).
_BLOCK = 32


def simulate(
    p: np.ndarray,
    value: np.ndarray,
    owner: np.ndarray,
    team: np.ndarray,
    n_owners: int,
    *,
    rho_c: float,
    rho_t: float,
    draws: int,
    rng: np.random.Generator,
    covariance: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Won amount per draw and owner (draws x n_owners) and each deal's covariance with
    the company total (the deal's share of the variance is that over the total's; empty
    without ``covariance``: only a live snapshot shows it, and it was a third of a
    backtest's drawing time)."""
    n = len(p)
    out = np.zeros((draws, n_owners))
    if n == 0:
        return out, np.zeros(0)
    n_teams = int(team.max()) + 1
    threshold = ndtri(np.clip(p, 1e-9, 1 - 1e-9))
    idio = np.float32(np.sqrt(max(1.0 - rho_c - rho_t, 1e-6)))
    # Single precision for the normals: a 1-in-10^7 shift in a threshold moves no win, and
    # z takes half the memory.
    f = rng.standard_normal((draws, 1), dtype=np.float32) * np.float32(np.sqrt(rho_c))
    g = rng.standard_normal((draws, n_teams), dtype=np.float32) * np.float32(np.sqrt(rho_t))
    # Sum each deal's column into its owner's: columns sorted by owner, summed in runs
    # (np.add.at is unbuffered and slower: docs/forecast.md, Speed).
    order = np.argsort(owner, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(owner[order]) != 0])
    into = owner[order][starts]
    threshold32 = threshold.astype(np.float32)
    if not covariance:  # the same won amounts, drawn straight into owner order
        team, threshold32, value = team[order], threshold32[order], value[order]
    # Each deal's covariance with the total, a block at a time (Chan, Golub and LeVeque's
    # pairwise update of co-moments): no draws x deals matrix of won amounts is held (on
    # mid's live snapshots 4,000 x 10,775, 345 MB, read three more times to centre and
    # multiply it).
    n_seen, mean_w, mean_t, comoment = 0, np.zeros(n), 0.0, np.zeros(n)
    for lo in range(0, draws, _BLOCK):
        hi = min(lo + _BLOCK, draws)
        z = rng.standard_normal((hi - lo, n), dtype=np.float32)
        if not covariance:
            z = z[:, order]
        z *= idio
        z += f[lo:hi]
        z += g[lo:hi, team]
        w = (z < threshold32) * value  # draws x deals
        if not covariance:
            out[lo:hi, into] = np.add.reduceat(w, starts, axis=1)
            continue
        out[lo:hi, into] = np.add.reduceat(w[:, order], starts, axis=1)
        t = w.sum(axis=1)
        k = hi - lo
        block_w, block_t = w.mean(axis=0), float(t.mean())
        # sum over the block's draws of (w - its mean)(t - its mean): the w mean drops out,
        # as the centred t sums to zero
        block_c = (t - block_t) @ w
        n_all = n_seen + k
        d_w, d_t = block_w - mean_w, block_t - mean_t
        comoment += block_c + d_w * (d_t * n_seen * k / n_all)
        mean_w += d_w * (k / n_all)
        mean_t += d_t * k / n_all
        n_seen = n_all
    if not covariance:
        return out, np.zeros(0)
    return out, comoment / max(draws - 1, 1)


def implied_variance(p: np.ndarray, value: np.ndarray, rho: float) -> float:
    """Variance of sum(value * won) under a one-factor copula with loading ``rho``."""
    if len(p) == 0:
        return 0.0
    if rho <= 0:
        return float(np.sum(value**2 * p * (1 - p)))
    t = ndtri(np.clip(p, 1e-9, 1 - 1e-9))
    cond = ndtr((t[None, :] - np.sqrt(rho) * _NODES[:, None]) / np.sqrt(1 - rho))  # nodes x deals
    mean_f = cond @ value
    within = (cond * (1 - cond)) @ (value**2)
    mean = float(_WEIGHTS @ mean_f)
    return float(_WEIGHTS @ within + _WEIGHTS @ (mean_f - mean) ** 2)


def variance_grid(p: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``implied_variance`` at every loading of ``RHO_GRID``, in one pass."""
    if len(p) == 0:
        return np.zeros(len(RHO_GRID))
    return np.array([implied_variance(p, value, float(rho)) for rho in RHO_GRID])


def pick_rho(grids: np.ndarray, sq: np.ndarray, *, default: float = 0.04) -> float:
    """The loading whose implied variance, summed over groups (rows of ``grids``), best
    matches the summed realised squared errors ``sq``. Fewer than 6 groups keep ``default``."""
    if len(sq) < 6:
        return default
    score = np.abs(np.log((sq.sum() + 1.0) / (grids.sum(axis=0) + 1.0)))
    return float(RHO_GRID[int(np.argmin(score))])
