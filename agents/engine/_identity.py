"""The identity map's invariant: every account and contact has a row, its own entity
until a merge someone approved says otherwise; and people's answers about pairs.

Merge proposals are then guarded writes of one column (entity_id) like any other: an
approval applies only if the record still maps where the proposal saw it, and undoing
one (unmerge) is a rollback of that write.

``mark_pair`` records a reviewer's answer about two records (the same entity or not),
asked on the Data quality page from the pairs the hygiene run found hardest; the next
run learns from every answer (docs/identity.md, Labels).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from revstack.agents.engine._audit import AuditEntry, append, to_json
from revstack.agents.engine._catalog import EngineError
from revstack.agents.engine._people import require_role
from revstack.agents.engine._units import in_transaction, now_utc
from revstack.data.warehouse import Warehouse, frame, scalar

__all__ = ["identity_labels", "mark_pair", "seed_identity"]

_OBJECTS = ("accounts", "contacts")
_EXISTS = {
    "accounts": "SELECT count(*) FROM crm.accounts WHERE account_id IN ($a, $b)",
    "contacts": "SELECT count(*) FROM crm.contacts WHERE contact_id IN ($a, $b)",
}
_MARK = """
INSERT INTO ops.identity_labels
    (label_id, object_type, left_id, right_id, same, labelled_by, labelled_at, note)
VALUES (nextval('ops.identity_label_seq'), $kind, $a, $b, $same, $by, $at, $note)
RETURNING label_id
"""
# A pair's latest answer counts; earlier ones stay, as the audit log's do.
_LATEST = """
SELECT object_type, left_id, right_id, same, labelled_by, labelled_at, note
FROM ops.identity_labels
WHERE $kind IS NULL OR object_type = $kind
QUALIFY row_number() OVER (PARTITION BY object_type, left_id, right_id ORDER BY label_id DESC) = 1
ORDER BY object_type, left_id, right_id
"""

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


def mark_pair(
    wh: Warehouse,
    *,
    by: str,
    object_type: str,
    left_id: str,
    right_id: str,
    same: bool,
    note: str = "",
) -> int:
    """Record that two accounts (or contacts) are one entity, or are not; the mark's id.

    Reviewers and admins answer; both records must exist. The pair is stored with the
    smaller id first, whichever order it was given in.
    """
    if object_type not in _OBJECTS:
        raise EngineError(f"unknown object type {object_type!r}; one of {', '.join(_OBJECTS)}")
    a, b = sorted((str(left_id), str(right_id)))
    if a == b:
        raise EngineError(f"a pair needs two records; {a!r} was given twice")

    def work(con: duckdb.DuckDBPyConnection) -> int:
        require_role(con, by, "reviewer")
        if int(scalar(con, _EXISTS[object_type], {"a": a, "b": b})) != 2:
            raise EngineError(f"no {object_type[:-1]} {a!r} or {b!r}; nothing was marked")
        at = now_utc()
        label_id = int(
            scalar(
                con,
                _MARK,
                {
                    "kind": object_type,
                    "a": a,
                    "b": b,
                    "same": same,
                    "by": by,
                    "at": at,
                    "note": note,
                },
            )
        )
        detail = {"right_id": b, "same": same, "note": note, "label_id": label_id}
        append(
            con,
            [
                AuditEntry(
                    actor=by,
                    actor_kind="person",
                    action="identity_mark",
                    object_type=object_type,
                    record_id=a,
                    detail=to_json(detail),
                )
            ],
            at=at,
        )
        return label_id

    return in_transaction(wh, work)


def identity_labels(con: duckdb.DuckDBPyConnection, object_type: str | None = None) -> pl.DataFrame:
    """Every pair's latest mark (object_type, left_id, right_id, same, labelled_by,
    labelled_at, note)."""
    return frame(con, _LATEST, {"kind": object_type})
