"""Rep forecast submissions: biased, and carrying what reps know that the CRM does not."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

__all__ = ["submissions", "revenue"]

_POINTS = {"quarter": [0, 28, 56], "month": [0, 14]}


def revenue(opps: pl.DataFrame, period: str) -> pl.DataFrame:
    """Won revenue per owner and period start, by the real win date."""
    every = "1q" if period == "quarter" else "1mo"
    return (
        opps.filter(pl.col("won") & pl.col("closed"))
        .with_columns(period_start=pl.col("outcome_at").dt.truncate(every).dt.date())
        .group_by("owner_id", "period_start")
        .agg(won_amount=pl.col("amount").sum(), won_deals=pl.len())
        .with_columns(period_type=pl.lit(period))
    )


def submissions(
    rng: np.random.Generator,
    opps: pl.DataFrame,
    traits: pl.DataFrame,
    start: dt.datetime,
    as_of: dt.datetime,
) -> pl.DataFrame:
    frames = []
    for period, offsets in _POINTS.items():
        every = "1q" if period == "quarter" else "1mo"
        starts = pl.date_range(
            pl.lit(start.date()).dt.truncate(every),
            as_of.date(),
            interval=every.replace("1q", "3mo"),
            eager=True,
        )
        grid = traits.join(pl.DataFrame({"period_start": starts}), how="cross")
        actual = (
            revenue(opps, period)
            .select("owner_id", "period_start", "won_amount")
            .rename({"owner_id": "user_id"})
        )
        grid = grid.join(actual, on=["user_id", "period_start"], how="left").with_columns(
            pl.col("won_amount").fill_null(0.0)
        )
        grid = (
            grid.sort("user_id", "period_start")
            .with_columns(
                run_rate=pl.col("won_amount")
                .shift(1)
                .rolling_mean(3, min_samples=1)
                .over("user_id")
            )
            .with_columns(pl.col("run_rate").fill_null(pl.col("won_amount").mean().over("user_id")))
        )
        length = 91.0 if period == "quarter" else 30.0
        for off in offsets:
            g = grid.with_columns(
                submitted_at=pl.col("period_start").cast(pl.Datetime("us"))
                + pl.duration(days=off, hours=9)
            )
            g = g.filter(pl.col("submitted_at") <= as_of)
            k = len(g)
            # What the rep knows grows through the period; what they say is bent by their bias.
            w = np.clip(g["insight"].to_numpy() * (0.5 + 1.0 * off / length), 0, 1)
            said = g["commit_bias"].to_numpy() * (
                w * g["won_amount"].to_numpy() * np.exp(rng.normal(0, 0.10, k))
                + (1 - w) * g["run_rate"].to_numpy() * np.exp(rng.normal(0, 0.20, k))
            )
            frames.append(g.select("user_id", "period_start", "submitted_at").with_columns(
                period_type=pl.lit(period), commit_amount=np.round(said, -2),
                best_case_amount=np.round(said * rng.uniform(1.2, 1.6, k), -2),
            ))  # fmt: skip
    out = pl.concat(frames).sort("submitted_at", "user_id", "period_type")
    return out.with_columns(
        submission_id=pl.format("F{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8))
    )
