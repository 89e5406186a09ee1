"""From an audit figure to the records behind it: each check selects its bad rows.

The audit stores figures (ops.dq_metrics); the records behind a figure are found
again with the same check queries the audit uses (contracts' compiled criteria, the
duplicate finders, the freshness and conflict rules in metrics/quality.py), run on
the warehouse as it is now, then joined to the record's name, owner, team and region
so a person can go and fix them.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.contracts import (
    Definitions,
    load_definitions,
    required_fields_sql,
    stage_violations_sql,
)
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import frame, registered
from revstack.metrics import quality
from revstack.metrics._duplicates import account_duplicates, contact_duplicates

__all__ = ["DRILLABLE", "drill_down", "territories"]

_TERRITORIES = """
SELECT DISTINCT team, region FROM crm.users WHERE team IS NOT NULL OR region IS NOT NULL
ORDER BY team, region
"""

# Enough of each record to recognise it, and its owner's team and region for the filters.
_DETAILS = {
    "accounts": """
        SELECT a.account_id AS record_id, a.name, a.website, a.industry, a.employees,
               a.annual_revenue, a.country, u.name AS owner, u.team, u.region
        FROM crm.accounts a LEFT JOIN crm.users u ON u.user_id = a.owner_id""",
    "contacts": """
        SELECT c.contact_id AS record_id, c.first_name, c.last_name, c.email, c.title,
               c.account_id, c.is_active, u.name AS owner, u.team, u.region
        FROM crm.contacts c LEFT JOIN crm.users u ON u.user_id = c.owner_id""",
    "opportunities": """
        SELECT o.opportunity_id AS record_id, o.name, o.stage, o.amount, o.close_date,
               o.account_id, u.name AS owner, u.team, u.region
        FROM crm.opportunities o LEFT JOIN crm.users u ON u.user_id = o.owner_id""",
}
_ONE_FIELD = "SELECT * FROM ({missing}) WHERE field = $field"
_JOIN = "SELECT b.*, d.* EXCLUDE (record_id) FROM bad b LEFT JOIN ({details}) d USING (record_id)"

DRILLABLE = frozenset(
    {
        "completeness",
        "duplicates_exact",
        "duplicates_suspected",
        "definition",
        "stale",
        "phantom",
        "departed_champion",
        "firmographic_conflict",
    }
)


def territories(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every (team, region) pair of the CRM's users."""
    return frame(con, _TERRITORIES)


def _bad_rows(
    con: duckdb.DuckDBPyConnection, d: Definitions, kind: str, obj: str, item: str
) -> pl.DataFrame:
    """(record_id, ...what is wrong) for one audit figure."""
    if kind == "completeness":  # the filter reaches into the union: one field is scanned
        return frame(con, _ONE_FIELD.format(missing=required_fields_sql(d, obj)), {"field": item})
    if kind in ("duplicates_exact", "duplicates_suspected"):
        found = (account_duplicates if obj == "accounts" else contact_duplicates)(con)
        if kind == "duplicates_exact":
            return found["exact"].sort("group", "record_id")
        return found["suspected"].sort("record_id")
    as_of = data_as_of(con)
    if kind == "definition":
        violations = frame(con, stage_violations_sql(d), {"as_of": as_of})
        return violations.filter(pl.col("stage") == item).rename({"opportunity_id": "record_id"})
    if kind in ("stale", "phantom"):
        _rows, stale, phantom = quality._freshness(con, d, as_of)
        part = stale if kind == "stale" else phantom
        return part.select(
            pl.col("opportunity_id").alias("record_id"),
            "last_activity",
            "days_since_any",
            "days_since_two_way",
            "days_past_close",
        )
    if kind == "departed_champion":
        return frame(con, quality._DEPARTED_CHAMPIONS).rename(
            {"opportunity_id": "record_id", "contact_id": "champion_contact_id"}
        )
    if kind == "firmographic_conflict":
        _rows, conflicts = quality._firmographic_conflicts(con)
        return conflicts.filter(pl.col(f"c_{item}")).select(pl.col("account_id").alias("record_id"))
    raise ValueError(f"no drill-down for check {kind!r}")


def drill_down(
    con: duckdb.DuckDBPyConnection,
    check_kind: str,
    object_type: str,
    item: str,
    *,
    team: str | None = None,
    region: str | None = None,
    definitions: Definitions | None = None,
) -> pl.DataFrame:
    """The records behind one audit figure (check, object, item), as the warehouse is now,
    with name, owner, team and region; optionally only those of one team or region."""
    if object_type not in _DETAILS:
        raise ValueError(f"unknown object {object_type!r}")
    d = definitions or load_definitions()
    bad = _bad_rows(con, d, check_kind, object_type, item)
    with registered(con, "bad", bad):
        out = frame(con, _JOIN.format(details=_DETAILS[object_type]))
    if team is not None:
        out = out.filter(pl.col("team") == team)
    if region is not None:
        out = out.filter(pl.col("region") == region)
    return out
