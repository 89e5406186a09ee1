"""A generated company handed to the warehouse a week at a time.

``Replay.start`` generates the whole company, keeps its CRM in a side file, and leaves
the warehouse holding the CRM as it stood ``weeks`` before the as-of date.
``Replay.advance(at)`` then loads what changed up to ``at``: new records, and records
whose state changed (a deal's stage, a record's latest update), as an upsert by key
under one import record — the write a real import makes, so the engine's change
detection turns it into the same events a weekly CRM sync would.

The generator is not prefix-stable (a company generated with an earlier as-of is a
different company), so the past is cut out of one company. What a cut knows, per table:

- accounts, contacts, users: those created by the moment (and every user a row of the
  cut names, managers up the chain, though created later); a record updated later shows
  its creation time as its last update until the moment passes the real one (its
  other fields are the final ones throughout: the generator keeps no field history;
  but a contact's departure flags, set when the CRM heard, show no departure until then);
- opportunities: those created by the moment (by their first history row where the
  export has no created_at); a deal that changes later stands at its
  last history row before the moment (stage, amount, close date, category,
  probability; closed and won as that stage is elsewhere) — the planted defects of its
  final row appear when the moment passes its last change;
- history, activities, submissions, news: rows dated by the moment; a meeting in the
  fortnight after it shows as scheduled (booked ahead), whatever became of it;
- enrichment: the provider's file whole (a file loaded once); truth: whole.

A value the engine wrote into the warehouse (an approved correction, a merge) is kept
when the record changes later, unless the company changed that same field: the next
export of a real CRM would hold the write-back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from revstack.data.clock import now_utc
from revstack.data.errors import InputError
from revstack.data.generator._generate import generate
from revstack.data.progress import Progress
from revstack.data.warehouse import Warehouse, frame, scalar

__all__ = ["Replay", "REPLAYED"]

# table -> key columns; the order is the order of loading (parents first).
REPLAYED: dict[str, tuple[str, ...]] = {
    "crm.users": ("user_id",),
    "crm.accounts": ("account_id",),
    "crm.contacts": ("contact_id",),
    "crm.opportunities": ("opportunity_id",),
    "crm.opportunity_history": ("history_id",),
    "crm.opportunity_contacts": ("opportunity_id", "contact_id"),
    "crm.activities": ("activity_id",),
    "crm.forecast_submissions": ("submission_id",),
    "ref.news": ("news_id",),
}
# How far ahead a meeting is on the calendar before it happens.
BOOKED_AHEAD = dt.timedelta(days=14)

_CLIPPED = (
    "SELECT * REPLACE (CASE WHEN updated_at > $at THEN created_at ELSE updated_at END "
    "AS updated_at) FROM src.{t} WHERE created_at IS NULL OR created_at <= $at"
)
# A contact's departure flags (inactive, bounced) are set when the CRM hears of it, and
# its record's update is at or after that. A departure counts at a moment only if the
# record is no newer (agents.features), so with its final flags and its update clipped
# to its creation, every departure heard of after the cut counted at every moment since
# the contact was created, weeks before the CRM knew (2,739 contacts in the week to
# 2026-09-24 of mid seed 7). A record updated after the cut shows no departure: every
# moment up to the cut then reads the contacts as the whole company does.
_CONTACTS = (
    "SELECT * REPLACE (CASE WHEN updated_at > $at THEN created_at ELSE updated_at END "
    "AS updated_at, is_active OR coalesce(updated_at > $at, FALSE) AS is_active, "
    "email_bounced AND NOT coalesce(updated_at > $at, FALSE) AS email_bounced) "
    "FROM src.crm.contacts WHERE created_at IS NULL OR created_at <= $at"
)
_OPPORTUNITIES = """
WITH h AS (
    SELECT *, row_number() OVER (PARTITION BY opportunity_id
                                 ORDER BY changed_at DESC, history_id DESC) AS latest,
           stage IS DISTINCT FROM lag(stage) OVER (PARTITION BY opportunity_id
                                                   ORDER BY changed_at, history_id) AS moved
    FROM src.crm.opportunity_history WHERE changed_at <= $at),
last AS (SELECT * FROM h WHERE latest = 1),
moved AS (SELECT opportunity_id, max(changed_at) AS at_ FROM h WHERE moved GROUP BY ALL),
later AS (SELECT DISTINCT opportunity_id FROM src.crm.opportunity_history WHERE changed_at > $at),
opened AS (SELECT opportunity_id, min(changed_at) AS at_ FROM src.crm.opportunity_history
           GROUP BY ALL),
flags AS (SELECT stage, bool_or(is_closed) AS closed, bool_or(is_won) AS won
          FROM src.crm.opportunities GROUP BY ALL)
SELECT o.* REPLACE (
    CASE WHEN r.opportunity_id IS NULL THEN o.stage ELSE l.stage END AS stage,
    CASE WHEN r.opportunity_id IS NULL THEN o.amount ELSE l.amount END AS amount,
    CASE WHEN r.opportunity_id IS NULL THEN o.close_date ELSE l.close_date END AS close_date,
    CASE WHEN r.opportunity_id IS NULL THEN o.forecast_category
         ELSE l.forecast_category END AS forecast_category,
    CASE WHEN r.opportunity_id IS NULL THEN o.probability ELSE l.probability END AS probability,
    CASE WHEN r.opportunity_id IS NULL THEN o.is_closed ELSE coalesce(f.closed, FALSE) END
        AS is_closed,
    CASE WHEN r.opportunity_id IS NULL THEN o.is_won ELSE coalesce(f.won, FALSE) END AS is_won,
    CASE WHEN r.opportunity_id IS NULL THEN o.stage_changed_at
         ELSE coalesce(m.at_, o.created_at) END AS stage_changed_at,
    CASE WHEN o.updated_at <= $at THEN o.updated_at
         ELSE greatest(o.created_at, l.changed_at) END AS updated_at)
FROM src.crm.opportunities o
LEFT JOIN later r ON r.opportunity_id = o.opportunity_id
LEFT JOIN last l ON l.opportunity_id = o.opportunity_id AND r.opportunity_id IS NOT NULL
LEFT JOIN moved m ON m.opportunity_id = o.opportunity_id
LEFT JOIN flags f ON f.stage = l.stage
LEFT JOIN opened n ON n.opportunity_id = o.opportunity_id
WHERE coalesce(o.created_at, n.at_) <= $at AND (r.opportunity_id IS NULL OR l.opportunity_id IS NOT NULL)
"""
# A user created by the moment, or named by a row the cut holds: the generator keeps a
# deal's final owner on its earlier rows (and a successor may be hired after the rows
# name them), and an export of the CRM then would hold every user its rows name. Left
# out, such a user's first week in the warehouse would change rows of the past (a deal's
# owner gains a team), which a real weekly import never does. The rows are those the
# other cuts hold (a deal without a creation time by its history, a record without one
# always), and a user row names its manager, whom the generator may hire after their
# reports: managers are followed up the chain.
_USERS = """
SELECT * FROM src.crm.users WHERE user_id IN (
    WITH RECURSIVE named(user_id) AS (
        SELECT user_id FROM (
            SELECT user_id FROM src.crm.users WHERE created_at IS NULL OR created_at <= $at
            UNION SELECT changed_by FROM src.crm.opportunity_history WHERE changed_at <= $at
            UNION SELECT owner_id FROM src.crm.activities WHERE occurred_at <= $ahead
            UNION SELECT user_id FROM src.crm.forecast_submissions WHERE submitted_at <= $at
            UNION SELECT owner_id FROM src.crm.opportunities WHERE created_at <= $at
            UNION SELECT owner_id FROM src.crm.opportunities WHERE created_at IS NULL
                AND opportunity_id IN (SELECT opportunity_id FROM src.crm.opportunity_history
                                       WHERE changed_at <= $at)
            UNION SELECT owner_id FROM src.crm.accounts
                WHERE created_at IS NULL OR created_at <= $at
            UNION SELECT owner_id FROM src.crm.contacts
                WHERE created_at IS NULL OR created_at <= $at)
        UNION SELECT u.manager_id FROM src.crm.users u JOIN named n ON u.user_id = n.user_id
        WHERE u.manager_id IS NOT NULL)
    SELECT user_id FROM named)
"""
_CUTS = {
    "crm.users": _USERS,
    "crm.accounts": _CLIPPED.format(t="crm.accounts"),
    "crm.contacts": _CONTACTS,
    "crm.opportunities": _OPPORTUNITIES,
    "crm.opportunity_history": "SELECT * FROM src.crm.opportunity_history WHERE changed_at <= $at",
    "crm.opportunity_contacts": (
        "SELECT * FROM src.crm.opportunity_contacts WHERE (added_at IS NULL OR added_at <= $at) "
        "AND opportunity_id IN (SELECT opportunity_id FROM src.crm.opportunities o "
        "WHERE coalesce(o.created_at, (SELECT min(changed_at) FROM src.crm.opportunity_history h "
        "WHERE h.opportunity_id = o.opportunity_id)) <= $at)"
    ),
    "crm.activities": (
        "SELECT * FROM src.crm.activities WHERE occurred_at <= $at UNION ALL "
        "SELECT * REPLACE ('scheduled' AS status) FROM src.crm.activities "
        "WHERE activity_type = 'meeting' AND occurred_at > $at AND occurred_at <= $ahead"
    ),
    "crm.forecast_submissions": (
        "SELECT * FROM src.crm.forecast_submissions WHERE submitted_at <= $at"
    ),
    "ref.news": "SELECT * FROM src.ref.news WHERE published_at <= $at",
}
_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = $s AND table_name = $t
ORDER BY ordinal_position
"""


def cut_sql(table: str) -> str:
    """The rows of ``table`` as they stood at ``$at`` (``$ahead``: the calendar's end),
    read from the side file attached as ``src``."""
    return _CUTS[table]


def _unknown_sql(table: str) -> str:
    """Delete the rows of ``table`` the cut at ``$at`` does not hold (keys absent from it)."""
    keys = REPLAYED[table]
    on = " AND ".join(f"c.{k} = {table}.{k}" for k in keys)
    return f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM ({cut_sql(table)}) c WHERE {on})"


def _changed_sql(table: str) -> str:
    """The cut's rows that differ from the company's whole (``src``): a record changed
    after ``$at``, a meeting booked ahead."""
    return f"SELECT * FROM ({cut_sql(table)}) EXCEPT SELECT * FROM src.{table}"


def _merge_sql(table: str, columns: list[str]) -> str:
    """Rows new or changed between the cuts at ``$prev`` and ``$at``, each column the
    company's new value where the company changed it, else the warehouse's (the engine
    may have written it); a record that was there before and is gone from the warehouse
    (merged away) stays gone."""
    keys = REPLAYED[table]
    on = " AND ".join(f"{{a}}.{k} = d.{k}" for k in keys)
    select = []
    for c in columns:
        if c in keys:
            select.append(f"d.{c}")
        elif c == "import_id":
            select.append("$import_id AS import_id")
        else:
            select.append(
                f"CASE WHEN o.{keys[0]} IS NULL OR d.{c} IS DISTINCT FROM o.{c} "
                f"OR m.{keys[0]} IS NULL THEN d.{c} ELSE m.{c} END AS {c}"
            )
    new = cut_sql(table)
    old = cut_sql(table).replace("$at", "$prev").replace("$ahead", "$prev_ahead")
    return f"""
WITH new AS ({new}), old AS ({old}),
d AS (SELECT * FROM new EXCEPT SELECT * FROM old)
SELECT {", ".join(select)}
FROM d LEFT JOIN old o ON {on.format(a="o")} LEFT JOIN {table} m ON {on.format(a="m")}
WHERE o.{keys[0]} IS NULL OR m.{keys[0]} IS NOT NULL
"""


class Replay:
    """A company kept whole in a side file, loaded into ``wh`` up to a moving moment."""

    def __init__(self, wh: Warehouse, source: Path, at: dt.datetime, scratch: Any) -> None:
        self.wh = wh
        self.source = source
        self.at = at
        self._scratch = scratch  # the temporary folder holding the side file

    @classmethod
    def start(
        cls,
        wh: Warehouse,
        *,
        scale: str,
        seed: int,
        as_of: dt.date,
        weeks: int,
        progress: Progress | None = None,
    ) -> Replay:
        """Generate the company into ``wh`` (which must hold no CRM), keep it whole aside,
        and cut the warehouse back to ``weeks`` weeks before ``as_of``."""
        if weeks < 1:
            raise InputError(f"weeks must be at least 1, got {weeks}")
        generate(wh, scale=scale, seed=seed, as_of=as_of, progress=progress)
        scratch = tempfile.TemporaryDirectory(prefix="revstack-replay-")
        source = Path(scratch.name) / "company.duckdb"
        with wh.connect() as con:
            con.execute(f"ATTACH '{source}' AS src")
            try:
                for table in REPLAYED:
                    schema = table.split(".")[0]
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS src.{schema}")
                    con.execute(f"CREATE TABLE src.{table} AS SELECT * FROM {table}")
            finally:
                con.execute("DETACH src")
        start = dt.datetime.combine(as_of, dt.time()) - dt.timedelta(weeks=weeks)
        params = {"at": start, "ahead": start + BOOKED_AHEAD}
        with _attached(wh, source) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                # Only the rows the start does not know as they are are deleted or
                # replaced; the rest stay as generated. Deleting every row and inserting
                # the whole cut back in one transaction ran out of DuckDB's memory on the
                # large company, at the activities (docs/scale.md, Weekly run on large).
                for table in reversed(REPLAYED):
                    sql = _unknown_sql(table)
                    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
                for table in REPLAYED:
                    sql = f"INSERT OR REPLACE INTO {table} BY NAME {_changed_sql(table)}"
                    con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
                # The warehouse now describes the company at the start, not at its as-of.
                con.execute(
                    "UPDATE ops.imports SET as_of = $at, location = location || $note "
                    "WHERE import_id = (SELECT max(import_id) FROM ops.imports)",
                    {"at": start, "note": f", replayed from {start:%Y-%m-%d}"},
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return cls(wh, source, start, scratch)

    def advance(self, at: dt.datetime) -> dict[str, int]:
        """Load what changed from the last moment to ``at`` in one transaction with its
        import record; returns rows loaded per table."""
        if at <= self.at:
            raise InputError(f"the replay stands at {self.at}; it moves forward only ({at})")
        params = {
            "at": at,
            "ahead": at + BOOKED_AHEAD,
            "prev": self.at,
            "prev_ahead": self.at + BOOKED_AHEAD,
        }
        counts: dict[str, int] = {}
        started = now_utc()
        with _attached(self.wh, self.source) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                import_id = int(scalar(con, "SELECT nextval('ops.import_seq')"))
                for table in REPLAYED:
                    schema, name = table.split(".")
                    columns = frame(con, _COLUMNS, {"s": schema, "t": name})["column_name"]
                    sql = _merge_sql(table, list(columns))
                    if "import_id" not in columns:
                        sql = sql.replace("$import_id AS import_id", "NULL")
                    given = {**params, "import_id": import_id}
                    counts[table] = int(
                        scalar(
                            con,
                            f"INSERT OR REPLACE INTO {table} BY NAME {sql}",
                            {k: v for k, v in given.items() if f"${k}" in sql},
                        )
                    )
                con.execute(
                    "INSERT INTO ops.imports VALUES ($id, 'generator', $loc, $at, $started, "
                    "$now, $counts)",
                    {
                        "id": import_id,
                        "loc": f"replay of the generated company, {self.at:%Y-%m-%d} to {at:%Y-%m-%d}",
                        "at": at,
                        "started": started,
                        "now": now_utc(),
                        "counts": json.dumps(counts),
                    },
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        self.at = at
        return counts

    def close(self) -> None:
        """Remove the side file."""
        self._scratch.cleanup()


@contextlib.contextmanager
def _attached(wh: Warehouse, source: Path) -> Any:
    with wh.connect() as con:
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        try:
            yield con
        finally:
            con.execute("DETACH src")
