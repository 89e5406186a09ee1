"""Approved changes as files a CRM imports: Salesforce Data Loader and HubSpot update CSVs.

What is exported is the net effect in the window: for each record and field the
engine wrote (applies, approvals, rollbacks), the value it holds now. Column names
are the CRM's own, from the inverse of the format's import mapping.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from revstack.agents.engine._catalog import EngineError
from revstack.data.ingest import load_mapping
from revstack.data.warehouse import Warehouse, frame

__all__ = ["export_changes", "ID_COLUMN"]

ID_COLUMN = {"salesforce": "Id", "hubspot": "Record ID"}
_FILES = {
    "salesforce": {"accounts": "Account", "contacts": "Contact", "opportunities": "Opportunity"},
    "hubspot": {"accounts": "companies", "contacts": "contacts", "opportunities": "deals"},
}
_WRITES = """
SELECT object_type, record_id, field, arg_max(after, seq) AS value_json, max(logged_at) AS last_change
FROM ops.audit_log
WHERE action IN ('apply', 'rollback') AND field IS NOT NULL
  AND logged_at >= $since AND logged_at <= $until
GROUP BY ALL ORDER BY object_type, record_id, field
"""


def export_changes(
    wh: Warehouse,
    fmt: str,
    out: Path,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, int]:
    """Write one update CSV per object into ``out``; returns rows per file."""
    if fmt not in ID_COLUMN:
        raise EngineError(f"export format must be one of {', '.join(ID_COLUMN)}, got {fmt!r}")
    mapping = load_mapping(fmt)
    with wh.connect() as con:
        writes = frame(
            con, _WRITES, {"since": since or dt.datetime.min, "until": until or dt.datetime.max}
        )
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for object_type, part in writes.group_by("object_type", maintain_order=True):
        obj = object_type[0]
        if obj not in mapping.objects:
            continue
        # target column -> the CRM's column (first source mapped to it)
        crm_name: dict[str, str] = {}
        for source, target in mapping.objects[obj].columns.items():
            crm_name.setdefault(target, source)
        unknown = sorted(set(part["field"]) - set(crm_name))
        if unknown:
            raise EngineError(
                f"no {fmt} column is mapped to {obj}.{', '.join(unknown)}; add it to data/mappings/{fmt}.yaml"
            )
        values = part.with_columns(
            value=pl.col("value_json").str.json_decode(pl.String),
            column=pl.col("field").replace_strict(crm_name),
        )
        wide = values.pivot(
            on="column", index="record_id", values="value", aggregate_function="first"
        ).rename({"record_id": ID_COLUMN[fmt]})
        path = out / f"{_FILES[fmt][obj]}_update.csv"
        wide.write_csv(path)
        written[path.name] = len(wide)
    return written
