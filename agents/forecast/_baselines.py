"""The baselines the forecast is measured against, per snapshot and owner.

- ``rep_commit``: the team's commit as a RevOps lead rolls it up: each rep's latest
  submission for the period at or before the moment (``crm.forecast_submissions``; an
  earlier call carries forward), and for a rep who has not called for the period yet,
  what the team would put in for them: their own ``stage_weighted_history`` (won so
  far, and their open pipeline at the rates its stages have converted at). Its rows say
  which reps had called (``submitted``).
- ``rep_commit_crm_fill``: the same calls, a rep who has not called filled with their
  ``stage_weighted_crm`` instead. Where deals stay open past their chances (silent
  decay) the CRM's stage probabilities overstate what an open pipeline brings in, by
  half again or double on a generated company (docs/forecast.md, Measured), and no
  lead who knew it would put that number in.
- ``rep_commit_submitted``: the submissions alone; a rep with none counts nothing. Where
  reps call late and irregularly this is missing whole reps at a period's start, and
  any forecast looks good against it (docs/forecast.md, Measured).
- ``stage_weighted_crm``: won so far plus each open deal with its close date in the
  period at its stage's default probability (``definitions.yaml``).
- ``stage_weighted_history``: the same deals at the rate at which, in earlier periods
  already over, deals in that stage with a close date in the period were won in it at
  the same snapshot point (amount-weighted, per period kind and offset).
- ``seasonal_naive``: the owner's won revenue in the same period a year earlier
  (the previous period when there is no year of history, e.g. maven).

None of them forecasts deals not yet created; that is what they are, as people use them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from revstack.agents.forecast._frames import KEY

__all__ = ["BASELINES", "baselines"]

BASELINES = (
    "rep_commit",
    "rep_commit_crm_fill",
    "rep_commit_submitted",
    "stage_weighted_crm",
    "stage_weighted_history",
    "seasonal_naive",
)


def _submitted(subs: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    s = subs.rename({"period_type": "period_kind", "user_id": "owner_id"})
    pairs = snaps.join(s, on=["period_kind", "period_start"], how="inner").filter(
        pl.col("submitted_at") <= pl.col("moment")
    )
    latest = (
        pairs.sort("submitted_at")
        .group_by(*KEY, "owner_id")
        .agg(value=pl.col("commit_amount").last())
    )
    return latest.with_columns(method=pl.lit("rep_commit_submitted"))


def _filled(
    subs: pl.DataFrame, submitted: pl.DataFrame, weighted: pl.DataFrame, name: str
) -> pl.DataFrame:
    """Each rep's call, or their stage-weighted pipeline and wins where they have none;
    nothing for a CRM whose reps never call (maven): there is no commit to fill."""
    if subs.is_empty():
        submitted, weighted = submitted.clear(), weighted.clear()
    both = submitted.select(*KEY, "owner_id", called="value").join(
        weighted.select(*KEY, "owner_id", weighted="value"),
        on=[*KEY, "owner_id"],
        how="full",
        coalesce=True,
    )
    return both.select(
        *KEY,
        "owner_id",
        value=pl.coalesce("called", "weighted"),
        method=pl.lit(name),
        submitted=pl.col("called").is_not_null(),
    )


def _weighted(rows: pl.DataFrame, rate: pl.Expr, so_far: pl.DataFrame, name: str) -> pl.DataFrame:
    pipe = (
        rows.filter(pl.col("in_period"))
        .group_by(*KEY, "owner_id")
        .agg(pipe=(pl.col("amount").fill_null(0.0) * rate).sum())
    )
    out = pipe.join(so_far, on=[*KEY, "owner_id"], how="full", coalesce=True)
    return out.select(
        *KEY,
        "owner_id",
        value=pl.col("pipe").fill_null(0.0) + pl.col("won").fill_null(0.0),
        method=pl.lit(name),
    )


def _history_rates(rows: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    """Per snapshot: per stage, the amount-weighted win-in-period rate of in-period deals
    at the same kind and offset in periods that ended by the snapshot's moment."""
    done = (
        rows.filter(pl.col("in_period"))
        .group_by("period_kind", "offset", "period_end", "stage")
        .agg(
            won=(pl.col("won_amount").fill_null(0.0) * pl.col("won")).sum(),
            total=pl.col("amount").fill_null(0.0).sum(),
        )
        .rename({"period_end": "ended"})
    )
    pairs = snaps.join(done, on=["period_kind", "offset"], how="inner").filter(
        pl.col("ended").cast(pl.Datetime("us")) <= pl.col("moment")
    )
    return pairs.group_by(*KEY, "stage").agg(
        rate=pl.col("won").sum() / pl.col("total").sum().clip(1.0)
    )


def _seasonal_naive(actuals: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    per = actuals.group_by("period_kind", "period_start", "owner_id").agg(
        value=pl.col("amount").sum()
    )
    if per.is_empty():
        return pl.DataFrame(
            schema={
                **dict.fromkeys(KEY),
                "owner_id": pl.String,
                "value": pl.Float64,
                "method": pl.String,
            }
        ).cast({"period_kind": pl.String, "period_start": pl.Date, "offset": pl.Int64})
    first = per["period_start"].min()
    year_ago = pl.col("period_start").dt.offset_by("-1y")
    previous = (
        pl.when(pl.col("period_kind") == "month")
        .then(pl.col("period_start").dt.offset_by("-1mo"))
        .otherwise(pl.col("period_start").dt.offset_by("-3mo"))
    )
    s = snaps.with_columns(source=pl.when(year_ago >= first).then(year_ago).otherwise(previous))
    out = s.join(
        per,
        left_on=["period_kind", "source"],
        right_on=["period_kind", "period_start"],
        how="inner",
    )
    return out.select(*KEY, "owner_id", "value", method=pl.lit("seasonal_naive"))


def baselines(
    rows: pl.DataFrame,
    snaps: pl.DataFrame,
    so_far: pl.DataFrame,
    subs: pl.DataFrame,
    actuals: pl.DataFrame,
    definitions: Any,
) -> pl.DataFrame:
    """Every baseline's value per snapshot and owner: (KEY, owner_id, value, method,
    submitted); ``submitted`` is set on the filled commits' rows only (null elsewhere)."""
    crm = {s.key: s.probability for s in definitions.stages}
    default = pl.col("stage").replace_strict(crm, default=0.0, return_dtype=pl.Float64)
    rates = _history_rates(rows, snaps)
    hist_rows = rows.join(rates, on=[*KEY, "stage"], how="left")
    submitted = _submitted(subs, snaps)
    weighted = _weighted(rows, default, so_far, "stage_weighted_crm")
    history = _weighted(
        hist_rows, pl.col("rate").fill_null(default), so_far, "stage_weighted_history"
    )
    parts = [
        _filled(subs, submitted, history, "rep_commit"),
        _filled(subs, submitted, weighted, "rep_commit_crm_fill"),
        submitted,
        weighted,
        history,
        _seasonal_naive(actuals, snaps),
    ]
    # Values to the cent: polars' threaded sums over deals vary in the last bit from run to
    # run, and the filled commit is combined with the simulation, so a snapshot an earlier
    # run scored would not equal the same snapshot scored again (the backtest cache).
    return pl.concat(
        [
            p.select(
                *KEY,
                "owner_id",
                pl.col("value").cast(pl.Float64).round(2),
                "method",
                pl.col("submitted")
                if "submitted" in p.columns
                else pl.lit(None, pl.Boolean).alias("submitted"),
            )
            for p in parts
        ]
    )
