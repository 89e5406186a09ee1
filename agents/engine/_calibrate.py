"""Calibration: an agent's score made into the probability that a proposal is right.

An agent scores each proposal (``raw_confidence``); what the engine routes on and shows
is ``confidence``, the probability that people approve the proposal as it stands,
learned per agent and action type from what people decided about its earlier ones.
Only decisions made one card at a time count (a sample card, a card from the queue, a
continuous sample): the rest of a batch was decided on its sample's evidence, and an
automatic action was decided by nobody.

The map is Platt's logistic recalibration, ``logit(p) = a + b * logit(raw)``, fitted
as a maximum a posteriori estimate under a prior that the agent's score is right as
it stands (``a ~ N(0, PRIOR_SD_INTERCEPT)``, ``b ~ N(1, PRIOR_SD_SLOPE)``), with
``b >= 0`` so the map never reverses the agent's ordering. The prior is what makes a
small or one-sided record usable: twenty approvals of a score of 0.9 move it up a
little, not to 1.0, and an action whose proposals all carry one score (nothing to fit
a slope on) keeps slope 1 and moves its level. Below ``MIN_JUDGED`` judgements the
agent's score is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from revstack.data.warehouse import frame

__all__ = [
    "MIN_JUDGED",
    "PRIOR_SD_INTERCEPT",
    "PRIOR_SD_SLOPE",
    "Calibration",
    "calibrate",
    "fit_calibration",
    "fit_calibrations",
]

MIN_JUDGED = 20
PRIOR_SD_INTERCEPT = 1.0
PRIOR_SD_SLOPE = 0.5
# A score of exactly 0 or 1 has no logit; the map reads it as this close to the edge.
_EDGE = 1e-4

# Proposals people judged one by one, with the score the agent gave them (before 013 the
# stored confidence was that score).
_JUDGED = """
SELECT p.action_type, coalesce(p.raw_confidence, p.confidence) AS score,
       p.status = 'approved' AS right_
FROM ops.proposals p
WHERE p.agent = $agent AND NOT p.shadow AND p.decided_at IS NOT NULL
  AND p.status IN ('approved', 'edited', 'rejected')
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""


@dataclass(frozen=True)
class Calibration:
    """One action's map from score to probability, and what it was fitted on."""

    action_type: str
    judged: int
    judged_right: int
    intercept: float
    slope: float

    def __call__(self, score: np.ndarray) -> np.ndarray:
        z = self.intercept + self.slope * _logit(score)
        return 1.0 / (1.0 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EDGE, 1.0 - _EDGE)
    return np.log(q / (1.0 - q))


def fit_calibration(action_type: str, scores: np.ndarray, right: np.ndarray) -> Calibration:
    """The MAP fit of the map for one action (Newton's method on a convex objective)."""
    x = _logit(scores)
    y = np.asarray(right, dtype=np.float64)
    prior_prec = np.array([PRIOR_SD_INTERCEPT**-2, PRIOR_SD_SLOPE**-2])
    prior_mean = np.array([0.0, 1.0])
    theta = prior_mean.copy()

    def objective(t: np.ndarray) -> float:
        z = t[0] + t[1] * x
        # -log likelihood of a logistic model, written to stay finite for large |z|
        nll = float(np.sum(np.logaddexp(0.0, z) - y * z))
        return nll + 0.5 * float(np.sum(prior_prec * (t - prior_mean) ** 2))

    for _ in range(100):  # projected Newton: the slope is held while it presses on 0
        p = 1.0 / (1.0 + np.exp(-(theta[0] + theta[1] * x)))
        w = p * (1.0 - p)
        grad = np.array([np.sum(p - y), np.sum((p - y) * x)]) + prior_prec * (theta - prior_mean)
        hess = np.array([[np.sum(w), np.sum(w * x)], [np.sum(w * x), np.sum(w * x * x)]]) + np.diag(
            prior_prec
        )
        free = np.array([True, not (theta[1] <= 0.0 and grad[1] > 0.0)])
        idx = np.flatnonzero(free)
        step = np.zeros(2)
        step[idx] = np.linalg.solve(hess[np.ix_(idx, idx)], grad[idx])
        size, before = 1.0, objective(theta)
        trial = theta
        while size > 1e-9:  # halve the step until the objective does not rise
            trial = theta - size * step
            trial[1] = max(trial[1], 0.0)
            if objective(trial) <= before:
                break
            size /= 2
        moved = float(np.max(np.abs(trial - theta)))
        theta = trial
        if moved < 1e-10:
            break
    return Calibration(action_type, len(y), int(y.sum()), float(theta[0]), float(theta[1]))


def fit_calibrations(con: duckdb.DuckDBPyConnection, agent: str) -> dict[str, Calibration]:
    """Per action of ``agent`` with at least ``MIN_JUDGED`` judgements, its map."""
    judged = frame(con, _JUDGED, {"agent": agent})
    maps = {}
    for (action,), g in judged.group_by("action_type"):
        if len(g) >= MIN_JUDGED:
            maps[str(action)] = fit_calibration(
                str(action), g["score"].to_numpy(), g["right_"].to_numpy()
            )
    return maps


def calibrate(proposals: pl.DataFrame, maps: dict[str, Calibration]) -> pl.DataFrame:
    """``proposals`` with the agent's score kept as ``raw_confidence`` and ``confidence``
    replaced by the calibrated probability wherever its action has a map."""
    out = proposals.with_columns(raw_confidence=pl.col("confidence"))
    if not maps or out.is_empty():
        return out
    conf = out["confidence"].to_numpy().astype(np.float64, copy=True)
    actions = out["action_type"].to_numpy()
    for action, cal in maps.items():
        rows = actions == action
        if rows.any():
            conf[rows] = np.round(cal(conf[rows]), 4)
    return out.with_columns(confidence=pl.Series(conf, dtype=pl.Float64))
