"""Golden records: one value per field for each entity of the identity map.

Survivorship, per field, among the entity's records that hold a value:
1. most trusted source (``SOURCE_TRUST``: a CRM export over a generated or unknown one),
2. then the most recently updated record,
3. then the most complete record (most fields filled),
4. then the smallest record id (so the answer never depends on row order).
The rule that decided ("only value" when one record has it) is kept with each value, so
a person can see why it survived.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame

__all__ = ["golden_records", "SOURCE_TRUST", "GOLDEN_FIELDS"]

SOURCE_TRUST = {"salesforce": 3, "hubspot": 3, "maven": 2, "generated": 1}
GOLDEN_FIELDS = {
    "accounts": [
        "name",
        "website",
        "industry",
        "employees",
        "annual_revenue",
        "phone",
        "street",
        "city",
        "state",
        "postal_code",
        "country",
        "owner_id",
    ],
    "contacts": ["first_name", "last_name", "email", "phone", "title", "department", "account_id"],
}
_PK = {"accounts": "account_id", "contacts": "contact_id"}


def golden_records(
    con: duckdb.DuckDBPyConnection, object_type: str, *, only_merged: bool = True
) -> pl.DataFrame:
    """(entity_id, field, value, source_record_id, rule) for every entity (by default only
    those with two or more records: the others are their own golden record)."""
    if object_type not in _PK:
        raise ValueError(f"golden records are kept for accounts and contacts, not {object_type!r}")
    fields = GOLDEN_FIELDS[object_type]
    cols = ", ".join(f"r.{f}::VARCHAR AS {f}" for f in fields)
    records = frame(
        con,
        f"""
        SELECT m.entity_id, r.{_PK[object_type]} AS record_id, r.source,
               coalesce(r.updated_at, r.created_at) AS touched, {cols}
        FROM foundation.entity_map m JOIN crm.{object_type} r ON r.{_PK[object_type]} = m.record_id
        WHERE m.object_type = $kind""",
        {"kind": object_type},
    )  # identifiers from constants
    if only_merged:
        records = records.filter(pl.len().over("entity_id") > 1)
    records = records.with_columns(
        trust=pl.col("source").replace_strict(SOURCE_TRUST, default=0, return_dtype=pl.Int64),
        filled=pl.sum_horizontal([pl.col(f).is_not_null().cast(pl.Int32) for f in fields]),
    )
    long = records.unpivot(
        index=["entity_id", "record_id", "trust", "touched", "filled"],
        on=fields,
        variable_name="field",
        value_name="value",
    ).filter(pl.col("value").is_not_null())
    ranked = long.sort(
        ["entity_id", "field", "trust", "touched", "filled", "record_id"],
        descending=[False, False, True, True, True, False],
        nulls_last=True,
    )
    stats = long.group_by("entity_id", "field").agg(
        holders=pl.len(),
        trusts=pl.col("trust").n_unique(),
        max_trust=pl.col("trust").max(),
        latest=pl.col("touched").max(),
        n_latest=(pl.col("touched") == pl.col("touched").max()).sum(),
    )
    first = ranked.unique(["entity_id", "field"], keep="first", maintain_order=True).join(
        stats, on=["entity_id", "field"]
    )
    return first.select(
        "entity_id",
        "field",
        "value",
        source_record_id="record_id",
        rule=pl.when(pl.col("holders") == 1)
        .then(pl.lit("only value"))
        .when(pl.col("trusts") > 1)
        .then(pl.lit("most trusted source"))
        .when((pl.col("n_latest") == 1) & pl.col("latest").is_not_null())
        .then(pl.lit("most recent"))
        .otherwise(pl.lit("most complete")),
    ).sort("entity_id", "field")
