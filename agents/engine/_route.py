"""Routing: from an agent's validated proposals to tiers, statuses and leases.

Set-based over the whole batch (one SQL query for keys, tiers and leases, then a
few polars column operations), so a run of 100k proposals routes in one pass. The
rules, in order (docs/engine.md):

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
5. continuous sampling: of a tier-1 action that a policy graduated from tier 2, a
   fixed share (``CONTINUOUS_SHARE``, chosen by the proposal's key, so the same
   proposal is always chosen or not) goes to a reviewer as tier 2 before it applies.
6. status: shadow mode -> ``shadow``; tier 1 -> applied now (or ``stale``);
   tier 2 -> ``pending`` with a lease on the field; tier 3 -> ``task``.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame, registered

__all__ = ["CONTINUOUS_SHARE", "KEY_SQL", "POLICY_SCHEMA", "route"]

# Dodge's CSP-1 in its sampling phase: 1 in 50 of a graduated action's proposals is still
# reviewed, so the precision of what applies on its own is measured all the time.
CONTINUOUS_SHARE = 0.02

# One row per write or output an agent's contract allows.
POLICY_SCHEMA = {
    "action_type": pl.String,
    "object_type": pl.String,
    "field": pl.String,
    "tier": pl.Int32,
    "min_confidence": pl.Float64,
}

# A proposal's idempotency key ($agent bound): one definition for the routing and for
# what an agent may leave out because it is already recorded (Context.unrecorded).
KEY_SQL = """md5(concat_ws(chr(31), $agent, action_type, object_type, record_id,
                         coalesce(field, chr(0)), coalesce(old_value, chr(0)),
                         coalesce(new_value, chr(0))))"""

# Keys, tiers, reasons and leases for the new proposals, over the few columns they
# need (ord points back into the batch). The choices between proposals (repeats of
# one key, several on one field) are made in polars, where the common case of no
# repeats costs one hash of the keys instead of two windows over the whole batch.
_ROUTE = (
    r"""
WITH keyed AS (
    SELECT ord, action_type, object_type, record_id, field, confidence,
           """
    + KEY_SQL
    + r""" AS idempotency_key
    FROM batch
),
fresh AS (
    SELECT k.* FROM keyed k ANTI JOIN ops.proposals p USING (idempotency_key)
),
override AS (
    SELECT action_type, tier, min_confidence, policy_id FROM ops.policy
    WHERE agent = $agent AND active
    QUALIFY row_number() OVER (PARTITION BY action_type ORDER BY changed_at DESC, policy_id DESC) = 1
),
tiered AS (
    SELECT f.*,
           c.tier AS contract_tier,
           coalesce(o.min_confidence, c.min_confidence) AS threshold,
           CASE WHEN c.tier = 3 THEN 3 ELSE coalesce(o.tier, c.tier) END AS base_tier,
           o.tier IS NOT NULL AND c.tier <> 3 AS overridden,
           CASE WHEN o.tier = 1 AND c.tier = 2 THEN o.policy_id END AS graduated_by
    FROM fresh f
    LEFT JOIN policy c
           ON c.action_type = f.action_type AND c.object_type = f.object_type
          AND c.field IS NOT DISTINCT FROM f.field
    LEFT JOIN override o ON o.action_type = f.action_type
)
SELECT t.ord, t.idempotency_key,
       CASE
         WHEN contract_tier IS NULL THEN NULL
         WHEN base_tier = 1 AND t.confidence < threshold THEN 2
         ELSE base_tier
       END AS tier,
       CASE
         WHEN contract_tier IS NULL THEN
           'the ' || $agent || ' contract does not allow ' || t.action_type || ' on '
           || t.object_type || coalesce('.' || t.field, '')
         WHEN contract_tier = 3 THEN 'tier 3 in the contract: a person must act'
         WHEN base_tier = 1 AND t.confidence < threshold THEN
           'confidence ' || round(t.confidence, 3) || ' is below the tier-1 threshold '
           || threshold || ', so a reviewer decides'
         WHEN overridden THEN 'tier ' || base_tier || ' by policy override (contract: tier '
           || contract_tier || ')'
         ELSE 'tier ' || base_tier || ' in the contract'
           || CASE WHEN base_tier = 1 THEN ' at confidence >= ' || threshold ELSE '' END
       END AS tier_reason,
       CASE WHEN base_tier = 1 AND t.confidence >= threshold THEN graduated_by END AS graduated_by,
       CASE WHEN l.released_at IS NULL THEN l.proposal_id END AS leased_by,
       CASE WHEN l.released_at IS NULL THEN l.agent END AS leased_by_agent,
       l.record_id IS NOT NULL AS lease_row
FROM tiered t
LEFT JOIN ops.field_leases l
       ON t.field IS NOT NULL
      AND l.object_type = t.object_type AND l.record_id = t.record_id AND l.field = t.field
"""
)


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
    tier_reason, status (blocked | superseded | deferred | shadow | apply | pending |
    task), lease_row (the field has a row in ops.field_leases, held or released),
    graduated_by (the policy that made it tier 1) and continuous_sample.
    ``apply`` is resolved to applied or stale by the caller.
    """
    batch = proposals.with_row_index("ord")
    with registered(con, "batch", batch), registered(con, "policy", policy):
        routed = frame(con, _ROUTE, {"agent": agent})
    routed = batch.join(routed, on="ord", how="inner", maintain_order="left")
    # The key is an md5: its first 32 bits are a uniform draw fixed to the proposal.
    draw = pl.col("idempotency_key").str.slice(0, 8).str.to_integer(base=16) / 2**32
    sampled = pl.col("graduated_by").is_not_null() & (draw < CONTINUOUS_SHARE)
    routed = routed.with_columns(
        continuous_sample=sampled,
        tier=pl.when(sampled).then(pl.lit(2, pl.Int32)).otherwise(pl.col("tier")),
        tier_reason=pl.when(sampled)
        .then(
            pl.concat_str(
                [
                    pl.lit("graduated to tier 1 by policy "),
                    "graduated_by",
                    pl.lit(
                        f"; {CONTINUOUS_SHARE:.0%} of its proposals still go to a reviewer"
                        " (continuous sampling): a wrong one demotes it"
                    ),
                ]
            )
        )
        .otherwise(pl.col("tier_reason")),
    )
    # A repeat of a key inside the batch: the most confident one stays (then the first).
    if routed["idempotency_key"].is_duplicated().any():
        routed = (
            routed.sort(["confidence", "ord"], descending=[True, False])
            .unique("idempotency_key", keep="first", maintain_order=True)
            .sort("ord")
        )
    # One proposal per field (per action for output-only ones): the most confident,
    # then the smallest key; the others are superseded.
    target = pl.struct(
        "object_type", "record_id", pl.coalesce("field", pl.lit("\0") + pl.col("action_type"))
    )
    if routed.select(target.is_duplicated().any()).item():
        ranked = routed.sort(["confidence", "idempotency_key"], descending=[True, False])
        routed = ranked.with_columns(wins_field=target.is_first_distinct()).sort("ord")
    else:
        routed = routed.with_columns(wins_field=pl.lit(True))
    status = (
        pl.when(pl.col("tier").is_null())
        .then(pl.lit("blocked"))
        .when(~pl.col("wins_field"))
        .then(pl.lit("superseded"))
        .when(pl.col("leased_by").is_not_null())
        .then(pl.lit("deferred"))
        .when(pl.lit(shadow))
        .then(pl.lit("shadow"))
        .when(pl.col("tier") == 1)
        .then(pl.lit("apply"))
        .when(pl.col("tier") == 2)
        .then(pl.lit("pending"))
        .otherwise(pl.lit("task"))
    )
    reason = (
        pl.when(~pl.col("wins_field"))
        .then(pl.lit("another proposal on the same field in this run has higher confidence"))
        .when(pl.col("leased_by").is_not_null() & pl.col("tier").is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.lit("field held by undecided proposal "),
                    "leased_by",
                    pl.lit(" of "),
                    "leased_by_agent",
                ]
            )
        )
        .otherwise(pl.col("tier_reason"))
    )
    return routed.with_columns(status=status, tier_reason=reason).drop(
        "ord", "wins_field", "leased_by", "leased_by_agent"
    )
