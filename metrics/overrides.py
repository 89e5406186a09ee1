"""Overrides as training data: what people corrected, why, and what that implies.

``override_patterns``: people's edits and rejections grouped by agent, action, field,
reason (the code, else "no code") and, for an edit, what was proposed and what the person
wrote instead; each with how many, its share of the action's judged proposals, the
median confidence the agent had, and a few of the notes. ``implied_changes``: per
action, the confidence threshold under which the overrides concentrate (raising the
action's min_confidence there would have sent them to a reviewer), and where reviewers
consistently moved one value to another (a stage proposed as "negotiation" set back to
"proposal" "missing_approval"), the definition that the pattern says is missing a
criterion.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["implied_changes", "override_patterns"]

# Judged by a person one by one: the rest of a batch, decided in one act, is not.
_JUDGED = """
SELECT p.proposal_id, p.agent, p.action_type, p.field, p.confidence, p.status,
       p.new_value, p.final_value, p.decision_note, r.code
FROM ops.proposals p
LEFT JOIN ops.override_reasons r USING (proposal_id)
WHERE NOT p.shadow AND p.status IN ('approved', 'edited', 'rejected') AND p.decided_at IS NOT NULL
  AND ($agent IS NULL OR p.agent = $agent)
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""
_STAGE_FIELDS = ("stage", "stage_name", "StageName")


def _judged(con: duckdb.DuckDBPyConnection, agent: str | None) -> pl.DataFrame:
    return frame(con, _JUDGED, {"agent": agent})


def override_patterns(con: duckdb.DuckDBPyConnection, agent: str | None = None) -> pl.DataFrame:
    """One row per pattern of overrides, most frequent first (see the module doc)."""
    judged = _judged(con, agent)
    if judged.is_empty():
        return pl.DataFrame()
    per_action = judged.group_by("agent", "action_type").len("judged")
    over = judged.filter(pl.col("status").is_in(["edited", "rejected"])).with_columns(
        reason=pl.coalesce("code", pl.lit("no code")),
        proposed=pl.when(pl.col("status") == "edited").then(pl.col("new_value")),
        written=pl.when(pl.col("status") == "edited").then(pl.col("final_value")),
    )
    if over.is_empty():
        return pl.DataFrame()
    keys = ["agent", "action_type", "field", "reason", "status", "proposed", "written"]
    return (
        over.group_by(keys)
        .agg(
            overrides=pl.len(),
            median_confidence=pl.col("confidence").median(),
            notes=pl.col("decision_note").drop_nulls().unique().head(3),
        )
        .join(per_action, on=["agent", "action_type"])
        .with_columns(share_of_judged=pl.col("overrides") / pl.col("judged"))
        .sort("overrides", descending=True)
    )


def _threshold(g: pl.DataFrame, target: float) -> tuple[float | None, int]:
    """The lowest confidence at or above which overrides are at most ``target`` of the
    judged proposals, and how many overrides fall below it."""
    conf = g["confidence"].to_numpy()
    wrong = g["status"].is_in(["edited", "rejected"]).to_numpy()
    for t in np.round(np.arange(0.0, 1.0001, 0.05), 2):
        above = conf >= t
        if above.sum() and wrong[above].mean() <= target:
            return (float(t), int(wrong[~above].sum())) if t > 0 else (None, 0)
    return None, int(wrong.sum())


def implied_changes(
    con: duckdb.DuckDBPyConnection, *, target: float = 0.05, min_judged: int = 20
) -> list[dict[str, Any]]:
    """What the overrides of each action (with at least ``min_judged`` judged) suggest:
    a min_confidence, and for a field moved consistently, the definition to revisit."""
    judged = _judged(con, None)
    out: list[dict[str, Any]] = []
    for (agent, action), g in judged.group_by("agent", "action_type", maintain_order=True):
        wrong = int(g["status"].is_in(["edited", "rejected"]).sum())
        if len(g) < min_judged or not wrong:
            continue
        t, caught = _threshold(g, target)
        if t is not None:
            out.append(
                {
                    "agent": agent,
                    "action_type": action,
                    "change": "min_confidence",
                    "to": t,
                    "why": f"{caught} of {wrong} overrides had confidence below {t:.2f}; above it "
                    f"people overrode at most {target:.0%} of {action}",
                }
            )
        moved = (
            g.filter((pl.col("status") == "edited") & pl.col("field").is_in(_STAGE_FIELDS))
            .group_by("new_value", "final_value", "code")
            .len()
            .sort("len", descending=True)
        )
        for m in moved.filter(pl.col("len") >= 3).iter_rows(named=True):
            reason = m["code"] or "no reason code"
            out.append(
                {
                    "agent": agent,
                    "action_type": action,
                    "change": "stage criteria",
                    "to": m["new_value"],
                    "why": f"reviewers set {m['len']} deals proposed for {m['new_value']} back to "
                    f"{m['final_value']} ({reason}): the entry criteria of {m['new_value']} "
                    "in contracts/definitions.yaml may be missing it",
                }
            )
    return out
