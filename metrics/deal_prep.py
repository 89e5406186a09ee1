"""Deal prep measures: coverage of upcoming meetings, citations (share and whether each
resolves to its row with the stated value), utilization, and briefed-vs-unbriefed win rates.

``verify_citations`` re-reads every cited field from its table and compares it with the
value the briefing stated, in SQL, independent of the agent's code: a citation counts
as resolved when its row exists and as matched when the field holds the stated value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import duckdb
import polars as pl

from revstack.agents.engine import OBJECTS
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import frame, registered, scalar
from revstack.metrics.remembered import remembered

__all__ = ["briefed_win_rates", "coverage", "report", "utilization", "verify_citations"]

# What a rep reads now: for each upcoming meeting its latest briefing, and the latest
# on-demand briefing of each deal while it is built from the warehouse's data. Older
# briefings cite values the CRM has changed since (a stage moved on): checked against
# today's rows they would read as wrong citations. A scheduled run rebuilds a meeting's
# briefing when its inputs change; nothing rebuilds an on-demand one, so after the next
# import it is as old as the data it was built from.
_CURRENT = """
current_briefings AS (
    SELECT briefing_id FROM ops.briefings
    QUALIFY row_number() OVER (
                PARTITION BY coalesce(meeting_id, 'on demand ' || opportunity_id)
                ORDER BY generated_at DESC, briefing_id DESC) = 1
        AND CASE WHEN meeting_id IS NULL THEN data_as_of >= $as_of
                 ELSE meeting_at > $as_of END
)"""
_CITES = (
    "WITH"
    + _CURRENT
    + """,
s AS (
    SELECT briefing_id, unnest(from_json(citations,
        '[{"section": "VARCHAR", "note": "BOOLEAN",
           "cites": [{"table": "VARCHAR", "key": "JSON", "field": "VARCHAR", "value": "JSON"}]}]')) AS st
    FROM ops.briefings
    WHERE ($ids IS NULL OR briefing_id IN (SELECT unnest($ids)))
      AND (NOT $current OR briefing_id IN (SELECT briefing_id FROM current_briefings))
)
SELECT briefing_id, st.section AS section, coalesce(st.note, false) AS note,
       len(st.cites) AS n_cites, st.cites AS cites
FROM s
"""
)
_CURRENT_COUNT = "WITH" + _CURRENT + " SELECT count(*) FROM current_briefings"
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_catalog = current_database() AND table_schema = $schema AND table_name = $table
"""
_HORIZON = """
SELECT (metadata->'agent'->>'horizon_days')::INTEGER FROM ops.runs
WHERE agent = 'deal_prep' AND status = 'succeeded'
  AND (metadata->'agent'->>'scheduled')::BOOLEAN
ORDER BY started_at DESC, run_id DESC LIMIT 1
"""
_COVERAGE = """
WITH m AS (
    SELECT activity_id FROM crm.activities
    WHERE activity_type = 'meeting' AND status = 'scheduled' AND occurred_at > $as_of
      AND opportunity_id IS NOT NULL
      AND ($horizon IS NULL OR occurred_at <= $as_of + to_days($horizon))
),
-- a scheduled run on this data looked at every upcoming meeting and kept the briefings
-- whose inputs had not changed (docs/deal_prep.md, Weekly runs)
checked AS (
    SELECT count(*) > 0 AS yes FROM ops.runs
    WHERE agent = 'deal_prep' AND status = 'succeeded'
      AND (metadata->'agent'->>'scheduled')::BOOLEAN
      AND (metadata->'agent'->>'as_of')::TIMESTAMP = $as_of
)
SELECT count(*) AS upcoming,
       count(*) FILTER (WHERE activity_id IN (SELECT meeting_id FROM ops.briefings
                                              WHERE meeting_id IS NOT NULL)) AS briefed,
       count(*) FILTER (WHERE activity_id IN (SELECT meeting_id FROM ops.briefings
                                              WHERE data_as_of = $as_of)) AS built_from_current_data,
       count(*) FILTER (WHERE activity_id IN (SELECT meeting_id FROM ops.briefings
                                              WHERE data_as_of = $as_of OR (SELECT yes FROM checked)))
           AS briefed_from_current_data
FROM m
"""
_USE = """
SELECT count(*) AS briefings,
       count(*) FILTER (WHERE briefing_id IN (SELECT briefing_id FROM ops.briefing_opens)) AS opened,
       (SELECT count(*) FROM ops.briefing_opens) AS opens,
       count(*) FILTER (WHERE meeting_id IS NULL) AS on_demand,
       sum(statements) AS statements, sum(cited) AS cited, sum(warnings) AS warnings,
       count(*) FILTER (WHERE warnings > 0) AS with_warnings
FROM ops.briefings
"""
# Generated companies only: deals open at a past cut-off, split by whether a meeting
# in the following three weeks (what deal prep briefs) happened, outcome from truth.
_BACKTEST = """
WITH cut AS (SELECT $cut::TIMESTAMP AS t),
open_then AS (
    SELECT o.opportunity_id, d.outcome FROM crm.opportunities o
    JOIN truth.deal_outcomes d USING (opportunity_id), cut
    WHERE o.created_at <= cut.t AND (d.outcome = 'open' OR d.outcome_date > cut.t::DATE)
),
met AS (
    SELECT DISTINCT a.opportunity_id FROM crm.activities a, cut
    WHERE a.activity_type = 'meeting' AND a.status = 'completed'
      AND a.occurred_at > cut.t AND a.occurred_at <= cut.t + INTERVAL 21 DAY
)
SELECT (m.opportunity_id IS NOT NULL) AS briefed, count(*) AS deals,
       count(*) FILTER (WHERE outcome <> 'open') AS closed,
       avg(CASE WHEN outcome = 'won' THEN 1.0 WHEN outcome = 'lost' THEN 0.0 END) AS win_rate
FROM open_then LEFT JOIN met m USING (opportunity_id)
GROUP BY ALL ORDER BY briefed
"""
_HAS_TRUTH = "SELECT count(*) FROM truth.generation"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _cites(
    con: duckdb.DuckDBPyConnection, ids: list[str] | None, *, current: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Statements (one row each) and their citations (one row each), of the briefings
    ``ids`` (None: all), and of the current ones only when ``current``."""
    as_of = data_as_of(con) or dt.datetime.max
    stmts = frame(con, _CITES, {"ids": ids, "current": current, "as_of": as_of})
    flat = stmts.filter(pl.col("n_cites") > 0).explode("cites").unnest("cites")
    return stmts, flat.rename({"table": "cited_table"}) if not flat.is_empty() else flat


def verify_citations(
    con: duckdb.DuckDBPyConnection,
    briefing_ids: list[str] | None = None,
    *,
    current: bool = False,
) -> pl.DataFrame:
    """Per cited (table, field): citations, rows found, values matching what was stated;
    of every stored briefing, of ``briefing_ids``, or of the current ones (``current``:
    each upcoming meeting's latest briefing and each deal's latest on demand, if it is
    built from the warehouse's data)."""
    return _summary(_judge(con, _cites(con, briefing_ids, current=current)[1]))


_SUMMARY_SCHEMA = {
    "table": pl.String,
    "field": pl.String,
    "cites": pl.Int64,
    "resolved": pl.Int64,
    "matched": pl.Int64,
}


def _summary(judged: pl.DataFrame) -> pl.DataFrame:
    """Per cited (table, field): citations, rows found, values matching."""
    if judged.is_empty():
        return pl.DataFrame(schema=_SUMMARY_SCHEMA)
    return (
        judged.group_by("cited_table", "field")
        .agg(
            cites=pl.len(),
            resolved=pl.col("resolved").sum(),
            matched=pl.col("matched").sum(),
        )
        .rename({"cited_table": "table"})
        .cast(_SUMMARY_SCHEMA)  # type: ignore[arg-type]
        .sort("table", "field")
    )


def _judge(con: duckdb.DuckDBPyConnection, flat: pl.DataFrame) -> pl.DataFrame:
    """``flat``'s citations, each with whether its row was found (``resolved``) and holds
    the stated value (``matched``)."""
    flat = flat.with_row_index("i")
    verdicts = [
        pl.DataFrame(schema={"i": pl.UInt32, "resolved": pl.Boolean, "matched": pl.Boolean})
    ]
    # Each cited (table, field) is judged by its first citation's key columns; the fields
    # of a table cited by the same keys are checked in one join, so the table is read
    # once, not once per field. A field or key the table does not have is never found.
    checks: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}
    for (table, fieldname), part in flat.group_by("cited_table", "field", maintain_order=True):
        schema, name = str(table).split(".")
        types = dict(con.execute(_COLUMNS, {"schema": schema, "table": name}).fetchall())
        keys = tuple(json.loads(part["key"][0]))
        if fieldname not in types or not all(k in types and _IDENT.match(k) for k in keys):
            verdicts.append(part.select("i", resolved=pl.lit(False), matched=pl.lit(False)))
            continue
        checks.setdefault((str(table), keys), []).append((str(fieldname), types[fieldname]))
    for (table, keys), fields in checks.items():
        verdicts.append(_check_fields(con, flat, table, keys, fields))
    judged = pl.concat(verdicts)
    return flat.join(judged, on="i", how="left").drop("i")


def _matches(fieldname: str, ctype: str) -> str:
    """SQL: citation ``c`` states what row ``t`` holds in ``fieldname`` (of type ``ctype``)."""
    stated = f"TRY_CAST(c.value->>'$' AS {ctype})"
    if ctype.startswith(("DECIMAL", "DOUBLE", "FLOAT", "INTEGER", "BIGINT")):
        same = f'abs({stated}::DOUBLE - t."{fieldname}"::DOUBLE) < 1e-6'
    else:
        same = f'{stated} IS NOT DISTINCT FROM t."{fieldname}"'
    blank = f"(coalesce(c.value::VARCHAR, 'null') = 'null' AND (t.\"{fieldname}\" IS NULL OR trim(t.\"{fieldname}\"::VARCHAR) = ''))"
    return f"({same} OR {blank})"


def _check_fields(
    con: duckdb.DuckDBPyConnection,
    flat: pl.DataFrame,
    table: str,
    keys: tuple[str, ...],
    fields: list[tuple[str, str]],
) -> pl.DataFrame:
    """Per citation of these fields of one table (one join): its row found, its value
    matching. A key that finds two rows counts once, found if either is and matching if
    either holds the value."""
    schema, name = table.split(".")
    on = " AND ".join(f"t.\"{k}\"::VARCHAR = c.key->>'{k}'" for k in keys)
    # each field's name is bound ($1, $2...); identifiers come from the catalog
    cases = " ".join(
        f"WHEN ${i} THEN {_matches(f, ctype)}" for i, (f, ctype) in enumerate(fields, start=1)
    )
    sql = (
        f'SELECT c.i, bool_or(t."{keys[0]}" IS NOT NULL) AS resolved, '
        f'coalesce(bool_or(t."{keys[0]}" IS NOT NULL AND CASE c.field {cases} END), false) '
        f'AS matched FROM cited c LEFT JOIN "{schema}"."{name}" t ON {on} GROUP BY c.i'
    )
    wanted = [f for f, _ in fields]
    cited = flat.filter((pl.col("cited_table") == table) & pl.col("field").is_in(wanted)).select(
        "i", "field", "key", "value"
    )
    with registered(con, "cited", cited):
        return frame(con, sql, wanted).cast({"i": pl.UInt32})


def coverage(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Upcoming meetings briefed: those within the horizon the latest scheduled run was
    set to (``horizon_days``; None: every upcoming meeting); later ones are briefed by a
    run nearer to them."""
    as_of = data_as_of(con) or dt.datetime.max
    horizon = scalar(con, _HORIZON) if as_of != dt.datetime.max else None
    params = {"as_of": as_of, "horizon": horizon}
    up, briefed, built, current = con.execute(_COVERAGE, params).fetchall()[0]
    return {
        "horizon_days": horizon,
        "upcoming_meetings": up,
        "briefed": briefed,
        "built_from_current_data": built,
        "briefed_from_current_data": current,
        "coverage": None if not up else round(briefed / up, 4),
    }


def utilization(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    row = frame(con, _USE).row(0, named=True)
    n = row["briefings"]
    return {**row, "opened_share": None if not n else round(row["opened"] / n, 4)}


def briefed_win_rates(
    con: duckdb.DuckDBPyConnection, *, days_before: int = 180
) -> dict[str, Any] | None:
    """On a generated company: win rates of deals open at as-of minus ``days_before`` with
    and without a meeting (so a briefing) in the next three weeks. None without truth."""
    if not int(scalar(con, _HAS_TRUTH) or 0):
        return None
    as_of = data_as_of(con)
    if as_of is None:
        return None
    cut = as_of - dt.timedelta(days=days_before)
    rows = {r["briefed"]: r for r in frame(con, _BACKTEST, {"cut": cut}).iter_rows(named=True)}

    def pick(briefed: bool) -> dict[str, Any]:
        got = rows.get(briefed, {})
        return {
            k: round(v, 4) if isinstance(v, float) else v for k, v in got.items() if k != "briefed"
        }

    return {
        "cut_off": cut.date().isoformat(),
        "briefed": pick(True),
        "unbriefed": pick(False),
        "note": "the generator has no briefing effect: the gap is selection (deals with "
        "meetings are engaged deals), not what briefings do",
    }


# Every CRM cell a decision writes (an approval, an edit, a rollback) has an audit row
# naming its object and record; runs and imports, which write others, move what is
# remembered (``metrics.remembered``).
_WRITTEN = """
SELECT DISTINCT object_type, record_id FROM ops.audit_log
WHERE seq > $since AND object_type IS NOT NULL AND record_id IS NOT NULL
"""
_LAST_SEQ = "SELECT coalesce(max(seq), 0) FROM ops.audit_log"
# Cited tables a command writes with neither an audit row nor an import or a run:
# `revstack news load` corrects a stored item's summary in place (same id, same count),
# so their citations are judged again at every report.
_UNLOGGED = ("ref.news",)


@remembered  # the current briefings' citations judged: runs and imports change them
def _current_judged(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    # Read first: a write after it is checked again, one before it is in the verdicts.
    since = int(scalar(con, _LAST_SEQ) or 0)
    stmts, flat = _cites(con, None, current=True)
    if not flat.is_empty():  # only the columns report reads: it is kept between decisions
        flat = flat.select("cited_table", "field", "key", "value").with_columns(record=_record_of())
    return stmts.drop("cites"), _judge(con, flat), since


def _record_of() -> pl.Expr:
    """A citation's key as the engine names the record it writes (``OBJECTS``,
    ``CrmObject.record_key``), for the tables a decision can write; null elsewhere, and
    where the key does not hold it."""
    record = pl.lit(None, pl.String)
    for obj in OBJECTS.values():
        if obj.key:  # the identity map: "accounts:A0001", its key being kind and record
            kind = pl.col("key").str.json_path_match("$.object_type")
            named = kind + ":" + pl.col("key").str.json_path_match("$.record_id")
        else:
            named = pl.col("key").str.json_path_match(f"$.{obj.pk}")
        record = pl.when(pl.col("cited_table") == obj.table).then(named).otherwise(record)
    return record


def _rejudged(con: duckdb.DuckDBPyConnection, judged: pl.DataFrame, since: int) -> pl.DataFrame:
    """``judged`` with the citations of every record written since audit row ``since``
    judged again: a decision can change a cited field, so the verdicts kept from before
    it are re-read only where it wrote. A citation of a written table whose key does not
    name the record is judged again too, and every citation of a table written unlogged
    (``_UNLOGGED``)."""
    if judged.is_empty():
        return judged
    written = frame(con, _WRITTEN, {"since": since})
    again = pl.col("cited_table").is_in(list(_UNLOGGED))
    for object_type, part in written.group_by("object_type"):
        obj = OBJECTS.get(str(object_type[0]))
        if obj is None:  # not a CRM object: no cited table
            continue
        again = again | (
            (pl.col("cited_table") == obj.table)
            & (pl.col("record").is_null() | pl.col("record").is_in(part["record_id"].implode()))
        )
    mask = judged.select(again.fill_null(True)).to_series()
    if not mask.any():
        return judged
    fresh = _judge(con, judged.filter(mask).drop("resolved", "matched"))
    return pl.concat([judged.filter(~mask), fresh])


def report(con: duckdb.DuckDBPyConnection, definitions: Any) -> dict[str, Any]:
    """Statements and citations are those of the current briefings: a briefing older than
    its meeting's latest, or for a meeting already held, was checked when it was current,
    and its values against today's rows would count every later CRM change as a wrong
    citation (and cost a re-read of every citation ever stored)."""
    stmts, judged, since = _current_judged(con)
    facts = stmts.filter(~pl.col("note"))
    checked = _summary(_rejudged(con, judged, since))
    total = int(checked["cites"].sum()) if not checked.is_empty() else 0
    as_of = data_as_of(con) or dt.datetime.max
    return {
        "coverage": coverage(con),
        "statements": {
            "briefings_checked": int(scalar(con, _CURRENT_COUNT, {"as_of": as_of}) or 0),
            "statements": len(facts),
            "with_citations": int((facts["n_cites"] > 0).sum()),
            "share_cited": None
            if facts.is_empty()
            else round(float((facts["n_cites"] > 0).mean()), 4),
            "notes": int(stmts["note"].sum()) if not stmts.is_empty() else 0,
        },
        "citations": {
            "cites": total,
            "resolved": int(checked["resolved"].sum()) if total else 0,
            "matched": int(checked["matched"].sum()) if total else 0,
            "share_matched": None if not total else round(int(checked["matched"].sum()) / total, 6),
            "by_table": checked.to_dicts(),
        },
        "utilization": utilization(con),
        "win_rate_briefed_vs_unbriefed": briefed_win_rates(con),
    }
