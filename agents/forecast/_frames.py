"""The frames every part of the forecast shares: deals open at each snapshot (with what
later happened to them, for training and scoring only), revenue won so far, revenue
won in the whole period, and the roll-up of owner figures into segments.

Owner is the deal's owner at the moment (its history row then) for open deals, and
the owner at the close for won revenue; segments come from ``crm.users`` (team,
region). Everything is keyed by (period_kind, period_start, offset).
"""

from __future__ import annotations

import polars as pl

from revstack.agents.forecast._inputs import attach, with_typical

__all__ = [
    "KEY",
    "SEGMENT_KINDS",
    "deal_rows",
    "won_so_far",
    "period_actuals",
    "rollup",
    "segments_of",
]

KEY = ["period_kind", "period_start", "offset"]
SEGMENT_KINDS = ("company", "region", "team", "rep")
# Snapshot-win pairs ``won_so_far`` holds at once. Every snapshot's pairs at once were
# gigabytes for a moment on a large company, the weekly run's peak (docs/scale.md,
# Weekly run on large).
PAIRS_AT_ONCE = 4_000_000


def deal_rows(
    states: pl.DataFrame, snaps: pl.DataFrame, wins: pl.DataFrame, typical: pl.DataFrame
) -> pl.DataFrame:
    """Each deal open at each snapshot moment, once per period kind the moment belongs
    to, with ``won`` (won before the period ends: the label) and the amount it was won
    for. A blank amount is valued at the typical win of its product before the moment
    (``amount_known`` says which). Labels are only complete for periods that have
    ended; callers filter."""
    # The typical win is a function of the moment and the product alone: found for those
    # two columns, so the whole states are not sorted and joined for it.
    at = with_typical(states.select("as_of", "product"), typical, "as_of")["typical"]
    states = (
        states.with_columns(typical=at)
        .with_columns(
            amount_known=pl.col("amount").is_not_null() & (pl.col("amount") > 0),
        )
        .with_columns(
            amount=pl.when(pl.col("amount_known"))
            .then("amount")
            .otherwise(pl.col("typical").fill_null(0.0))
        )
        .drop("typical")
    )
    rows = states.join(snaps.rename({"moment": "as_of"}), on="as_of", how="inner")
    outcome = wins.select("opportunity_id", "won_at", won_amount="amount")
    rows = attach(rows, outcome, "opportunity_id")
    end = pl.col("period_end").cast(pl.Datetime("us"))
    return rows.with_columns(
        won=(pl.col("won_at").is_not_null() & (pl.col("won_at") < end)).cast(pl.Int8),
        in_period=pl.col("close_date").is_not_null()
        & (pl.col("close_date") >= pl.col("period_start"))
        & (pl.col("close_date") < pl.col("period_end")),
    ).drop("won_at")


def won_so_far(
    wins: pl.DataFrame, snaps: pl.DataFrame, *, pairs_at_once: int = PAIRS_AT_ONCE
) -> pl.DataFrame:
    """Revenue won in each snapshot's period up to its moment, per owner at the close.

    Every snapshot is paired with every win and the pairs outside its period dropped, a
    few snapshots at a time (``pairs_at_once`` pairs at most, but one snapshot's whole):
    the pairs kept are those of the whole cross join, in its order, so the sums are
    the same to the bit, without holding snapshots x wins pairs at once."""
    w = wins.select("won_at", "owner_id", "amount")
    step = max(1, pairs_at_once // max(len(w), 1))
    within = (pl.col("won_at") >= pl.col("period_start").cast(pl.Datetime("us"))) & (
        pl.col("won_at") <= pl.col("moment")
    )
    parts = [
        snaps.slice(lo, step).join(w, how="cross").filter(within)
        for lo in range(0, max(len(snaps), 1), step)
    ]
    pairs = pl.concat(parts, rechunk=True)
    return pairs.group_by(*KEY, "owner_id").agg(won=pl.col("amount").sum())


def period_actuals(
    wins: pl.DataFrame, kinds: tuple[str, ...] = ("month", "quarter")
) -> pl.DataFrame:
    """Revenue won per period and owner at the close: what forecasts are scored against."""
    return pl.concat(
        [
            wins.select(
                period_kind=pl.lit(k),
                period_start=pl.col("won_at")
                .dt.truncate("1mo" if k == "month" else "1q")
                .cast(pl.Date),
                owner_id="owner_id",
                amount="amount",
                created_at="created_at",
                won_at="won_at",
            )
            for k in kinds
        ]
    )


def segments_of(users: pl.DataFrame) -> pl.DataFrame:
    """owner_id -> region and team (unknown owners land in '(none)')."""
    return users.select(
        owner_id="user_id",
        region=pl.col("region").fill_null("(none)"),
        team=pl.col("team").fill_null("(none)"),
    )


def rollup(
    df: pl.DataFrame,
    users: pl.DataFrame,
    values: list[str],
    *,
    by: list[str] | None = None,
    kinds: tuple[str, ...] = SEGMENT_KINDS,
) -> pl.DataFrame:
    """Sum owner-level ``values`` into company, region, team and rep segments."""
    by = KEY if by is None else by
    seg = df.join(segments_of(users), on="owner_id", how="left").with_columns(
        pl.col("region", "team").fill_null("(none)"),
        company=pl.lit("company"),
        rep=pl.col("owner_id").fill_null("(none)"),
    )
    parts = [
        seg.group_by(*by, pl.col(kind).alias("segment"))
        .agg([pl.col(v).sum() for v in values])
        .with_columns(segment_kind=pl.lit(kind))
        for kind in kinds
    ]
    return pl.concat(parts).select(*by, "segment_kind", "segment", *values)
