"""Graduation from sampled evidence, and graduation that keeps measuring.

``batch_evidence``: per agent and action type, what the samples of its batches say.
Each batch is a stratum (one field and confidence band), sampled at its own rate, so the
action's approved-unchanged share is estimated stratum by stratum and weighted by each
batch's share of the action's proposals, never pooled from raw counts; its error bound
is each batch's exact bound, weighted the same way. ``graduation_suggestions`` turns that
into "graduate" where the bound is below the bar and every batch passed its own. ``continuous_precision``: after a
graduation, how the continuous samples of the action were decided, with an interval,
and ``demotions``: every time a wrong sample put an action back to tier 2, and why.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine import active_policy, error_upper_bound, stratified_share, wilson
from revstack.data.warehouse import frame
from revstack.metrics.calibration import calibration_maps, calibration_summary
from revstack.metrics.reviewers import reviewer_accuracy

__all__ = [
    "all_suggestions",
    "batch_evidence",
    "continuous_precision",
    "demotions",
    "graduation_suggestions",
    "trust_report",
]

# Per batch whose sample is decided whole: its size, and how the sample was decided.
_STRATA = """
SELECT b.batch_id, b.agent, b.action_type, b.field, b.band, b.size, b.bar, b.confidence,
       b.status, coalesce(b.decided_at, b.opened_at) AS at,
       count(*) FILTER (WHERE m.draw_order <= b.sample_size) AS sample_size,
       count(*) FILTER (WHERE m.draw_order <= b.sample_size AND p.status = 'approved') AS right_,
       count(*) FILTER (WHERE m.draw_order <= b.sample_size AND p.status IN ('edited', 'rejected')) AS wrong,
       count(*) FILTER (WHERE m.draw_order <= b.sample_size AND p.status = 'stale') AS stale
FROM ops.review_batches b
JOIN ops.review_batch_members m USING (batch_id)
JOIN ops.proposals p USING (proposal_id)
WHERE b.opened_at >= $since
GROUP BY ALL
HAVING count(*) FILTER (WHERE m.draw_order <= b.sample_size AND p.status = 'pending') = 0
ORDER BY b.agent, b.action_type, b.batch_id
"""
_SAMPLES = """
SELECT c.agent, c.action_type, c.policy_id,
       count(*) AS sampled,
       count(*) FILTER (WHERE p.status = 'approved') AS right_,
       count(*) FILTER (WHERE p.status IN ('edited', 'rejected')) AS wrong,
       count(*) FILTER (WHERE p.status = 'pending') AS waiting,
       min(c.sampled_at) AS first_sampled, max(c.sampled_at) AS last_sampled
FROM ops.continuous_samples c JOIN ops.proposals p USING (proposal_id)
GROUP BY ALL ORDER BY c.agent, c.action_type, first_sampled
"""
_DEMOTIONS = """
SELECT logged_at, record_id, before, after, detail FROM ops.audit_log
WHERE action = 'policy' AND actor = 'engine' AND object_type = 'agent_action'
ORDER BY seq
"""

_EVIDENCE_SCHEMA = pl.Schema(
    {
        "agent": pl.String(),
        "action_type": pl.String(),
        "batches": pl.Int64(),
        "proposals": pl.Int64(),
        "sampled": pl.Int64(),
        "right": pl.Int64(),
        "wrong": pl.Int64(),
        "right_share": pl.Float64(),
        "right_share_se": pl.Float64(),
        "error_upper_bound": pl.Float64(),
        "bar": pl.Float64(),
        "batches_meeting_bar": pl.Int64(),
        "last_batch_at": pl.Datetime("us"),
    }
)


def _strata(con: duckdb.DuckDBPyConnection, since: Any = None) -> pl.DataFrame:
    """Every batch whose sample is decided whole, with its band's lower edge."""
    strata = frame(con, _STRATA, {"since": since or "1970-01-01"})
    return strata.with_columns(band_low=pl.col("band").str.split("-").list.first().cast(pl.Float64))


def batch_evidence(
    con: duckdb.DuckDBPyConnection, *, since: Any = None, min_band: float = 0.0
) -> pl.DataFrame:
    """One row per agent and action type over the batches (opened since ``since``, in
    confidence bands from ``min_band`` up) whose sample is decided whole: the stratified
    approved-unchanged share with its standard error, and the action's error bound (each
    batch's exact bound weighted by its size)."""
    return _evidence(_strata(con, since).filter(pl.col("band_low") >= min_band))


def _evidence(strata: pl.DataFrame) -> pl.DataFrame:
    if strata.is_empty():
        return pl.DataFrame(schema=_EVIDENCE_SCHEMA)
    rows = []
    for (agent, action), part in strata.group_by("agent", "action_type", maintain_order=True):
        total = int(part["size"].sum())
        bound, met, layers = 0.0, 0, []
        for b in part.iter_rows(named=True):
            judged, population = b["right_"] + b["wrong"], b["size"] - b["stale"]
            ub = error_upper_bound(b["wrong"], judged, population, b["confidence"])
            bound += b["size"] / total * ub
            met += ub < b["bar"]
            layers.append((population, judged, b["right_"]))
        share = stratified_share(layers)
        rows.append(
            {
                "agent": agent,
                "action_type": action,
                "batches": len(part),
                "proposals": total,
                "sampled": int((part["right_"] + part["wrong"]).sum()),
                "right": int(part["right_"].sum()),
                "wrong": int(part["wrong"].sum()),
                "right_share": share[0] if share else None,
                "right_share_se": share[1] if share else None,
                "error_upper_bound": bound,
                "bar": max(float(x) for x in part["bar"]),
                "batches_meeting_bar": met,
                "last_batch_at": part["at"].max(),
            }
        )
    return pl.DataFrame(rows, schema=_EVIDENCE_SCHEMA)


def graduation_suggestions(
    con: duckdb.DuckDBPyConnection, *, min_sampled: int = 30
) -> pl.DataFrame:
    """Suggest graduating an action at tier 2 whose batches' weighted error bound is below
    their bar, and each of whose batches passed its own, on at least ``min_sampled``
    sampled decisions; with the evidence. Where only the higher confidence bands pass,
    the suggestion graduates the action from the lowest band that does
    (``min_confidence``): the lower ones stay with a reviewer."""
    schema = pl.Schema(
        {
            "agent": pl.String(),
            "action_type": pl.String(),
            "suggestion": pl.String(),
            "evidence": pl.String(),
            "min_confidence": pl.Float64(),
        }
    )
    policy = active_policy(con)
    strata = _strata(con)
    graduated = {
        (r["agent"], r["action_type"]) for r in policy.iter_rows(named=True) if r["tier"] == 1
    }
    rows = []
    for (agent, action), part in strata.group_by("agent", "action_type", maintain_order=True):
        if (agent, action) in graduated:
            continue
        for low in sorted(set(part["band_low"])):
            [e] = _evidence(part.filter(pl.col("band_low") >= low)).to_dicts()
            # Every batch must pass on its own as well: the weighted bound can sit under the
            # bar while one field's batch fails, and the graduation would cover it too.
            if (
                e["sampled"] >= min_sampled
                and e["error_upper_bound"] < e["bar"]
                and e["batches_meeting_bar"] == e["batches"]
            ):
                break
        else:
            continue
        above = f" at confidence {low:.2f} and up" if low > 0 else ""
        rows.append(
            (
                agent,
                action,
                f"graduate to tier 1{above}",
                f"{e['batches']} batch{'es' if e['batches'] != 1 else ''} of {e['proposals']:,} proposals, {e['sampled']:,} "
                f"sampled, {e['wrong']} wrong; error rate below {e['error_upper_bound']:.1%} "
                f"(each batch's 95% bound weighted by its size) < {e['bar']:.0%}",
                low if low > 0 else None,
            )
        )
    return pl.DataFrame(rows, schema=schema, orient="row")


def continuous_precision(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per graduated action and graduation: its continuous samples and how they were
    decided, the approved-unchanged share with its 95% Wilson interval."""
    s = frame(con, _SAMPLES)
    if s.is_empty():
        return s
    bounds = [wilson(r, r + w) for r, w in zip(s["right_"], s["wrong"], strict=True)]
    return s.rename({"right_": "right"}).with_columns(
        precision=pl.when(pl.col("right") + pl.col("wrong") > 0)
        .then(pl.col("right") / (pl.col("right") + pl.col("wrong")))
        .otherwise(None),
        precision_low=pl.Series([b[0] if b else None for b in bounds], dtype=pl.Float64),
        precision_high=pl.Series([b[1] if b else None for b in bounds], dtype=pl.Float64),
    )


def demotions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every automatic demotion: when, which action, and the reason the engine logged."""
    rows = frame(con, _DEMOTIONS)
    out = []
    for r in rows.iter_rows(named=True):
        d = json.loads(r["detail"])
        agent, _, action = r["record_id"].partition(".")
        out.append(
            {
                "demoted_at": r["logged_at"],
                "agent": agent,
                "action_type": action,
                "reason": d.get("reason"),
                "proposal_id": d.get("proposal_id"),
                "graduation": d.get("demotes"),
                "policy_id": d.get("policy_id"),
            }
        )
    schema = pl.Schema(
        {
            "demoted_at": pl.Datetime("us"),
            "agent": pl.String(),
            "action_type": pl.String(),
            "reason": pl.String(),
            "proposal_id": pl.String(),
            "graduation": pl.String(),
            "policy_id": pl.String(),
        }
    )
    return pl.DataFrame(out, schema=schema)


def all_suggestions(con: duckdb.DuckDBPyConnection, cycle_days: int = 30) -> pl.DataFrame:
    """Every suggestion, each from the right evidence: an action reviewed in batches is
    judged on its batches' stratified samples (pooling the samples' raw counts would
    weigh a small batch reviewed whole like a large one sampled thinly); one reviewed
    only card by card on its cycles (``metrics.trust.suggestions``). ``source`` says which."""
    from revstack.metrics.trust import suggestions, trust_cycles

    evidence = batch_evidence(con)
    by_batch = graduation_suggestions(con).with_columns(source=pl.lit("batches"))
    by_card = suggestions(trust_cycles(con, cycle_days=cycle_days)).with_columns(
        min_confidence=pl.lit(None, pl.Float64), source=pl.lit("cycles")
    )
    keys = ["agent", "action_type"]
    by_card = pl.concat(
        [
            by_card.join(evidence.select(keys), on=keys, how="anti"),
            by_card.join(evidence.select(keys), on=keys, how="semi").filter(
                pl.col("suggestion").str.starts_with("demote")
            ),
        ]
    )
    return pl.concat([by_batch, by_card])


def trust_report(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What `revstack trust` prints: suggestions with their evidence, the graduations in
    force, continuous sampling after them, the demotions, how well each action's
    confidence is calibrated (and the engine's map from score to probability), and how each reviewer agrees with truth."""
    policy = active_policy(con)
    evidence = batch_evidence(con)
    return {
        "suggestions": all_suggestions(con).to_dicts(),
        "batch_evidence": evidence.to_dicts(),
        "graduations": policy.filter(pl.col("tier") == 1).to_dicts(),
        "continuous_sampling": continuous_precision(con).to_dicts(),
        "demotions": demotions(con).to_dicts(),
        "calibration": calibration_summary(con).to_dicts(),
        "calibration_maps": calibration_maps(con).to_dicts(),
        "reviewers": reviewer_accuracy(con).to_dicts(),
    }
