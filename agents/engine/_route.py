"""Routing: from an agent's validated proposals to tiers, statuses and leases.

All of it is set-based SQL over the batch, so a run of 100k proposals routes in
one pass. The rules, in order (docs/engine.md):

1. idempotency: a proposal identical to one already recorded (same agent, action,
   record, field, old and new value) is dropped; so is a repeat inside the batch.
2. contract: (action, object, field) must be a write the agent's contract allows,
   else the proposal is ``blocked``.
3. tier: the contract's tier; tier 1 below its min_confidence becomes tier 2;
   active policy overrides (trust-ramp graduations by a named person) apply on top,
   but nothing moves a tier-3 action, which the engine never executes.
4. conflicts: one proposal per field per batch (highest confidence, then key);
   the rest are ``superseded``. A field leased by another undecided proposal is
   ``deferred``: not recorded, proposed again on a later run.
5. status: shadow mode -> ``shadow``; tier 1 -> applied now (or ``stale``);
   tier 2 -> ``pending`` with a lease on the field; tier 3 -> ``task``.
"""

from __future__ import annotations

import duckdb
import polars as pl

from data.warehouse import frame, registered

__all__ = ["POLICY_SCHEMA", "route"]

# One row per write or output an agent's contract allows.
POLICY_SCHEMA = {
    "action_type": pl.String,
    "object_type": pl.String,
    "field": pl.String,
    "tier": pl.Int32,
    "min_confidence": pl.Float64,
}

_ROUTE = r"""
WITH keyed AS (
    SELECT p.*,
           md5(concat_ws(chr(31), $agent, action_type, object_type, record_id,
                         coalesce(field, chr(0)), coalesce(old_value, chr(0)),
                         coalesce(new_value, chr(0)))) AS idempotency_key
    FROM batch p
),
fresh AS (
    SELECT * FROM keyed
    WHERE idempotency_key NOT IN (SELECT idempotency_key FROM ops.proposals)
    QUALIFY row_number() OVER (PARTITION BY idempotency_key ORDER BY confidence DESC) = 1
),
override AS (
    SELECT action_type, tier, min_confidence FROM ops.policy
    WHERE agent = $agent AND active
    QUALIFY row_number() OVER (PARTITION BY action_type ORDER BY changed_at DESC) = 1
),
tiered AS (
    SELECT f.*,
           c.tier AS contract_tier,
           coalesce(o.min_confidence, c.min_confidence) AS threshold,
           CASE WHEN c.tier = 3 THEN 3 ELSE coalesce(o.tier, c.tier) END AS base_tier,
           o.tier IS NOT NULL AND c.tier <> 3 AS overridden
    FROM fresh f
    LEFT JOIN policy c
           ON c.action_type = f.action_type AND c.object_type = f.object_type
          AND c.field IS NOT DISTINCT FROM f.field
    LEFT JOIN override o ON o.action_type = f.action_type
),
ranked AS (
    SELECT t.*,
           CASE
             WHEN contract_tier IS NULL THEN NULL
             WHEN base_tier = 1 AND confidence < threshold THEN 2
             ELSE base_tier
           END AS tier,
           CASE
             WHEN contract_tier IS NULL THEN
               'the ' || $agent || ' contract does not allow ' || action_type || ' on '
               || object_type || coalesce('.' || field, '')
             WHEN contract_tier = 3 THEN 'tier 3 in the contract: a person must act'
             WHEN base_tier = 1 AND confidence < threshold THEN
               'confidence ' || round(confidence, 3) || ' is below the tier-1 threshold '
               || threshold || ', so a reviewer decides'
             WHEN overridden THEN 'tier ' || base_tier || ' by policy override (contract: tier '
               || contract_tier || ')'
             ELSE 'tier ' || base_tier || ' in the contract'
               || CASE WHEN base_tier = 1 THEN ' at confidence >= ' || threshold ELSE '' END
           END AS tier_reason,
           row_number() OVER (
               PARTITION BY object_type, record_id, coalesce(field, chr(0) || action_type)
               ORDER BY confidence DESC, idempotency_key
           ) AS field_rank
    FROM tiered t
)
SELECT r.* EXCLUDE (contract_tier, threshold, base_tier, overridden),
       l.proposal_id AS leased_by, l.agent AS leased_by_agent
FROM ranked r
LEFT JOIN ops.field_leases l
       ON l.released_at IS NULL AND r.field IS NOT NULL
      AND l.object_type = r.object_type AND l.record_id = r.record_id AND l.field = r.field
"""


def route(
    con: duckdb.DuckDBPyConnection,
    proposals: pl.DataFrame,
    policy: pl.DataFrame,
    *,
    agent: str,
    shadow: bool,
) -> pl.DataFrame:
    """Tier and status for every new proposal in ``proposals`` (validated agent output).

    Returns the input columns plus idempotency_key, tier (null when blocked),
    tier_reason and status (blocked | superseded | deferred | shadow | apply |
    pending | task). ``apply`` is resolved to applied or stale by the caller.
    """
    with registered(con, "batch", proposals), registered(con, "policy", policy):
        routed = frame(con, _ROUTE, {"agent": agent})
    status = (
        pl.when(pl.col("tier").is_null()).then(pl.lit("blocked"))
        .when(pl.col("field_rank") > 1).then(pl.lit("superseded"))
        .when(pl.col("leased_by").is_not_null()).then(pl.lit("deferred"))
        .when(pl.lit(shadow)).then(pl.lit("shadow"))
        .when(pl.col("tier") == 1).then(pl.lit("apply"))
        .when(pl.col("tier") == 2).then(pl.lit("pending"))
        .otherwise(pl.lit("task"))
    )  # fmt: skip
    reason = (
        pl.when(pl.col("field_rank") > 1)
        .then(pl.lit("another proposal on the same field in this run has higher confidence"))
        .when(pl.col("leased_by").is_not_null() & pl.col("tier").is_not_null())
        .then(
            pl.concat_str(
                [pl.lit("field held by undecided proposal "), "leased_by",
                 pl.lit(" of "), "leased_by_agent"]
            )
        )
        .otherwise(pl.col("tier_reason"))
    )  # fmt: skip
    return routed.with_columns(status=status, tier_reason=reason).drop(
        "field_rank", "leased_by", "leased_by_agent"
    )
