"""Threshold lab: what moving an action's min_confidence would do.

For each candidate threshold: how many of the action's proposals would have run
on their own (confidence >= threshold), how many would have waited in the queue,
and how many of the automatic ones people judged wrong (edited, rejected or
rolled back) among those that were judged. Labels come from past decisions; a
metrics function with ground truth can pass its own ``labels``.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["labelled_proposals", "threshold_curve"]

_LABELLED = """
SELECT proposal_id, agent, action_type, confidence, status,
       CASE WHEN status IN ('approved') THEN true
            WHEN status IN ('edited', 'rejected', 'rolled_back') THEN false
            WHEN status = 'applied' THEN true
       END AS correct
FROM ops.proposals p
WHERE NOT shadow AND agent = $agent AND action_type = $action
  -- the rest of a batch, decided in one act on its sample's evidence, was not judged
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""


def labelled_proposals(
    con: duckdb.DuckDBPyConnection, agent: str, action_type: str
) -> pl.DataFrame:
    """The action's proposals with confidence and, where a person judged it, correct or not."""
    return frame(con, _LABELLED, {"agent": agent, "action": action_type})


def threshold_curve(labelled: pl.DataFrame, thresholds: np.ndarray | None = None) -> pl.DataFrame:
    """Per threshold: auto volume, queue volume, judged auto, wrong auto, expected error rate."""
    grid = np.round(np.linspace(0.0, 1.0, 101), 2) if thresholds is None else thresholds
    conf = labelled["confidence"].to_numpy()
    judged = labelled["correct"].is_not_null().to_numpy()
    wrong = (labelled["correct"] == False).fill_null(False).to_numpy()  # noqa: E712 - polars
    auto = conf[None, :] >= grid[:, None]
    n_auto = auto.sum(axis=1)
    n_judged = (auto & judged[None, :]).sum(axis=1)
    n_wrong = (auto & wrong[None, :]).sum(axis=1)
    rate = np.where(n_judged > 0, n_wrong / np.maximum(n_judged, 1), np.nan)
    return pl.DataFrame(
        {
            "threshold": grid,
            "auto": n_auto,
            "queue": len(conf) - n_auto,
            "judged_auto": n_judged,
            "wrong_auto": n_wrong,
            "expected_error_rate": rate,
            "expected_errors": np.where(np.isnan(rate), np.nan, rate * n_auto),
        }
    ).with_columns(
        pl.col("expected_error_rate").fill_nan(None), pl.col("expected_errors").fill_nan(None)
    )
