"""Which CRM objects the engine may write, and how a JSON value becomes a column value."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from revstack.data.errors import RevstackError

__all__ = ["CrmObject", "OBJECTS", "column_types", "check_field", "EngineError"]


class EngineError(RevstackError):
    """The engine refused an operation (unknown proposal, wrong role, bad field...)."""

    exit_code = 2


@dataclass(frozen=True)
class CrmObject:
    object_type: str
    table: str
    pk: str
    # How a proposal's record_id names a row (SQL over the table aliased t): the primary
    # key, or for the identity map "accounts:A0001" (its key is kind and record).
    key: str = ""

    @property
    def record_key(self) -> str:
        return self.key or f"t.{self.pk}"


OBJECTS: dict[str, CrmObject] = {
    o.object_type: o
    for o in (
        CrmObject("accounts", "crm.accounts", "account_id"),
        CrmObject("contacts", "crm.contacts", "contact_id"),
        CrmObject("opportunities", "crm.opportunities", "opportunity_id"),
        CrmObject(
            "entity_map",
            "foundation.entity_map",
            "record_id",
            key="(t.object_type || ':' || t.record_id)",
        ),
    )
}

# Columns no proposal may write: identity and lineage belong to the importers.
_PROTECTED = {"source", "import_id", "created_at", "updated_at", "object_type"}

_TYPES = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE (table_schema = 'crm' OR (table_schema = 'foundation' AND table_name = 'entity_map'))
  AND table_catalog = current_database()
"""


_TYPES_CACHE: dict[tuple[str, str], str] = {}


def column_types(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """(object_type, column) -> DuckDB type, for every writable CRM object.

    Every open warehouse has been migrated to the latest schema, so the answer is
    the same for all of them and is read once per process.
    """
    if not _TYPES_CACHE:
        _TYPES_CACHE.update(
            {
                (table, column): dtype
                for table, column, dtype in con.execute(_TYPES).fetchall()
                if table in OBJECTS
            }
        )
    return _TYPES_CACHE


def check_field(types: dict[tuple[str, str], str], object_type: str, field: str) -> str:
    """The column's type; raises when the object or field is not writable."""
    if object_type not in OBJECTS:
        raise EngineError(f"object type {object_type!r} is not writable by the engine")
    obj = OBJECTS[object_type]
    if field == obj.pk or field in _PROTECTED or (object_type, field) not in types:
        raise EngineError(f"field {object_type}.{field} is not writable by the engine")
    return types[(object_type, field)]
