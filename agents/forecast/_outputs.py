"""The forecast's results as rows of its ops tables (migration 005)."""

from __future__ import annotations

import polars as pl

from revstack.agents.forecast._backtest import Forecast
from revstack.agents.forecast._scores import reliability

__all__ = ["to_outputs"]


def _ordered(df: pl.DataFrame) -> pl.DataFrame:
    # Quantiles of the same draws are ordered; this only guards the last float digit.
    return df.with_columns(p10=pl.min_horizontal("p10", "p50"), p90=pl.max_horizontal("p90", "p50"))


def to_outputs(fc: Forecast) -> dict[str, pl.DataFrame]:
    """``{"ops.forecasts": ..., "ops.forecast_drivers": ..., ...}`` for the engine to write."""
    live = fc.agent.filter(pl.col("live")) if len(fc.agent) else fc.agent
    at = ["period_kind", "period_start", "offset", "segment_kind", "segment"]
    commits = (
        fc.baselines.filter(pl.col("method") == "rep_commit")
        .select(
            *at,
            rep_commit="value",
            reps=pl.col("reps").cast(pl.Int32),
            reps_called=pl.col("reps_submitted").cast(pl.Int32),
        )
        .join(
            fc.baselines.filter(pl.col("method") == "rep_commit_submitted").select(
                *at, rep_commit_calls="value"
            ),
            on=at,
            how="left",
        )
        # A segment nobody in has called has no row of calls: its calls are nothing.
        .with_columns(
            rep_commit_calls=pl.when(pl.col("reps").is_not_null()).then(
                pl.col("rep_commit_calls").fill_null(0.0)
            )
        )
        if len(fc.baselines)
        else None
    )
    forecasts = pl.DataFrame()
    if len(live):
        forecasts = live
        if commits is not None:
            forecasts = forecasts.join(commits, on=at, how="left")
        else:
            forecasts = forecasts.with_columns(
                rep_commit=pl.lit(None, pl.Float64),
                rep_commit_calls=pl.lit(None, pl.Float64),
                reps=pl.lit(None, pl.Int32),
                reps_called=pl.lit(None, pl.Int32),
            )
        forecasts = _ordered(forecasts).select(
            snapshot_date=pl.col("moment").cast(pl.Date),
            snapshot_at="moment",
            period_kind="period_kind",
            period_start="period_start",
            period_offset=pl.col("offset").cast(pl.Int32),
            segment_kind="segment_kind",
            segment="segment",
            p10="p10",
            p50="p50",
            p90="p90",
            expected="expected",
            won_to_date="won_to_date",
            pipeline_expected="pipeline_expected",
            new_expected="new_expected",
            rep_commit="rep_commit",
            rep_commit_calls="rep_commit_calls",
            reps="reps",
            reps_called="reps_called",
        )
    drivers = pl.DataFrame()
    if len(fc.drivers):
        drivers = fc.drivers.with_columns(
            rank=pl.int_range(1, pl.len() + 1).over("period_kind", "period_start").cast(pl.Int32)
        ).select(
            "period_kind",
            "period_start",
            "rank",
            "opportunity_id",
            "owner_id",
            "stage",
            "amount",
            "close_date",
            win_probability="p",
            expected=pl.col("p") * pl.col("value"),
            variance_share="variance_share",
        )
    past = fc.agent.filter(~pl.col("live")) if len(fc.agent) else fc.agent
    parts = []
    if len(past):
        parts.append(
            _ordered(past).select(
                method=pl.lit("agent"),
                period_kind="period_kind",
                period_start="period_start",
                period_offset=pl.col("offset").cast(pl.Int32),
                snapshot_at="moment",
                segment_kind="segment_kind",
                segment="segment",
                p10="p10",
                p50="p50",
                p90="p90",
                expected="expected",
                crps="crps",
                actual="actual",
            )
        )
        moments = past.select("period_kind", "period_start", "offset", "moment").unique()
        base = fc.baselines.join(moments, on=["period_kind", "period_start", "offset"], how="inner")
        parts.append(
            base.select(
                method="method",
                period_kind="period_kind",
                period_start="period_start",
                period_offset=pl.col("offset").cast(pl.Int32),
                snapshot_at="moment",
                segment_kind="segment_kind",
                segment="segment",
                p10="value",
                p50="value",
                p90="value",
                expected="value",
                crps=(pl.col("value") - pl.col("actual")).abs(),
                actual="actual",
            )
        )
    backtest = pl.concat(parts) if parts else pl.DataFrame()
    rel = []
    if len(fc.deals):
        for kind in sorted(fc.deals["period_kind"].unique().to_list()):
            d = fc.deals.filter(pl.col("period_kind") == kind)
            rel.append(
                reliability(d["p"].to_numpy(), d["won"].to_numpy()).with_columns(
                    period_kind=pl.lit(kind)
                )
            )
    return {
        "ops.forecasts": forecasts,
        "ops.forecast_drivers": drivers,
        "ops.forecast_backtest": backtest,
        "ops.forecast_reliability": pl.concat(rel) if rel else pl.DataFrame(),
    }
