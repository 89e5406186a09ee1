"""Write a built company into the warehouse: one transaction, all or nothing."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl

from revstack.data.clock import now_utc
from revstack.data.warehouse import Warehouse, frame, registered, scalar

__all__ = ["TABLES", "write"]

TABLES = [
    "crm.users",
    "crm.accounts",
    "crm.contacts",
    "crm.opportunities",
    "crm.opportunity_contacts",
    "crm.opportunity_history",
    "crm.activities",
    "crm.forecast_submissions",
    "ref.enrichment",
    "ref.news",
    "truth.entities",
    "truth.defects",
    "truth.firmographics",
    "truth.deal_outcomes",
    "truth.slips",
    "truth.rep_profiles",
    "truth.champion_departures",
    "truth.contact_changes",
    "truth.revenue",
]
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = $s AND table_name = $t AND table_catalog = current_database()
ORDER BY ordinal_position
"""
# --replace clears every table of the data schemas, and the engine's state about the old
# records (the append-only audit log stays: its hash chain is the record of what happened).
_DATA_TABLES = """
SELECT table_schema || '.' || table_name FROM information_schema.tables
WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'
  AND table_schema IN ('crm', 'ref', 'foundation', 'truth')
ORDER BY table_schema, table_name
"""
_ENGINE_STATE = [
    "ops.events",
    "ops.event_consumption",
    "ops.record_state",
    "ops.proposals",
    "ops.field_leases",
    "ops.runs",
    "ops.dq_metrics",
    "ops.dq_snapshots",
    "ops.import_files",
    "ops.imports",
    "ops.risk_flags",
    "ops.risk_scores",
    "ops.risk_backtests",
    "ops.forecasts",
    "ops.briefings",
    "ops.drafts",
    "ops.briefing_opens",
    "ops.draft_blocks",
    "ops.draft_edits",
    "ops.draft_outcomes",
    "ops.identity_clusters",
    "ops.forecast_drivers",
    "ops.forecast_backtest",
    "ops.forecast_reliability",
    "ops.forecast_cache",
    "ops.forecast_cache_snapshots",
    "ops.forecast_cache_segments",
    "ops.forecast_cache_open",
    "ops.forecast_models",
    "ops.forecast_model_trees",
    "ops.forecast_states",
    "ops.forecast_states_head",
    "ops.risk_models",
    "ops.risk_model_trees",
    "ops.identity_review",
    "ops.identity_labels",  # answers about the replaced company's records
    "ops.calibrations",
]
# Ids handed over as numbers (`<column>_no`) to keep big tables small in memory: DuckDB
# writes them out as the generator's id strings (prefix and zero-padded width).
_ID_FORMAT = {
    "activity_id": ("T", 10),
    "history_id": ("H", 10),
    "opportunity_id": ("O", 8),
    "account_id": ("A", 7),
    "contact_id": ("C", 8),
    "owner_id": ("U", 5),
    "changed_by": ("U", 5),
}
_IMPORT = "INSERT INTO ops.imports VALUES ($id, 'generator', $loc, $as_of, $started, $now, $counts)"
_GENERATION = "INSERT INTO truth.generation VALUES ($seed, $scale, $as_of, $now, $params)"


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pl.DataFrame, import_id: int) -> None:
    """INSERT ... SELECT from the frame, column by column in the table's own order and types."""
    schema, name = table.split(".")
    cols = frame(con, _COLUMNS, {"s": schema, "t": name})
    present = []
    for col, dtype in cols.iter_rows():
        if col == "source" and schema == "crm":
            present.append("'generated'")
        elif col == "import_id" and schema == "crm":
            present.append(str(int(import_id)))
        elif col in data.columns:
            present.append(f'CAST("{col}" AS {dtype})')
        elif f"{col}_no" in data.columns and col in _ID_FORMAT:
            prefix, width = _ID_FORMAT[col]
            present.append(f"'{prefix}' || lpad(CAST(\"{col}_no\" AS VARCHAR), {width}, '0')")
        else:
            present.append(f"NULL::{dtype}")
    wanted = set(cols["column_name"]) | {f"{c}_no" for c in cols["column_name"]}
    with registered(con, "gen_batch", data.select([c for c in data.columns if c in wanted])):
        con.execute(
            f"INSERT INTO {table} SELECT {', '.join(present)} FROM gen_batch"
        )  # names from the catalog


def write(
    wh: Warehouse,
    tables: dict[str, pl.DataFrame],
    *,
    scale: str,
    seed: int,
    as_of: dt.date,
    params: str,
    replace: bool,
) -> None:
    """Insert every table in TABLES (popping it from `tables`) in one transaction."""
    started = now_utc()
    with wh.transaction() as con:
        if replace:
            existing = {
                r[0]
                for r in con.execute(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_catalog = current_database()"
                ).fetchall()
            }
            for t in [r[0] for r in con.execute(_DATA_TABLES).fetchall()] + [
                t for t in _ENGINE_STATE if t in existing
            ]:
                con.execute(
                    f"DELETE FROM {t}"
                )  # names from the catalog; single writer, whole company
        import_id = int(scalar(con, "SELECT nextval('ops.import_seq')"))
        counts = json.dumps({t: len(tables[t]) for t in TABLES})
        for table in TABLES:  # each frame is let go once written: large companies need the room
            _insert(con, table, tables.pop(table), import_id)
        now = now_utc()
        as_of_ts = dt.datetime.combine(as_of, dt.time())
        con.execute(
            _IMPORT,
            {
                "id": import_id,
                "loc": f"generator scale={scale} seed={seed}",
                "as_of": as_of_ts,
                "started": started,
                "now": now,
                "counts": counts,
            },
        )
        con.execute(
            _GENERATION,
            {"seed": seed, "scale": scale, "as_of": as_of_ts, "now": now, "params": params},
        )
