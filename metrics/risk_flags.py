"""The pipeline health agent's flags as people read them: per deal, with its owner,
manager and team, for the digests and the Pipeline risk page. Pure reads of ops.* and
crm.* returning polars frames."""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame, scalar

__all__ = ["FLAG_COLUMNS", "flag_runs", "flags", "deal_flags", "signal_counts"]

# The latest run of the agent that stored flags (or the one asked for).
_LATEST = """
SELECT max(run_id) FROM ops.risk_flags
WHERE ($run IS NULL OR run_id = $run)
"""
_RUNS = """
SELECT f.run_id, min(f.flagged_at) AS flagged_at, count(*) AS flags,
       count(DISTINCT f.opportunity_id) AS deals, any_value(r.mode) AS mode
FROM ops.risk_flags f LEFT JOIN ops.runs r USING (run_id)
GROUP BY f.run_id ORDER BY f.run_id DESC
"""
# Manager: the deal owner's manager (a manager who owns deals is their own manager).
_FLAGS = """
SELECT f.run_id, f.opportunity_id, o.name AS deal, o.stage, o.amount::DOUBLE AS amount,
       o.close_date, o.forecast_category, o.owner_id, u.name AS owner,
       CASE WHEN u.role = 'manager' THEN u.user_id ELSE u.manager_id END AS manager_id,
       m.name AS manager, m.email AS manager_email, coalesce(u.team, m.team) AS team,
       coalesce(u.region, m.region) AS region,
       f.signal, f.flagged_at, f.score, f.severity, f.reason, f.evidence
FROM ops.risk_flags f
JOIN crm.opportunities o USING (opportunity_id)
LEFT JOIN crm.users u ON u.user_id = o.owner_id
LEFT JOIN crm.users m ON m.user_id = CASE WHEN u.role = 'manager' THEN u.user_id
                                          ELSE u.manager_id END
WHERE f.run_id = $run
ORDER BY manager, f.score DESC NULLS LAST, f.opportunity_id, f.signal
"""
FLAG_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "run_id": pl.String,
    "opportunity_id": pl.String,
    "deal": pl.String,
    "stage": pl.String,
    "amount": pl.Float64,
    "close_date": pl.Date,
    "forecast_category": pl.String,
    "owner_id": pl.String,
    "owner": pl.String,
    "manager_id": pl.String,
    "manager": pl.String,
    "manager_email": pl.String,
    "team": pl.String,
    "region": pl.String,
    "signal": pl.String,
    "flagged_at": pl.Datetime("us"),
    "score": pl.Float64,
    "severity": pl.Float64,
    "reason": pl.String,
    "evidence": pl.String,
}


def flag_runs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every agent run that stored flags, newest first: when, how many, shadow or live."""
    return frame(con, _RUNS)


def flags(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """One row per flag of ``run_id`` (default: the latest run), with deal and people."""
    run = scalar(con, _LATEST, {"run": run_id})
    if run is None:
        return pl.DataFrame(schema=FLAG_COLUMNS)
    return frame(con, _FLAGS, {"run": run}).cast(FLAG_COLUMNS)  # type: ignore[arg-type]


def deal_flags(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per flagged deal: its signals, risk, and the reasons in signal order."""
    if rows.is_empty():
        return pl.DataFrame(
            schema={
                **{c: FLAG_COLUMNS[c] for c in _DEAL_KEYS},
                "signals": pl.List(pl.String),
                "risk": pl.Float64,
                "reasons": pl.List(pl.String),
            }
        )
    return (
        rows.group_by(_DEAL_KEYS, maintain_order=True)
        .agg(signals=pl.col("signal"), risk=pl.col("score").max(), reasons=pl.col("reason"))
        .sort("risk", "amount", descending=True, nulls_last=True)
    )


def signal_counts(rows: pl.DataFrame) -> pl.DataFrame:
    """Flags and flagged dollars per signal."""
    return (
        rows.group_by("signal")
        .agg(
            flags=pl.len(), deals=pl.col("opportunity_id").n_unique(), amount=pl.col("amount").sum()
        )
        .sort("flags", descending=True)
    )


_DEAL_KEYS = [
    "opportunity_id",
    "deal",
    "stage",
    "amount",
    "close_date",
    "forecast_category",
    "owner",
    "manager_id",
    "manager",
    "manager_email",
    "team",
    "region",
]
