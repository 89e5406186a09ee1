"""Definitions applied to the CRM: stage criteria, required fields and phantom deals.

- A deal in a stage whose buying-process criteria (engaged contacts, roles) it fails is
  proposed back to the furthest stage it does meet (tier 2), with every failed criterion
  and its actual value as the reason. A deal failing only a field criterion (no amount,
  no close date) needs the field, not a stage: its missing field is flagged instead.
- Every record with blank required fields is flagged once, naming them (tier 1, output
  only): the agent never invents a value.
- A deal whose close date is far past and which has been quiet for a multiple of its
  stage's benchmark is a phantom: closing it is proposed as a tier-3 task for a person.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from revstack.agents.crm_hygiene._json import dumps
from revstack.agents.engine import Context
from revstack.contracts import required_fields_sql, stage_checks_sql

__all__ = ["check_proposals"]

# What the stage checks read of the activity and the buying roles (the deal's own row
# whole: a field criterion may name any of its columns).
_MEASURED_COLUMNS = {
    "crm.activities": ["opportunity_id", "contact_id", "status", "direction", "occurred_at"],
    "crm.opportunity_contacts": ["opportunity_id", "role"],
}


def _open_deals(ctx: Context, as_of: dt.datetime) -> pl.DataFrame:
    """Every open deal with its stage checks and latest two-way activity, measured in one
    pass over the activity (``stage_checks_sql``: the same answers as the violations, the
    fits and the latest activity asked apart, three passes over mid's 2.0M rows).

    Run in the warehouse's own DuckDB: only the open deals' measures come back, where
    loading the activity as a frame held every row of it (23.7M on the large company,
    past 16 GB with what else the run held)."""
    tables = {"crm.opportunities": ctx.table("crm.opportunities").columns, **_MEASURED_COLUMNS}
    return ctx.warehouse_sql(
        stage_checks_sql(ctx.definitions), tables=tables, params={"as_of": as_of}
    )


def _stage_moves(deals: pl.DataFrame) -> pl.DataFrame:
    moves = deals.filter(
        pl.col("fits").is_not_null()
        & (pl.col("fits") != pl.col("stage"))
        & pl.col("failed").is_not_null()
    )
    rows = []
    for r in moves.iter_rows(named=True):
        text = "; ".join(f"{f['criterion']} (is {f['actual'] or 'none'})" for f in r["failed"])
        rows.append(
            {
                "record_id": r["opportunity_id"],
                "old": dumps(r["stage"]),
                "new": dumps(r["fits"]),
                "reason": f"fails the {r['stage']} entry criteria: {text}; it meets {r['fits']}",
                "evidence": dumps(
                    {"stage": r["stage"], "fits": r["fits"], "failed_criteria": r["failed"]}
                ),
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "record_id": pl.String,
            "old": pl.String,
            "new": pl.String,
            "reason": pl.String,
            "evidence": pl.String,
        },
    )
    # The criteria are facts checked in SQL; whether moving back is the right fix is
    # the reviewer's call, which the trust ramp measures.
    return frame.select(
        action_type=pl.lit("move_stage"),
        object_type=pl.lit("opportunities"),
        record_id="record_id",
        field=pl.lit("stage"),
        old_value="old",
        new_value="new",
        confidence=pl.lit(0.9),
        evidence="evidence",
        reason="reason",
    )


def _missing(ctx: Context) -> pl.DataFrame:
    """One flag per record, naming every blank required field (a flag is about a record,
    not a field, so two flags on one record would compete for it)."""
    parts = []
    for obj in ("accounts", "contacts", "opportunities"):
        found = ctx.sql(required_fields_sql(ctx.definitions, obj), tables=[f"crm.{obj}"])
        per_record = found.group_by("record_id").agg(pl.col("field").sort())
        parts.append(
            per_record.select(
                action_type=pl.lit("flag_missing_field"),
                object_type=pl.lit(obj),
                record_id="record_id",
                field=pl.lit(None, pl.String),
                old_value=pl.lit(None, pl.String),
                new_value=pl.struct(missing="field").struct.json_encode(),
                confidence=pl.lit(1.0),
                evidence=pl.struct(
                    required_by=pl.lit(f"definitions.yaml required_fields.{obj}"), blank="field"
                ).struct.json_encode(),
                reason=pl.format(
                    "required and blank: {} (required_fields.{} in definitions.yaml)",
                    pl.col("field").list.join(", "),
                    pl.lit(obj),
                ),
            )
        )
    return pl.concat(parts)


def _phantoms(ctx: Context, deals: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    d = ctx.definitions
    quiet = d.quiet_days()
    deals = deals.select("opportunity_id", "stage", "close_date", "created_at", "last_two_way")
    as_of_lit = pl.lit(as_of)
    deals = deals.with_columns(
        past_close=(as_of_lit.dt.date() - pl.col("close_date")).dt.total_days(),
        quiet_for=(as_of_lit - pl.coalesce("last_two_way", "created_at")).dt.total_days(),
        benchmark=pl.col("stage").replace_strict(quiet, default=None, return_dtype=pl.Int64),
    )
    phantom = deals.filter(
        (pl.col("past_close") > d.phantom.days_past_close)
        & (pl.col("quiet_for") > pl.col("benchmark") * d.phantom.quiet_multiple)
    )
    return phantom.select(
        action_type=pl.lit("close_phantom_deal"),
        object_type=pl.lit("opportunities"),
        record_id="opportunity_id",
        field=pl.lit("is_closed"),
        old_value=pl.lit("false"),
        new_value=pl.lit("true"),
        confidence=pl.lit(0.8),
        evidence=pl.format(
            '{{"close_date":"{}","days_past_close":{},"days_without_two_way_activity":{},"stage":"{}","stage_quiet_days":{}}}',
            "close_date",
            "past_close",
            "quiet_for",
            "stage",
            "benchmark",
        ),
        reason=pl.format(
            "close date {} passed {} days ago and no two-way activity for {} days ({}x the {} benchmark of {} days): probably lost; a person should close it",
            "close_date",
            "past_close",
            "quiet_for",
            pl.lit(d.phantom.quiet_multiple),
            "stage",
            "benchmark",
        ),
    )


def check_proposals(ctx: Context) -> tuple[list[pl.DataFrame], dict[str, Any]]:
    as_of = ctx.as_of
    deals = _open_deals(ctx, as_of)
    moves, missing, phantoms = _stage_moves(deals), _missing(ctx), _phantoms(ctx, deals, as_of)
    meta = {"stage_moves": len(moves), "missing_fields": len(missing), "phantoms": len(phantoms)}
    return [moves, missing, phantoms], meta
