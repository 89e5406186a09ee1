"""The identity map's invariant: every account and contact has a row, its own entity
until a merge someone approved says otherwise.

Merge proposals are then guarded writes of one column (entity_id) like any other: an
approval applies only if the record still maps where the proposal saw it, and undoing
one (unmerge) is a rollback of that write.
"""

from __future__ import annotations

import datetime as dt

import duckdb

__all__ = ["seed_identity"]

# Unique-key inserts raise on a concurrent insert (docs/design.md, Write conflicts are
# optimistic), so two runs seeding at once cannot both add a row: one retries and finds
# it there.
_SEED = """
INSERT INTO foundation.entity_map (object_type, record_id, entity_id, confidence, method, updated_at)
SELECT kind, id, id, 1.0, 'self', $now FROM (
    SELECT 'accounts' AS kind, account_id AS id FROM crm.accounts
    UNION ALL SELECT 'contacts', contact_id FROM crm.contacts
) r
WHERE NOT EXISTS (SELECT 1 FROM foundation.entity_map m
                  WHERE m.object_type = r.kind AND m.record_id = r.id)
"""


def seed_identity(con: duckdb.DuckDBPyConnection, *, now: dt.datetime) -> None:
    """Give every account and contact without an identity row its own."""
    con.execute(_SEED, {"now": now})
