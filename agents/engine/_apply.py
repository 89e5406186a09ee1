"""Apply proposals to the CRM mirror: a guarded UPDATE that never overwrites a change.

Inside the caller's transaction, for each (object, field) group: compare every
record's current value with the proposal's old value; matching records are written
with one plain UPDATE guarded by the same comparison (plain UPDATE raises DuckDB's
conflict error when another transaction changed the row, unlike UPDATE ... RETURNING:
docs/design.md, The silent lost update); the others become stale.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from revstack.agents.engine._catalog import OBJECTS, check_field, column_types
from revstack.data.warehouse import first_row, frame, registered

__all__ = ["apply_batch", "apply_one", "InvalidValue", "APPLY_RESULT_SCHEMA"]

APPLY_RESULT_SCHEMA = {
    "proposal_id": pl.String,
    "applied": pl.Boolean,
    "before": pl.String,
    "after": pl.String,
}

# {table}, {key}, {field} and {ctype} are checked identifiers from the catalog.
# ``after`` is the value the UPDATE writes (the same cast, only where it will write),
# so it need not be read back.
_CHECK = """
SELECT p.proposal_id,
       {key} IS NOT NULL
         AND t.{field} IS NOT DISTINCT FROM CAST(p.old_value ->> '$' AS {ctype}) AS matches,
       CASE WHEN {key} IS NULL THEN NULL ELSE coalesce(to_json(t.{field})::VARCHAR, 'null') END AS before,
       CASE WHEN {key} IS NOT NULL
                 AND t.{field} IS NOT DISTINCT FROM CAST(p.old_value ->> '$' AS {ctype})
            THEN coalesce(to_json(CAST(p.new_value ->> '$' AS {ctype}))::VARCHAR, 'null')
       END AS after
FROM apply_batch p LEFT JOIN {table} t ON {key} = p.record_id
"""
# The guard is the check's own comparison, so it writes exactly the rows that matched.
_UPDATE = """
UPDATE {table} AS t
SET {field} = CAST(p.new_value ->> '$' AS {ctype}), updated_at = $now
FROM apply_batch p
WHERE {key} = p.record_id
  AND t.{field} IS NOT DISTINCT FROM CAST(p.old_value ->> '$' AS {ctype})
"""

# One proposal (a decision), as bound values: no frame to build and register, and the
# record found by its key. The JSON texts come from the values themselves: where the
# guarded UPDATE writes, the record held exactly the old value.
_VALUES = """
SELECT TRY_CAST(CAST($new AS JSON) ->> '$' AS {ctype}) IS NOT NULL OR $new = 'null' AS valid,
       coalesce(to_json(TRY_CAST($old ->> '$' AS {ctype}))::VARCHAR, 'null') AS before,
       coalesce(to_json(TRY_CAST($new ->> '$' AS {ctype}))::VARCHAR, 'null') AS after
"""
_UPDATE_ONE = """
UPDATE {table} AS t
SET {field} = CAST($new ->> '$' AS {ctype}), updated_at = $now
WHERE {key} = $record AND t.{field} IS NOT DISTINCT FROM CAST($old ->> '$' AS {ctype})
"""
_CURRENT = (
    "SELECT coalesce(to_json(t.{field})::VARCHAR, 'null') FROM {table} t WHERE {key} = $record"
)


class InvalidValue(ValueError):
    """The value cannot be stored in the field's column."""


def apply_one(
    con: duckdb.DuckDBPyConnection,
    *,
    object_type: str,
    record_id: str,
    field: str,
    old_value: str,
    new_value: str,
    now: dt.datetime,
) -> tuple[bool, str | None, str | None]:
    """``apply_batch`` for one proposal: (applied, before, after), JSON text as stored.

    Raises InvalidValue (naming the column type) when ``new_value`` does not fit the
    column. A record that is gone or changed is stale: (False, its value or None, None).
    """
    ctype = check_field(column_types(con), object_type, field)
    obj = OBJECTS[object_type]
    names = {"table": obj.table, "key": obj.record_key, "field": field, "ctype": ctype}
    valid, before, after = first_row(
        con, _VALUES.format(**names), {"old": old_value, "new": new_value}
    )  # type: ignore[misc]
    if not valid:
        raise InvalidValue(ctype)
    params = {"record": record_id, "old": old_value, "new": new_value, "now": now}
    written = first_row(con, _UPDATE_ONE.format(**names), params)
    if written and int(written[0]) == 1:
        return True, str(before), str(after)
    current = first_row(con, _CURRENT.format(**names), {"record": record_id})
    return False, None if current is None else str(current[0]), None


def apply_batch(
    con: duckdb.DuckDBPyConnection, proposals: pl.DataFrame, *, now: dt.datetime
) -> pl.DataFrame:
    """Write each proposal's new value where the record still holds its old value.

    ``proposals`` has proposal_id, object_type, record_id, field, old_value and
    new_value (JSON text; ``new_value`` may be an override). Returns proposal_id,
    applied (False = stale), before and after (JSON text as stored).
    """
    if proposals.is_empty():
        return pl.DataFrame(schema=APPLY_RESULT_SCHEMA)
    types = column_types(con)
    results = []
    for (object_type, field), group in proposals.group_by(
        ["object_type", "field"], maintain_order=True
    ):
        ctype = check_field(types, object_type, field)
        obj = OBJECTS[object_type]
        names = {"table": obj.table, "key": obj.record_key, "field": field, "ctype": ctype}
        batch = group.select("proposal_id", "record_id", "old_value", "new_value")
        with registered(con, "apply_batch", batch):
            checked = frame(con, _CHECK.format(**names))
            if checked["matches"].any():
                con.execute(_UPDATE.format(**names), {"now": now})
        results.append(
            checked.select(
                "proposal_id",
                applied=pl.col("matches").fill_null(False),
                before="before",
                after="after",
            )
        )
    return pl.concat(results).cast(APPLY_RESULT_SCHEMA)  # type: ignore[arg-type]
