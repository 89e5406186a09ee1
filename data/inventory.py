"""What is in a warehouse: schema version, the data's as-of moment, row counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from revstack.data.warehouse import Warehouse, current_version, scalar

__all__ = ["data_as_of", "table_counts", "warehouse_status"]

_TABLES = """
SELECT table_schema || '.' || table_name AS name
FROM information_schema.tables
WHERE table_catalog = current_database()
  AND table_schema IN ('crm', 'ref', 'foundation', 'ops', 'truth')
  AND table_type = 'BASE TABLE'
ORDER BY table_schema, table_name
"""

_AS_OF = "SELECT max(as_of) FROM ops.imports"


def data_as_of(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """The moment the warehouse's data describes: the latest import's as-of, if any."""
    return scalar(con, _AS_OF)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table in the five schemas."""
    names = [r[0] for r in con.execute(_TABLES).fetchall()]
    if not names:
        return {}
    # Table names come from the catalog, not from a user, and are quoted per part.
    parts = [
        f"SELECT '{n}' AS name, count(*) AS n FROM " + ".".join(f'"{p}"' for p in n.split("."))
        for n in names
    ]
    return {name: int(n) for name, n in con.execute(" UNION ALL ".join(parts)).fetchall()}


def warehouse_status(wh: Warehouse) -> dict[str, Any]:
    with wh.connect() as con:
        return {
            "path": str(wh.path),
            "schema_version": current_version(con),
            "as_of": data_as_of(con),
            "tables": table_counts(con),
        }
