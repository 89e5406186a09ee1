"""What the forecast agent stored, as frames for the dashboard and ``revstack metrics``.

The latest forecast run's live ranges, the deals driving them, its rolling backtest
(agent and baselines, actuals from the generator's truth where there is one) and the
reliability of its deal probabilities; plus every stored snapshot over runs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import polars as pl

from revstack.agents.forecast import SAMPLED_WARNING
from revstack.data.warehouse import frame, scalar
from revstack.metrics.forecast import accuracy, summary_table, truth_actuals, with_actuals

__all__ = [
    "latest_run",
    "live_forecasts",
    "snapshot_history",
    "drivers",
    "backtest",
    "reliability_curve",
    "accuracy_table",
    "fan",
    "period_errors",
    "report",
    "combination",
    "sampled_backtest",
    "SAMPLED_WARNING",
]

_LATEST = """
SELECT run_id FROM ops.forecasts GROUP BY run_id ORDER BY max(snapshot_at) DESC, run_id DESC LIMIT 1
"""
_LIVE = "SELECT * EXCLUDE (run_id) FROM ops.forecasts WHERE run_id = $run ORDER BY period_kind, segment_kind, segment"
_HISTORY = """
SELECT run_id, snapshot_date, snapshot_at, period_kind, period_start, period_offset, p10, p50, p90,
       expected, won_to_date, rep_commit
FROM ops.forecasts WHERE segment_kind = $kind AND segment = $segment
ORDER BY snapshot_at, period_kind
"""
_DRIVERS = "SELECT * EXCLUDE (run_id) FROM ops.forecast_drivers WHERE run_id = $run ORDER BY period_kind, rank"
_BACKTEST = """
SELECT * EXCLUDE (run_id) FROM ops.forecast_backtest WHERE run_id = $run
ORDER BY method, period_kind, period_start, period_offset, segment_kind, segment
"""
_RUN_METADATA = "SELECT metadata FROM ops.runs WHERE run_id = $run"
_RELIABILITY = "SELECT * EXCLUDE (run_id) FROM ops.forecast_reliability WHERE run_id = $run ORDER BY period_kind, bin"


def latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run id of the latest stored forecast snapshot, if any."""
    return scalar(con, _LATEST)


def _run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str | None:
    return run_id or latest_run(con)


def combination(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """How the run's live snapshots leaned on the reps' commits: per period kind, the
    commit's weight, both bias factors, the range scale and how many past periods they
    were learned from, and the part of the simulation's bias that is the quarter of the
    year's (quarters; null in runs before it was kept) (the run's metadata; empty for
    runs that did not record it)."""
    rows = _agent_metadata(con, run_id).get("combination") or []
    schema = {
        "period_kind": pl.String,
        "commit": pl.Float64,
        "weight": pl.Float64,
        "sim_bias": pl.Float64,
        "commit_bias": pl.Float64,
        "scale": pl.Float64,
        "periods": pl.Int64,
        "season": pl.Float64,
    }
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def sampled_backtest(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict | None:
    """The run's ``backtest_sample`` (seed, above, to, owners) when its backtest scored a
    sample of teams (a large company), else None."""
    sample = _agent_metadata(con, run_id).get("backtest_sample")
    return sample if isinstance(sample, dict) else None


def _agent_metadata(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict[str, Any]:
    """What the agent recorded of the run (or the latest run): {} without one."""
    run = _run(con, run_id)
    raw = scalar(con, _RUN_METADATA, {"run": run}) if run else None
    return dict(json.loads(raw).get("agent", {})) if raw else {}


def live_forecasts(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """The latest (or given) run's ranges per period and segment, with the gap to commit."""
    run = _run(con, run_id)
    df = frame(con, _LIVE, {"run": run}) if run else pl.DataFrame()
    if df.is_empty():
        return df
    return df.with_columns(gap_to_commit=pl.col("p50") - pl.col("rep_commit"))


def snapshot_history(
    con: duckdb.DuckDBPyConnection, segment_kind: str = "company", segment: str = "company"
) -> pl.DataFrame:
    """Every stored live snapshot of a segment, over runs (history kept per snapshot date)."""
    return frame(con, _HISTORY, {"kind": segment_kind, "segment": segment})


def drivers(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    run = _run(con, run_id)
    return frame(con, _DRIVERS, {"run": run}) if run else pl.DataFrame()


def backtest(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """The stored backtest, with the truth as actual where the warehouse has one."""
    run = _run(con, run_id)
    df = frame(con, _BACKTEST, {"run": run}) if run else pl.DataFrame()
    if df.is_empty():
        return df
    return with_actuals(df, truth_actuals(con))


def reliability_curve(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    run = _run(con, run_id)
    return frame(con, _RELIABILITY, {"run": run}) if run else pl.DataFrame()


def _split(bt: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    agent = bt.filter(pl.col("method") == "agent").rename({"period_offset": "offset"})
    base = bt.filter(pl.col("method") != "agent").rename(
        {"period_offset": "offset", "p50": "value"}
    )
    return agent, base


def _accuracy(
    con: duckdb.DuckDBPyConnection, run_id: str | None, segment_kind: str
) -> list[dict[str, Any]]:
    bt = backtest(con, run_id)
    if bt.is_empty():
        return []
    agent, base = _split(bt)
    return accuracy(agent, base, segment_kind=segment_kind)


def accuracy_table(
    con: duckdb.DuckDBPyConnection, run_id: str | None = None, segment_kind: str = "company"
) -> pl.DataFrame:
    """MAPE, WAPE, bias, within ±5/10%, coverage and CRPS per period kind, offset and method."""
    return summary_table(_accuracy(con, run_id, segment_kind))


def period_errors(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> pl.DataFrame:
    """Company forecast against actual per method, period and snapshot point: the
    accuracy history (signed error, and for the agent whether P10-P90 held it)."""
    bt = backtest(con, run_id)
    if bt.is_empty():
        return bt
    b = bt.filter(
        (pl.col("segment_kind") == "company")
        & pl.col("actual").is_not_null()
        & (pl.col("actual") != 0)
    )
    return b.select(
        "method",
        "period_kind",
        "period_start",
        "period_offset",
        "p10",
        "p50",
        "p90",
        "actual",
        error=(pl.col("p50") - pl.col("actual")) / pl.col("actual"),
        inside=pl.when(pl.col("method") == "agent").then(
            (pl.col("actual") >= pl.col("p10")) & (pl.col("actual") <= pl.col("p90"))
        ),
    ).sort("period_kind", "period_start", "period_offset", "method")


def fan(
    con: duckdb.DuckDBPyConnection,
    period_kind: str,
    period_start: dt.date,
    run_id: str | None = None,
) -> pl.DataFrame:
    """One company period seen from each snapshot: the agent's range, the rep commit and
    the actual, from the backtest (past snapshots) and the live forecast."""
    bt = backtest(con, run_id)
    rows = []
    if not bt.is_empty():
        b = bt.filter(
            (pl.col("segment_kind") == "company")
            & (pl.col("period_kind") == period_kind)
            & (pl.col("period_start") == period_start)
        )
        a = b.filter(pl.col("method") == "agent").select(
            "snapshot_at", "p10", "p50", "p90", "actual"
        )
        c = b.filter(pl.col("method") == "rep_commit").select("snapshot_at", rep_commit="p50")
        rows.append(a.join(c, on="snapshot_at", how="left"))
    live = live_forecasts(con, run_id)
    if not live.is_empty():
        lv = live.filter(
            (pl.col("segment_kind") == "company")
            & (pl.col("period_kind") == period_kind)
            & (pl.col("period_start") == period_start)
        )
        rows.append(
            lv.select(
                "snapshot_at",
                "p10",
                "p50",
                "p90",
                actual=pl.lit(None, pl.Float64),
                rep_commit="rep_commit",
            )
        )
    rows = [r for r in rows if len(r)]
    return pl.concat(rows, how="vertical_relaxed").sort("snapshot_at") if rows else pl.DataFrame()


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """``revstack metrics --agent forecast``: the latest run's backtest scores and its live
    company ranges."""
    run = latest_run(con)
    if run is None:
        return {"run_id": None, "note": "no forecast stored yet: revstack run --agent forecast"}
    live = live_forecasts(con, run).filter(pl.col("segment_kind") == "company")
    return {
        "run_id": run,
        "live": live.select(
            "period_kind",
            "period_start",
            "p10",
            "p50",
            "p90",
            "expected",
            "won_to_date",
            "rep_commit",
            "gap_to_commit",
        ).to_dicts(),
        "backtest_company": _accuracy(con, run, "company"),
        "reliability": reliability_curve(con, run).to_dicts(),
        **_sample_note(con, run),
    }


def _sample_note(con: duckdb.DuckDBPyConnection, run: str) -> dict[str, Any]:
    sample = sampled_backtest(con, run)
    if sample is None:
        return {}
    return {"backtest_sample": sample, "warning": SAMPLED_WARNING.format(**sample)}
