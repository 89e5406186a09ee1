"""Correct the simulated range from the backtest's own residuals.

Where each past actual fell in its simulated distribution (its PIT: the share of draws
at or below it) says whether the ranges were too narrow, too wide or off-centre: were
they right, PITs would be uniform. ``LevelMap`` learns the empirical distribution G of
past PITs (shrunk toward the uniform while there are few) and reads the simulation at
level G^-1(q) instead of q, so that the corrected P10–P90 would have held about 80% of
past outcomes (probability recalibration, Kuleshov et al. 2018). Only periods that were
over by the snapshot's moment are used, so the correction knows nothing of the future.

With ``symmetric=True`` the map corrects the width only: each PIT counts with its
mirror image 1 - u, so G^-1(0.5) = 0.5 and the centre is left to what placed it
(``_combine``, which knows the bias at each point of the period; the map pools all
points of a period kind, whose biases differ).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LevelMap", "pit"]

_PRIOR = 6.0  # pseudo-observations of a uniform PIT


def pit(draws: np.ndarray, actual: np.ndarray | float) -> np.ndarray | float:
    """Share of draws below the actual, ties counted half: of one series of draws
    (a float), or of each column of a draws x segments matrix against its actual."""
    d = np.asarray(draws, dtype=float)
    a = np.asarray(actual, dtype=float)
    u = (np.sum(d < a, axis=0) + 0.5 * np.sum(d == a, axis=0)) / d.shape[0]
    return float(u) if d.ndim == 1 else u


class LevelMap:
    """Map a nominal quantile level to the level of the simulation that delivers it."""

    def __init__(
        self, *, prior: float = _PRIOR, floor: float = 0.002, symmetric: bool = False
    ) -> None:
        self.prior = prior
        self.floor = floor
        self.symmetric = symmetric

    def fit(self, pits: np.ndarray) -> LevelMap:
        u = np.clip(np.asarray(pits, dtype=float), 0.0, 1.0)
        self.n_ = len(u)
        self.pits_ = np.sort(np.concatenate([u, 1.0 - u]) if self.symmetric else u)
        return self

    def _cdf(self, u: np.ndarray) -> np.ndarray:
        emp = np.searchsorted(self.pits_, u, side="right") / max(len(self.pits_), 1)
        return (self.n_ * emp + self.prior * u) / (self.n_ + self.prior)

    def levels(self, q: np.ndarray) -> np.ndarray:
        """Simulation levels u with G(u) = q, for each nominal level q."""
        q = np.asarray(q, dtype=float)
        if self.n_ == 0:
            return q
        grid = np.linspace(0.0, 1.0, 2001)
        g = self._cdf(grid)
        return np.clip(np.interp(q, g, grid), self.floor, 1.0 - self.floor)
