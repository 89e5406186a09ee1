"""Forecast accuracy, side by side: the agent against each baseline.

``accuracy`` takes the backtest frames (from the agent's run or from ``revstack
forecast backtest``) and returns, per period kind and snapshot point, MAPE, WAPE,
bias, share over-forecast and within ±5% / ±10% for the agent and every baseline, the
agent's MAPE over each baseline's with a 90% interval from resampling periods; for
the agent's range, coverage with its binomial interval (over all snapshot points, also one
from resampling whole periods), tail exceedance, pinball loss,
CRPS and its skill against each baseline, and interval width. ``deal_calibration``
scores the deal probabilities (Brier, reliability). ``truth_actuals`` replaces the
CRM's actuals by the generator's truth where the warehouse has it (a generated
company: won deals with a blank CRM amount are valued at their real amount).
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.agents.forecast import accuracy, deal_calibration, summary_table
from revstack.data.warehouse import frame, scalar

__all__ = ["accuracy", "deal_calibration", "truth_actuals", "with_actuals", "summary_table"]

_TRUTH = """
SELECT r.period_type AS period_kind, r.period_start, r.owner_id,
       coalesce(u.region, '(none)') AS region, coalesce(u.team, '(none)') AS team,
       r.won_amount::DOUBLE AS amount
FROM truth.revenue r LEFT JOIN crm.users u ON u.user_id = r.owner_id
"""
_HAS_TRUTH = """
SELECT count(*) FROM information_schema.tables
WHERE table_schema = 'truth' AND table_name = 'revenue'
"""


def truth_actuals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """Real won revenue per period and segment (company, region, team), or None."""
    if not scalar(con, _HAS_TRUTH):
        return None
    t = frame(con, _TRUTH)
    if t.is_empty():
        return None
    keys = ["period_kind", "period_start"]
    parts = [
        t.group_by(keys)
        .agg(pl.col("amount").sum())
        .with_columns(segment_kind=pl.lit("company"), segment=pl.lit("company"))
    ]
    for kind in ("region", "team"):
        parts.append(
            t.group_by(*keys, pl.col(kind).alias("segment"))
            .agg(pl.col("amount").sum())
            .with_columns(segment_kind=pl.lit(kind))
        )
    return pl.concat([p.select(*keys, "segment_kind", "segment", truth="amount") for p in parts])


def with_actuals(df: pl.DataFrame, truth: pl.DataFrame | None) -> pl.DataFrame:
    """Swap the CRM's actual for the truth where there is one (and the period is over)."""
    if truth is None or df.is_empty():
        return df
    on = ["period_kind", "period_start", "segment_kind", "segment"]
    j = df.join(truth, on=on, how="left")
    return j.with_columns(
        actual=pl.when(pl.col("actual").is_not_null())
        .then(pl.coalesce("truth", pl.lit(0.0)))
        .otherwise(None)
    ).drop("truth")
