"""Who may do what: viewers look, reviewers decide, admins roll back and change policy."""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, first_row, frame

__all__ = ["ROLES", "add_person", "require_role", "check_role", "people"]

ROLES = ("viewer", "reviewer", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}

_GET = "SELECT role FROM ops.people WHERE name = $name"
_COUNT = """
SELECT count(*) AS everyone, count(*) FILTER (WHERE role = 'admin') AS admins FROM ops.people
"""
_UPSERT = """
INSERT INTO ops.people (name, role, added_by, added_at) VALUES ($name, $role, $by, $at)
ON CONFLICT (name) DO UPDATE SET role = excluded.role, added_by = excluded.added_by,
    added_at = excluded.added_at
"""
_ALL = "SELECT name, role, added_by, added_at FROM ops.people ORDER BY name"


def require_role(con: duckdb.DuckDBPyConnection, name: str, role: str) -> str:
    """The person's role, if it is at least ``role``; else a clear refusal."""
    row = first_row(con, _GET, {"name": name})
    return check_role(name, None if row is None else str(row[0]), role)


def check_role(name: str, have: str | None, role: str) -> str:
    """``require_role`` for a role already read (None: not a known person)."""
    if have is None:
        raise EngineError(
            f"{name!r} is not a known person; an admin adds them with "
            f"`revstack people add {name!r} --role reviewer --by ADMIN`"
        )
    if _RANK[have] < _RANK[role]:
        raise EngineError(f"{name} is a {have}; this needs the {role} role")
    return have


def add_person(wh: Warehouse, name: str, role: str, *, by: str) -> None:
    """Add or change a person, by an admin. While nobody is configured at all, the first
    person may add themselves as admin; the last admin can be neither demoted nor, by
    demoting themselves, leave the warehouse to whoever adds themselves next."""
    if role not in ROLES:
        raise EngineError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not name.strip():
        raise EngineError("a person needs a name")

    def work(con: duckdb.DuckDBPyConnection) -> None:
        everyone, admins = first_row(con, _COUNT) or (0, 0)
        bootstrap = everyone == 0 and role == "admin" and by == name
        if not bootstrap:
            require_role(con, by, "admin")
        before = first_row(con, _GET, {"name": name})
        if before is not None and before[0] == "admin" and role != "admin" and admins == 1:
            raise EngineError(
                f"{name} is the last admin: make someone else admin first "
                "(a warehouse without an admin cannot change roles or policy)"
            )
        con.execute(_UPSERT, {"name": name, "role": role, "by": by, "at": now_utc()})
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="policy",
                    object_type="person",
                    record_id=name,
                    field="role",
                    before=to_json(before[0] if before else None),
                    after=to_json(role),
                )
            ],
        )

    in_transaction(wh, work)


def people(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Everyone configured, with their role."""
    return frame(con, _ALL)
