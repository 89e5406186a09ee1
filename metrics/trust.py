"""The trust ramp: which action types have earned autonomy, with the evidence.

Per agent and action type and 30-day cycle: how many tier-2 proposals people
reviewed, how many they approved without change, and a Wilson lower bound on
that rate. An action graduates (tier 2 -> 1) when enough were reviewed and the
lower bound clears the bar; a tier-1 action is demoted when its auto-applied
writes were rolled back or its reviewed share is overridden too often.
"""

from __future__ import annotations

import math

import duckdb
import polars as pl

from data.warehouse import frame

__all__ = ["RAMP_RULES", "trust_cycles", "suggestions", "wilson_lower"]

RAMP_RULES = {
    "cycle_days": 30,
    "min_reviewed": 30,  # decisions needed before a suggestion
    "graduate_lower_bound": 0.95,  # Wilson 95% lower bound on approval-without-change
    "demote_override_rate": 0.10,  # overrides or rollbacks above this share
}

_CYCLES = """
SELECT agent, action_type,
       CAST(floor(epoch(decided_at) / 86400 / $days) AS BIGINT) AS cycle,
       min(decided_at) AS cycle_start,
       count(*) FILTER (WHERE status IN ('approved', 'edited', 'rejected')) AS reviewed,
       count(*) FILTER (WHERE status = 'approved') AS approved_unchanged,
       count(*) FILTER (WHERE status = 'edited') AS edited,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL) AS auto_applied,
       count(*) FILTER (WHERE status = 'rolled_back') AS rolled_back,
       max(tier) AS tier,
       list(decision_note ORDER BY decided_at) FILTER (WHERE status IN ('edited', 'rejected') AND decision_note IS NOT NULL) AS override_notes
FROM ops.proposals
WHERE decided_at IS NOT NULL AND NOT shadow
GROUP BY ALL ORDER BY agent, action_type, cycle
"""


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float | None:
    """Lower end of the Wilson score interval for a proportion (None when n = 0)."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / denom


def trust_cycles(con: duckdb.DuckDBPyConnection, *, cycle_days: int = 30) -> pl.DataFrame:
    """One row per agent, action type and cycle with the approval rate and its bound."""
    out = frame(con, _CYCLES, {"days": cycle_days})
    if out.is_empty():
        return out
    bounds = [
        wilson_lower(a, n) for a, n in zip(out["approved_unchanged"], out["reviewed"], strict=True)
    ]
    return out.with_columns(
        approval_rate=pl.when(pl.col("reviewed") > 0)
        .then(pl.col("approved_unchanged") / pl.col("reviewed"))
        .otherwise(None),
        approval_lower_bound=pl.Series(bounds, dtype=pl.Float64),
    )


def suggestions(cycles: pl.DataFrame, rules: dict | None = None) -> pl.DataFrame:
    """Graduate or demote suggestions from the latest cycle of each action type."""
    r = {**RAMP_RULES, **(rules or {})}
    schema = {
        "agent": pl.String,
        "action_type": pl.String,
        "suggestion": pl.String,
        "evidence": pl.String,
    }
    if cycles.is_empty():
        return pl.DataFrame(schema=schema)
    latest = cycles.sort("cycle").group_by("agent", "action_type").last()
    rows = []
    for c in latest.iter_rows(named=True):
        lb = c["approval_lower_bound"]
        overridden = c["edited"] + c["rejected"]
        if (
            c["reviewed"] >= r["min_reviewed"]
            and lb is not None
            and lb >= r["graduate_lower_bound"]
        ):
            rows.append((c["agent"], c["action_type"], "graduate to tier 1",
                         f"{c['approved_unchanged']}/{c['reviewed']} approved unchanged; 95% lower bound {lb:.1%} >= {r['graduate_lower_bound']:.0%}"))  # fmt: skip
        elif (
            c["auto_applied"]
            and c["rolled_back"] / max(c["auto_applied"], 1) > r["demote_override_rate"]
        ):
            rows.append((c["agent"], c["action_type"], "demote to tier 2",
                         f"{c['rolled_back']} of {c['auto_applied']} automatic writes rolled back"))  # fmt: skip
        elif (
            c["reviewed"] >= r["min_reviewed"]
            and overridden / c["reviewed"] > r["demote_override_rate"]
            and c["tier"] == 1
        ):
            rows.append((c["agent"], c["action_type"], "demote to tier 2",
                         f"{overridden}/{c['reviewed']} overridden"))  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")
