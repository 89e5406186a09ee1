"""The pipeline health backtest on real data without history: the maven_crm export.

maven_crm has one row per deal (engage date, close date, stage, close value): no
stage history, activities, contacts or planned close dates. What it does let us
rebuild is when each deal was engaging: from its engage date until its close date
(won or lost) or the export's end. This module turns that into the history rows
``agents.features`` reads (the deal enters "discovery", maven's Engaging, on its
engage date; its amount is unknown until it closes) and the real outcomes into the
shape of ``truth.deal_outcomes``, so the same walk-forward backtest runs on it.

What the data supports: how long a deal has been engaging (the stage-age rule, and
the model, which here sees little more than days open and stage age), measured
against real losses within the horizon. Not supported: gone quiet (no activities),
close-date slips and "close date passed" (no planned close dates), champion
departed and multithreading (no contacts), amount changes (one value, at close),
slipping out of the quarter (no planned close date to slip from). Prospecting deals
have no engage date, so they cannot be placed in time and are left out.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from revstack.data.warehouse import frame, scalar, scratch
from revstack.metrics.pipeline_backtest import run_backtest, signal_quality

__all__ = ["maven_input", "maven_report"]

_HISTORY = """
SELECT opportunity_id || '-engaged' AS history_id, opportunity_id, created_at AS changed_at,
       'discovery' AS stage, NULL::DECIMAL(18, 2) AS amount, NULL::DATE AS close_date,
       'pipeline' AS forecast_category, 0.2 AS probability, owner_id AS changed_by
FROM crm.opportunities WHERE created_at IS NOT NULL
UNION ALL
SELECT opportunity_id || '-closed', opportunity_id, close_date::TIMESTAMP, stage, amount,
       close_date, CASE WHEN is_won THEN 'closed' ELSE 'omitted' END, CASE WHEN is_won THEN 1.0 ELSE 0.0 END,
       owner_id
FROM crm.opportunities WHERE is_closed AND created_at IS NOT NULL AND close_date IS NOT NULL
"""
_OUTCOMES = """
SELECT opportunity_id, CASE WHEN NOT is_closed THEN 'open' WHEN is_won THEN 'won' ELSE 'lost' END
       AS outcome, CASE WHEN is_closed THEN close_date END AS outcome_date
FROM crm.opportunities WHERE created_at IS NOT NULL
"""
_USERS = "SELECT user_id, role, manager_id FROM crm.users"
_EMPTY = {
    "crm.activities": "opportunity_id VARCHAR, contact_id VARCHAR, direction VARCHAR, "
    "status VARCHAR, occurred_at TIMESTAMP",
    "crm.opportunity_contacts": "opportunity_id VARCHAR, contact_id VARCHAR, role VARCHAR, "
    "added_at TIMESTAMP",
    "crm.contacts": "contact_id VARCHAR, is_active BOOLEAN, email_bounced BOOLEAN, "
    "updated_at TIMESTAMP",
    "truth.slips": "opportunity_id VARCHAR, slipped_at TIMESTAMP, new_close_date DATE",
}


def maven_input(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB shaped like a backtest's input, rebuilt from a maven import."""
    parts = {
        "crm.opportunity_history": frame(con, _HISTORY),
        "truth.deal_outcomes": frame(con, _OUTCOMES),
        "crm.users": frame(con, _USERS),
        "ops.imports": frame(con, "SELECT max(as_of) AS as_of FROM ops.imports"),
    }
    mem = scratch()
    for schema in ("crm", "truth", "ops"):
        mem.execute(f"CREATE SCHEMA {schema}")
    for table, data in parts.items():
        mem.register("_part", data)
        mem.execute(f"CREATE TABLE {table} AS SELECT * FROM _part")  # names: constants above
        mem.unregister("_part")
    for table, columns in _EMPTY.items():
        mem.execute(f"CREATE TABLE {table} ({columns})")
    return mem


def maven_report(
    con: duckdb.DuckDBPyConnection, definitions: Any, *, eval_weeks: int = 26
) -> dict[str, Any]:
    """Backtest the signals maven supports against its real outcomes."""
    if not scalar(con, "SELECT count(*) FROM crm.opportunities WHERE created_at IS NOT NULL"):
        raise ValueError("no engaged deals to backtest")
    mem = maven_input(con)
    try:
        bt = run_backtest(mem, definitions, eval_weeks=eval_weeks, train_weeks=26, retrain_weeks=13)
        outcomes = frame(mem, "SELECT opportunity_id, outcome FROM truth.deal_outcomes")
    finally:
        mem.close()
    # The eventual outcome by the export's end, for deals the stage-age rule flagged or not.
    eventual = (
        bt.scored.join(outcomes, on="opportunity_id")
        .group_by(flagged=pl.col("stage_age_outlier").is_not_null())
        .agg(
            deal_weeks=pl.len(),
            won=(pl.col("outcome") == "won").mean(),
            lost=(pl.col("outcome") == "lost").mean(),
            still_open=(pl.col("outcome") == "open").mean(),
        )
        .sort("flagged")
    )
    q = signal_quality(bt, live_only=False)
    supported = ["model", "stage_age_outlier", "naive_no_activity_30d", "any_rule"]
    return {
        "setup": bt.setup,
        "label": "lost within 28 days (maven has no planned close dates to slip)",
        "rows": len(bt.scored),
        "base_rate": q["base_rate"][0],
        "signals": q.filter(pl.col("signal").is_in(supported)).to_dicts(),
        "stage_age_eventual_outcome": eventual.to_dicts(),
        "not_supported": [
            "gone_quiet",
            "close_date_slipped",
            "close_date_passed",
            "champion_departed",
            "low_multithreading",
            "amount_cut",
            "phantom",
        ],
    }
