"""Approved changes as files a CRM imports: Salesforce Data Loader and HubSpot update CSVs.

What is exported is the net effect in the window: for each record and field the
engine wrote (applies, approvals, rollbacks), the value it holds now. Column names
are the CRM's own, from the inverse of the format's import mapping.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl

from revstack.agents.engine._catalog import EngineError
from revstack.data.csvwriter import write_csv
from revstack.data.errors import InputError
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
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; --out takes a directory for the update CSVs")
    mapping = load_mapping(fmt)
    with wh.connect() as con:
        writes = frame(
            con, _WRITES, {"since": since or dt.datetime.min, "until": until or dt.datetime.max}
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the directory {out}: {exc.strerror}") from exc
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
        values = part.with_columns(column=pl.col("field").replace_strict(crm_name))
        wide = values.pivot(
            on="column", index="record_id", values="value_json", aggregate_function="first"
        )
        wide = wide.with_columns(_typed(wide[c]) for c in wide.columns if c != "record_id").rename(
            {"record_id": ID_COLUMN[fmt]}
        )
        path = out / f"{_FILES[fmt][obj]}_update.csv"
        write_csv(wide, path)
        written[path.name] = len(wide)
    return written


def _typed(column: pl.Series) -> pl.Series:
    """A column of JSON values as the type they share: a field the engine wrote numbers to
    stays numeric (the CSV writer neutralises text cells only, and -5 is a number)."""
    decoded: list[Any] = [None if v is None else json.loads(v) for v in column.to_list()]
    present = [v for v in decoded if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pl.Series(column.name, decoded, pl.Boolean)
    numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
    if present and len(numbers) == len(present):
        kind = pl.Int64 if all(isinstance(v, int) for v in numbers) else pl.Float64
        return pl.Series(column.name, decoded, kind)
    text = [v if v is None or isinstance(v, str) else json.dumps(v) for v in decoded]
    return pl.Series(column.name, text, pl.String)
