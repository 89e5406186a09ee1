"""The pipeline health agent's rules: one boolean signal per risk its design names
(docs/design.md, The five agents), with a severity to rank by and a reason a manager
reads. Pure functions over the frames ``agents.features.deal_states`` returns, so the
agent and the backtest share them.

Benchmarks are learned from won deals: for each stage, how long deals that went on to
win sat quiet (days since the last answer) and in the stage, seen week by week. The
stage's definitions.yaml threshold (quiet_days x at_risk.quiet_multiple) is the floor
of the quiet benchmark, so learning can make the rule more patient, never stricter
than RevOps wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = [
    "SIGNALS",
    "Benchmarks",
    "learn_benchmarks",
    "rule_flags",
    "QUIET_QUANTILE",
    "STAGE_AGE_QUANTILE",
    "AMOUNT_CUT",
]

# What each signal means, as the digest and the dashboard say it.
SIGNALS: dict[str, str] = {
    "gone_quiet": "no answer from the buyer for longer than won deals in the stage go quiet",
    "close_date_slipped": "close date pushed more than twice",
    "champion_departed": "the champion on the deal has left (inactive or bouncing)",
    "low_multithreading": "too few engaged buyers or no economic buyer, in proposal or later",
    "stage_age_outlier": "in the stage longer than nine in ten won deals stayed",
    "close_date_passed": "the close date is already past and the deal is still open",
    "amount_cut": "the amount was cut by a fifth or more since the deal opened",
    "phantom": "close date long past and silent for weeks: probably already lost",
    "model": "the learned risk score: likely to slip out of its quarter or be lost within 4 weeks",
}
QUIET_QUANTILE = 0.8  # won deals quieter than this share of won deals count as unusual
STAGE_AGE_QUANTILE = 0.9
AMOUNT_CUT = 0.8  # amount now / first amount below this is a cut


@dataclass(frozen=True)
class Benchmarks:
    """Per open stage: days quiet and days in stage above which a deal is unusual."""

    quiet_days: dict[str, float]
    stage_age_days: dict[str, float]
    won_deals: int  # how many won deals they were learned from

    def to_dict(self) -> dict[str, Any]:
        return {
            "quiet_days": self.quiet_days,
            "stage_age_days": self.stage_age_days,
            "won_deals": self.won_deals,
        }


def learn_benchmarks(states: pl.DataFrame, won: pl.Series, definitions: Any) -> Benchmarks:
    """Benchmarks from the open-deal ``states`` (many moments) of deals in ``won``.

    The caller passes only deals already won, and only states from before the moment
    the benchmarks are used at, so nothing comes from the future.
    """
    risk = definitions.at_risk
    open_stages = [s for s in definitions.stages if not s.closed]
    w = states.filter(pl.col("opportunity_id").is_in(won.implode()))
    by = w.group_by("stage").agg(
        q=pl.col("days_since_two_way").quantile(QUIET_QUANTILE),
        a=pl.col("days_in_stage").quantile(STAGE_AGE_QUANTILE),
        n=pl.len(),
    )
    learned = {r["stage"]: r for r in by.iter_rows(named=True) if r["n"] >= 20}
    quiet, age = {}, {}
    for s in open_stages:
        floor = (s.quiet_days or 14) * risk.quiet_multiple
        row = learned.get(s.key)
        quiet[s.key] = float(max(floor, row["q"])) if row else float(floor)
        age[s.key] = float(row["a"]) if row else float("inf")
    return Benchmarks(quiet, age, int(w["opportunity_id"].n_unique()))


def _stage_map(values: dict[str, float]) -> pl.Expr:
    return pl.col("stage").replace_strict(values, default=None, return_dtype=pl.Float64)


def rule_flags(states: pl.DataFrame, definitions: Any, bench: Benchmarks) -> pl.DataFrame:
    """One row per (as_of, opportunity_id, signal) that fires: severity and reason."""
    risk, ph = definitions.at_risk, definitions.phantom
    late = (
        [s.key for s in definitions.stages if not s.closed][definitions.stage_index("proposal") :]
        if any(s.key == "proposal" for s in definitions.stages)
        else []
    )
    quiet_floor = {s.key: float(s.quiet_days or 14) for s in definitions.stages if not s.closed}
    s = states.filter(~pl.col("is_closed")).with_columns(
        _quiet=_stage_map(bench.quiet_days),
        _age=_stage_map(bench.stage_age_days),
        _floor=_stage_map(quiet_floor),
    )
    few = pl.col("engaged_contacts") < risk.min_engaged_contacts
    rules: list[tuple[str, pl.Expr, pl.Expr, pl.Expr]] = [
        (
            "gone_quiet",
            pl.col("days_since_two_way") > pl.col("_quiet"),
            pl.col("days_since_two_way") / pl.col("_quiet"),
            pl.format(
                "no answer from the buyer for {} days; won deals in {} go quiet up to {} days",
                "days_since_two_way",
                "stage",
                pl.col("_quiet").round(0).cast(pl.Int64),
            ),
        ),
        (
            "close_date_slipped",
            pl.col("close_date_pushes") >= risk.close_date_pushes,
            pl.col("close_date_pushes").cast(pl.Float64),
            pl.format(
                "close date pushed {} times ({} into a later quarter), {} days later than first planned",
                "close_date_pushes",
                "pushes_out_of_quarter",
                "close_date_moved_days",
            ),
        ),
        (
            "champion_departed",
            pl.col("champion_left") if risk.champion_departed else pl.lit(False),
            1.0 + pl.col("economic_buyer_left").cast(pl.Float64),
            pl.when(pl.col("economic_buyer_left"))
            .then(pl.lit("the champion has left the company, and so has the economic buyer"))
            .otherwise(pl.lit("the champion has left the company (marked inactive or bouncing)")),
        ),
        (
            "low_multithreading",
            pl.col("stage").is_in(late) & (few | ~pl.col("has_economic_buyer")),
            (risk.min_engaged_contacts - pl.col("engaged_contacts")).clip(0).cast(pl.Float64)
            + (~pl.col("has_economic_buyer")).cast(pl.Float64),
            pl.format(
                "{} engaged buyer contact(s) (at least {} wanted){}",
                "engaged_contacts",
                pl.lit(risk.min_engaged_contacts),
                pl.when(pl.col("has_economic_buyer"))
                .then(pl.lit(""))
                .otherwise(pl.lit("; no economic buyer on the deal")),
            ),
        ),
        (
            "stage_age_outlier",
            pl.col("days_in_stage") > pl.col("_age"),
            pl.col("days_in_stage") / pl.col("_age"),
            pl.format(
                "{} days in {}; nine in ten won deals moved on within {} days",
                "days_in_stage",
                "stage",
                pl.col("_age").round(0).cast(pl.Int64),
            ),
        ),
        (
            "close_date_passed",
            pl.col("days_to_close") < 0,
            -pl.col("days_to_close").cast(pl.Float64),
            pl.format("close date {} passed {} days ago", "close_date", -pl.col("days_to_close")),
        ),
        (
            "amount_cut",
            pl.col("amount_ratio") < AMOUNT_CUT,
            1.0 - pl.col("amount_ratio"),
            pl.format(
                "amount cut from {} to {} ({}%)",
                pl.col("first_amount").round(0),
                pl.col("amount").round(0),
                ((pl.col("amount_ratio") - 1) * 100).round(0),
            ),
        ),
        (
            "phantom",
            (pl.col("days_to_close") < -ph.days_past_close)
            & (pl.col("days_since_two_way") > ph.quiet_multiple * pl.col("_floor")),
            -pl.col("days_to_close").cast(pl.Float64),
            pl.format(
                "close date passed {} days ago and no answer for {} days: probably lost already",
                -pl.col("days_to_close"),
                "days_since_two_way",
            ),
        ),
    ]
    parts = [
        s.filter(fires.fill_null(False)).select(
            "as_of",
            "opportunity_id",
            signal=pl.lit(name),
            severity=severity.cast(pl.Float64),
            reason=reason.fill_null(pl.lit(SIGNALS[name])),  # a figure missing: say it plainly
        )
        for name, fires, severity, reason in rules
    ]
    return pl.concat(parts).sort("as_of", "opportunity_id", "signal")
