"""Write a built company into the warehouse: one transaction, all or nothing."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl

from data.warehouse import Warehouse, frame, registered, scalar

__all__ = ["TABLES", "write"]

TABLES = [
    "crm.users", "crm.accounts", "crm.contacts", "crm.opportunities", "crm.opportunity_contacts",
    "crm.opportunity_history", "crm.activities", "crm.forecast_submissions", "ref.enrichment", "ref.news",
    "truth.entities", "truth.defects", "truth.firmographics", "truth.deal_outcomes", "truth.slips",
    "truth.rep_profiles", "truth.champion_departures", "truth.revenue",
]  # fmt: skip
_CRM_LINEAGE = ("source", "import_id")
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = $s AND table_name = $t AND table_catalog = current_database()
ORDER BY ordinal_position
"""
# What --replace clears (the audit log is append-only and stays, with a note).
_CLEAR = [t for t in TABLES] + [
    "foundation.entity_map", "ops.events", "ops.event_consumption", "ops.record_state", "ops.proposals",
    "ops.field_leases", "ops.runs", "ops.dq_metrics", "ops.dq_snapshots",
]  # fmt: skip


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pl.DataFrame, import_id: int) -> None:
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
        else:
            present.append(f"NULL::{dtype}")
    objects = [c for c, t in data.schema.items() if t == pl.Object]
    if objects:  # numpy object arrays (strings with None) become plain strings
        data = data.with_columns(
            [pl.Series(c, data[c].to_list(), dtype=pl.String) for c in objects]
        )
    with registered(con, "gen_batch", data):
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
    with wh.transaction() as con:
        if replace:
            for t in _CLEAR:
                con.execute(f"DELETE FROM {t}")  # bulk reset of a whole company, single writer
            con.execute(
                "DELETE FROM ops.import_files WHERE import_id IN (SELECT import_id FROM ops.imports)"
            )
            con.execute("DELETE FROM ops.imports")
        import_id = int(scalar(con, "SELECT nextval('ops.import_seq')"))  # type: ignore[arg-type]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for table in TABLES:
            _insert(con, table, tables[table], import_id)
        counts = {t: len(tables[t]) for t in TABLES}
        con.execute(
            "INSERT INTO ops.imports VALUES ($id, 'generator', $loc, $as_of, $now, $now, $counts)",
            {"id": import_id, "loc": f"generator scale={scale} seed={seed}", "as_of": dt.datetime.combine(as_of, dt.time()),
             "now": now, "counts": json.dumps(counts)},
        )  # fmt: skip
        con.execute("INSERT INTO truth.generation VALUES ($seed, $scale, $as_of, $now, $params)",
                    {"seed": seed, "scale": scale, "as_of": dt.datetime.combine(as_of, dt.time()), "now": now, "params": params})  # fmt: skip
