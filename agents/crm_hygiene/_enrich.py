"""Enrichment: fill empty firmographic fields, and show where providers contradict the CRM.

Providers' rows are in ref.enrichment (one per provider and domain; `revstack enrich`
loads a vendor file). The waterfall (contract param ``enrichment_waterfall``) orders
them: per account and field, the first provider with a value wins, as enrichment
waterfalls do. An account is matched by its website's domain, or, without a website,
by its normalised name when exactly one provider row has that name.

Confidence is measured, not assumed: per provider and field, how often the provider
agrees with the CRM where both hold a value (sizes agree within 25%). An empty field
filled at or above the contract threshold is tier 1. A value the provider contradicts
is proposed as a correction with both values shown (tier 2) at even odds when one
provider says so: nothing says which side is wrong, and a lone provider's side is more
often the wrong one (docs/hygiene.md, Measured on mid). When two providers agree with each
other against the CRM, the correction carries their measured agreement instead.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from revstack.agents.crm_hygiene._json import json_expr
from revstack.agents.engine import Context
from revstack.data.normalize import company_key, domain_from_website

__all__ = ["FIELDS", "enrichment_proposals"]

FIELDS = ("industry", "employees", "annual_revenue", "country")
_NUMERIC = {"employees", "annual_revenue"}


def _agrees(a: pl.Expr, b: pl.Expr, field: str) -> pl.Expr:
    if field in _NUMERIC:
        a, b = a.cast(pl.Float64), b.cast(pl.Float64)
        return (a - b).abs() <= 0.25 * pl.max_horizontal(a.abs(), b.abs())
    return a.cast(pl.String).str.to_lowercase() == b.cast(pl.String).str.to_lowercase()


def _matched(ctx: Context) -> pl.DataFrame:
    """One row per (account, provider) the account was matched to, with how."""
    accounts = ctx.table("crm.accounts", ["account_id", "name", "website", *FIELDS]).with_columns(
        domain=domain_from_website(pl.col("website")), key=company_key(pl.col("name"))
    )
    ref = ctx.table("ref.enrichment", ["provider", "domain", "company_name", *FIELDS, "as_of"])
    ref = ref.rename({f: f"{f}_ref" for f in FIELDS})
    by_domain = accounts.join(ref, on="domain", how="inner").with_columns(
        matched_on=pl.lit("domain")
    )
    named = ref.with_columns(key=company_key(pl.col("company_name"))).filter(
        pl.col("key").is_not_null() & (pl.col("key") != "")
    )
    unique = named.filter(pl.len().over("provider", "key") == 1)
    by_name = (
        accounts.filter(pl.col("domain").is_null())
        .join(unique.drop("domain"), on="key", how="inner")
        .with_columns(domain=pl.lit(None, pl.String), matched_on=pl.lit("name"))
    )
    return pl.concat([by_domain, by_name.select(by_domain.columns)])


def enrichment_proposals(ctx: Context) -> tuple[list[pl.DataFrame], dict[str, Any]]:
    matched = _matched(ctx)
    order = list(ctx.params.get("enrichment_waterfall") or [])
    providers = sorted(
        set(matched["provider"]), key=lambda p: (order.index(p) if p in order else len(order), p)
    )
    rank = pl.col("provider").replace_strict(
        {p: i for i, p in enumerate(providers)}, default=len(providers)
    )
    matched = matched.with_columns(rank=rank)
    frames: list[pl.DataFrame] = []
    accuracy: dict[str, dict[str, float]] = {}
    for field in FIELDS:
        numeric = field in _NUMERIC
        crm, ref = pl.col(field), pl.col(f"{field}_ref")
        both = matched.filter(crm.is_not_null() & ref.is_not_null())
        agreement = both.group_by("provider").agg(acc=_agrees(crm, ref, field).mean())
        for p, a in agreement.iter_rows():
            accuracy.setdefault(p, {})[field] = round(float(a), 4)
        has = matched.filter(ref.is_not_null()).join(agreement, on="provider", how="left")
        # The waterfall: the first provider (in order) holding a value wins the field.
        first = has.sort("account_id", "rank").unique(
            "account_id", keep="first", maintain_order=True
        )
        empty = first.filter(crm.is_null())
        if not empty.is_empty():
            frames.append(
                _proposals(
                    empty,
                    field,
                    numeric,
                    "enrich_empty_field",
                    pl.col("acc").fill_null(0.0),
                    "empty in the CRM; the provider has it",
                )
            )
        # Corrections: providers that disagree with the CRM; two agreeing with each other
        # against it are stronger evidence than one.
        against = has.filter(crm.is_not_null() & ~_agrees(crm, ref, field))
        if against.is_empty():
            continue
        votes = against.group_by("account_id").agg(n_against=pl.len(), best_acc=pl.col("acc").max())
        lead = against.sort("account_id", "rank").unique(
            "account_id", keep="first", maintain_order=True
        )
        lead = lead.join(votes, on="account_id").with_columns(
            conf=pl.when(pl.col("n_against") >= 2)
            .then(pl.col("best_acc").fill_null(0.5))
            .otherwise(0.5)
        )
        frames.append(
            _proposals(
                lead,
                field,
                numeric,
                "correct_field",
                pl.col("conf"),
                "the provider disagrees with the CRM",
            )
        )
    meta = {
        "matched_accounts": matched["account_id"].n_unique(),
        "providers": providers,
        "provider_agreement": accuracy,
        "matched_by_name": int((matched["matched_on"] == "name").sum()),
    }
    return frames, meta


def _proposals(
    part: pl.DataFrame, field: str, numeric: bool, action: str, confidence: pl.Expr, why: str
) -> pl.DataFrame:
    crm, ref = pl.col(field), pl.col(f"{field}_ref")
    return part.select(
        action_type=pl.lit(action),
        object_type=pl.lit("accounts"),
        record_id="account_id",
        field=pl.lit(field),
        old_value=json_expr(crm, numeric),
        new_value=json_expr(ref, numeric),
        confidence=confidence.clip(0.0, 1.0).round(4),
        evidence=pl.concat_str(
            [
                pl.lit('{"provider":'),
                json_expr(pl.col("provider")),
                pl.lit(',"matched_on":'),
                json_expr(pl.col("matched_on")),
                pl.lit(',"domain":'),
                json_expr(pl.col("domain")),
                pl.lit(',"provider_as_of":'),
                json_expr(pl.col("as_of").cast(pl.String)),
                pl.lit(',"crm":'),
                json_expr(crm, numeric),
                pl.lit(',"provider_value":'),
                json_expr(ref, numeric),
                pl.lit(',"provider_agreement":'),
                json_expr(pl.col("acc").round(4), True),
                pl.lit("}"),
            ]
        ),
        reason=pl.format(
            "{}: {} ({} agrees with the CRM on {}% of accounts where both have it)",
            pl.lit(field),
            pl.lit(why),
            "provider",
            (pl.col("acc").fill_null(0) * 100).round(1),
        ),
    )
