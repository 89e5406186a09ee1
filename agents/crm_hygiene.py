"""The CRM hygiene agent. First slice: enrichment of firmographic fields.

For each account whose website domain the enrichment provider knows:
- an empty industry, employees, annual revenue or country is proposed from the
  provider (``enrich_empty_field``; tier 1 at or above the contract threshold);
- a value the provider contradicts is proposed as a correction with both values
  shown (``correct_field``; always tier 2).
Confidence is measured, not assumed: per field, how often the provider agrees with
the CRM where both hold a value (sizes agree within 25%). A contradiction gets even
odds: with one provider nothing says which side is wrong (on the generated mid
company the provider's side was right in only 17-24% of them). Identity resolution,
stage validation and required-field flags are the next slices (issue #4).
"""

from __future__ import annotations

import polars as pl

from agents.base import Agent, AgentResult, Context, empty_proposals
from data.normalize import domain_from_website

__all__ = ["CrmHygiene", "FIELDS"]

FIELDS = ("industry", "employees", "annual_revenue", "country")
_NUMERIC = {"employees", "annual_revenue"}


def _agrees(field: str) -> pl.Expr:
    crm, ref = pl.col(field), pl.col(f"{field}_ref")
    if field in _NUMERIC:
        a, b = crm.cast(pl.Float64), ref.cast(pl.Float64)
        return (a - b).abs() <= 0.25 * pl.max_horizontal(a.abs(), b.abs())
    return crm.str.to_lowercase() == ref.str.to_lowercase()


def _json(expr: pl.Expr, numeric: bool) -> pl.Expr:
    if numeric:  # the exact stored value, so the guarded apply recognises it
        return pl.when(expr.is_null()).then(pl.lit("null")).otherwise(expr.cast(pl.String))
    return (
        pl.when(expr.is_null())
        .then(pl.lit("null"))
        .otherwise(
            pl.lit('"')
            + expr.str.replace_all(r"\\", r"\\\\").str.replace_all('"', r"\"")
            + pl.lit('"')
        )
    )


class CrmHygiene(Agent):
    name = "crm_hygiene"
    version = "0.1.0"

    def run(self, ctx: Context) -> AgentResult:
        accounts = ctx.table("crm.accounts", ["account_id", "website", *FIELDS])
        ref = (
            ctx.table("ref.enrichment", ["provider", "domain", *FIELDS])
            .sort("provider")
            .unique("domain", keep="first")
        )
        joined = accounts.with_columns(domain=domain_from_website(pl.col("website"))).join(
            ref.rename({f: f"{f}_ref" for f in FIELDS}), on="domain", how="inner"
        )
        frames, accuracy = [], {}
        for field in FIELDS:
            numeric = field in _NUMERIC
            both = joined.filter(pl.col(field).is_not_null() & pl.col(f"{field}_ref").is_not_null())
            acc = float(both.select(_agrees(field).mean()).item()) if len(both) else 0.0
            accuracy[field] = round(acc, 4)
            base = joined.filter(pl.col(f"{field}_ref").is_not_null())
            empty = base.filter(pl.col(field).is_null())
            differs = base.filter(pl.col(field).is_not_null() & ~_agrees(field))
            for part, action, confidence, why in (
                (empty, "enrich_empty_field", acc, "empty in the CRM; the provider has it"),
                # One provider cannot tell which side of a disagreement is wrong: even odds.
                (differs, "correct_field", 0.5, "the provider disagrees with the CRM"),
            ):
                if part.is_empty():
                    continue
                frames.append(part.select(
                    action_type=pl.lit(action), object_type=pl.lit("accounts"), record_id="account_id",
                    field=pl.lit(field), old_value=_json(pl.col(field), numeric),
                    new_value=_json(pl.col(f"{field}_ref"), numeric), confidence=pl.lit(round(confidence, 4)),
                    evidence=pl.concat_str([
                        pl.lit('{"provider":'), _json(pl.col("provider"), False), pl.lit(',"domain":'),
                        _json(pl.col("domain"), False), pl.lit(',"crm":'), _json(pl.col(field), numeric),
                        pl.lit(',"provider_value":'), _json(pl.col(f"{field}_ref"), numeric),
                        pl.lit(f',"provider_agreement":{round(acc, 4)}}}'),
                    ]),
                    reason=pl.format("{}: {} (provider {} agrees with the CRM on {}% of accounts where both have it)",
                                     pl.lit(field), pl.lit(why), "provider", pl.lit(round(100 * acc, 1))),
                ))  # fmt: skip
        proposals = pl.concat(frames) if frames else empty_proposals()
        return AgentResult(
            proposals,
            {
                "matched_accounts": len(joined),
                "provider_agreement": accuracy,
                "fields": list(FIELDS),
            },
        )
