"""Does an agent's confidence mean what it says? Reliability per action type.

For each agent and action type, proposals are binned by the confidence the agent gave
them, and each bin's mean confidence is set beside the share that was right: by the
generator's truth where it can judge the proposal (``metrics.verdicts``), else by the
people who judged it one by one (approved unchanged = right; edited or rejected =
wrong). A calibrated action lies on the diagonal; an action whose proposals all carry
one confidence is one point, and says nothing about where a threshold should go.
``calibration_summary`` gives per action the expected calibration error (the bins'
gap weighted by their size), the Brier score and how many distinct confidences the
agent used, for the confidence the engine routed on and for the agent's own score
before the engine calibrated it (``raw_confidence``; the same until an action has
enough judgements, ``revstack.agents.engine.fit_calibrations``).
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from revstack.agents.engine import wilson
from revstack.data.warehouse import frame
from revstack.metrics.remembered import remembered
from revstack.metrics.verdicts import truth_verdicts

__all__ = [
    "calibration_maps",
    "calibration_summary",
    "confidence_reliability",
    "expected_calibration_error",
    "judged_confidences",
]

_PEOPLE = """
SELECT proposal_id, status = 'approved' AS right_ FROM ops.proposals p
WHERE NOT shadow AND status IN ('approved', 'edited', 'rejected') AND decided_at IS NOT NULL
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""
_PROPOSALS = """
SELECT proposal_id, agent, action_type, confidence,
       coalesce(raw_confidence, confidence) AS raw_confidence
FROM ops.proposals
"""


def judged_confidences(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every proposal that truth or a person judged: agent, action, confidence, right, and
    who judged it (truth first: a person can be wrong). In the proposals' order."""
    facts, by_truth = _proposals(con), _judged_by_truth(con)
    people = frame(con, _PEOPLE).with_columns(judge=pl.lit("people"))
    people = people.join(by_truth.select("proposal_id"), on="proposal_id", how="anti")
    by_people = facts.join(people, on="proposal_id", maintain_order="left")
    return pl.concat([by_truth, by_people]).sort("_row").drop("_row")


@remembered  # confidences are written once, with the proposal
def _proposals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return frame(con, _PROPOSALS).with_row_index("_row")


@remembered  # truth's part of the judgements: no decision changes it
def _judged_by_truth(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    truth = truth_verdicts(con).rename({"correct": "right_"}).with_columns(judge=pl.lit("truth"))
    return _proposals(con).join(truth, on="proposal_id", maintain_order="left")


def confidence_reliability(
    con: duckdb.DuckDBPyConnection, *, bins: int = 10, score: str = "confidence"
) -> pl.DataFrame:
    """Per agent, action and confidence bin (``bins`` equal widths over 0..1): how many
    were judged, their mean confidence, the share right and its 95% Wilson interval.
    ``score="raw_confidence"`` bins by the agent's own score instead of the calibrated
    confidence."""
    if score not in ("confidence", "raw_confidence"):
        raise ValueError(f"score must be confidence or raw_confidence, not {score!r}")
    j = judged_confidences(con)
    if j.is_empty():
        return pl.DataFrame()
    j = j.with_columns(confidence=pl.col(score))
    j = j.with_columns(bin=(pl.col("confidence") * bins).floor().clip(0, bins - 1).cast(pl.Int32))
    out = (
        j.group_by("agent", "action_type", "bin")
        .agg(
            judged=pl.len(),
            right=pl.col("right_").sum(),
            mean_confidence=pl.col("confidence").mean(),
            judge=pl.col("judge").mode().first(),
        )
        .with_columns(observed=pl.col("right") / pl.col("judged"))
        .sort("agent", "action_type", "bin")
    )
    bounds = [wilson(int(r), int(n)) for r, n in zip(out["right"], out["judged"], strict=True)]
    return out.with_columns(
        observed_low=pl.Series([b[0] if b else None for b in bounds], dtype=pl.Float64),
        observed_high=pl.Series([b[1] if b else None for b in bounds], dtype=pl.Float64),
    )


_MAPS = """
SELECT agent, action_type, judged, judged_right, intercept, slope, fitted_at, run_id
FROM ops.calibrations
QUALIFY row_number() OVER (PARTITION BY agent, action_type ORDER BY fitted_at DESC, run_id DESC) = 1
ORDER BY agent, action_type
"""


def calibration_maps(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The engine's latest map per agent and action (score to probability) and the
    judgements it was fitted on."""
    return frame(con, _MAPS)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """The bins' gap between mean confidence ``p`` and share right ``y``, weighted by size."""
    b = np.clip(np.floor(p * bins), 0, bins - 1)
    gap = 0.0
    for k in np.unique(b):
        m = b == k
        gap += abs(float(p[m].mean()) - float(y[m].mean())) * int(m.sum())
    return gap / len(p)


def calibration_summary(con: duckdb.DuckDBPyConnection, *, bins: int = 10) -> pl.DataFrame:
    """Per agent and action: judged, distinct confidences used, mean confidence, share
    right, expected calibration error and Brier score; and the last two for the agent's
    own score (``raw_``)."""
    j = judged_confidences(con)
    if j.is_empty():
        return pl.DataFrame()
    rows = []
    for (agent, action), g in j.group_by("agent", "action_type", maintain_order=True):
        p, y = g["confidence"].to_numpy(), g["right_"].cast(pl.Float64).to_numpy()
        raw = g["raw_confidence"].to_numpy()
        rows.append(
            {
                "agent": agent,
                "action_type": action,
                "judged": len(g),
                "confidences_used": g["confidence"].n_unique(),
                "mean_confidence": float(p.mean()),
                "right_share": float(y.mean()),
                "calibration_error": expected_calibration_error(p, y, bins),
                "brier": float(np.mean((p - y) ** 2)),
                "raw_calibration_error": expected_calibration_error(raw, y, bins),
                "raw_brier": float(np.mean((raw - y) ** 2)),
            }
        )
    return pl.DataFrame(rows).sort("judged", descending=True)
