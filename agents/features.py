"""Every deal's state as of a given moment, rebuilt from history: a neutral module that
agents share (pipeline_health, forecast). Not an agent; it never writes.

Public API (names kept stable):

- ``deal_states(con, moments, *, definitions=None, open_only=False) -> pl.DataFrame``:
  one row per (``as_of``, ``opportunity_id``) for every deal that existed at each moment
  (only those still open then with ``open_only=True``), with the columns of
  ``STATE_SCHEMA``. ``moments`` is one datetime or a sequence of them; many weekly
  moments cost about as much as a few, so backtests pass them all at once.
- ``deal_states_in(ctx, moments, ...) -> pl.DataFrame``: the same rows computed in the
  warehouse through an agent's context, without reading the tables into memory.
- ``frames_connection(frames) -> duckdb connection``: an in-memory DuckDB in which the
  given polars frames are the ``crm.*`` tables, for callers holding frames (an agent's
  ``ctx.table(...)``). ``deal_states`` takes a warehouse connection or this one.
- ``weekly_moments(start, end, *, weekday=0) -> list[datetime]``: midnights of one
  weekday from ``start`` to ``end`` (inclusive), for backtests.
- ``TABLES``: the crm tables and columns read; a contract using this module grants them.
- ``STATE_SCHEMA``: column -> polars dtype of the result.

What "as of" means, column by column (nothing stamped after the moment is read):

- stage, amount, close date, forecast category, probability, owner (``changed_by``):
  the deal's last ``crm.opportunity_history`` row with ``changed_at <= as_of``.
  ``is_closed`` / ``is_won`` from that stage (definitions.yaml's closed / won stages).
- ``close_date_pushes``: history rows so far that moved the close date later while the
  deal stayed open; ``pushes_out_of_quarter``: those that moved it into a later quarter.
- ``days_in_stage``: since the row that entered the current stage.
- ``amount_changes`` / ``amount_decreases`` / ``amount_ratio`` (now / first amount).
- ``days_since_two_way``: from the last completed inbound or two-way activity on the
  deal at or before as_of (from creation when there is none), as definitions.yaml
  says; ``days_since_activity`` counts any completed touch. ``two_way_30d`` /
  ``outbound_30d``: touches in the 30 days up to as_of; ``outbound_since_two_way``:
  outbound touches since the last answer (chasing with no reply).
- ``engaged_contacts``: distinct contacts with a completed inbound or two-way activity
  on the deal at or before as_of (definitions.yaml); ``engaged_30d`` in the last 30 days.
- ``contacts_on_deal``, ``has_champion``, ``has_economic_buyer``: buying roles with
  ``added_at <= as_of`` (a role without ``added_at`` counts from the deal's creation).
- ``champion_left`` (and ``economic_buyer_left``): the CRM keeps only today's
  ``is_active`` / ``email_bounced`` (crm.contacts has no history), not when they
  changed. A contact marked inactive or bounced today was already marked so at as_of
  only if the record has not changed since, i.e. ``updated_at <= as_of``; only those
  count. A record edited again after as_of is ignored at as_of (the flag comes late,
  never early): a later edit can hide a departure, never invent one, and nothing that
  happened after as_of makes a champion count as gone at as_of. On the generated mid
  company this finds about three in four departures the deal's weeks later will show
  (the CRM hears of a departure 3-60 days after it). ``champion_last_reply_at`` (the
  champion's last answer) is the behavioural complement: a champion who stopped
  answering while outbound touches go on.
- Not used, on purpose: ``status = 'scheduled'`` activities (the CRM only shows
  meetings booked after the last import; a past moment cannot know which held meetings
  had been booked by then), and ``crm.opportunities``' current values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import polars as pl

from revstack.agents._features_sql import (
    PART_H,
    PART_REPLY,
    PART_STATES,
    PART_TOUCH,
    STATES,
    STATES_AT,
    STATES_ONE,
)
from revstack.data.warehouse import frame, scratch

__all__ = [
    "TABLES",
    "STATE_SCHEMA",
    "deal_states",
    "deal_states_in",
    "states_query",
    "typed",
    "frames_connection",
    "weekly_moments",
]

TABLES: dict[str, list[str]] = {
    "crm.opportunity_history": [
        "history_id",
        "opportunity_id",
        "changed_at",
        "stage",
        "amount",
        "close_date",
        "forecast_category",
        "probability",
        "changed_by",
    ],
    "crm.activities": ["opportunity_id", "contact_id", "direction", "status", "occurred_at"],
    "crm.opportunity_contacts": ["opportunity_id", "contact_id", "role", "added_at"],
    "crm.contacts": ["contact_id", "is_active", "email_bounced", "updated_at"],
}

_TS, _INT = pl.Datetime("us"), pl.Int64()
STATE_SCHEMA: dict[str, pl.DataType] = {
    "as_of": _TS,
    "opportunity_id": pl.String(),
    "owner_id": pl.String(),
    "created_at": _TS,
    "stage": pl.String(),
    "amount": pl.Float64(),
    "close_date": pl.Date(),
    "forecast_category": pl.String(),
    "probability": pl.Float64(),
    "is_closed": pl.Boolean(),
    "is_won": pl.Boolean(),
    "days_open": _INT,
    "stage_entered_at": _TS,
    "days_in_stage": _INT,
    "close_date_pushes": _INT,
    "pushes_out_of_quarter": _INT,
    "last_push_at": _TS,
    "days_since_push": _INT,
    "first_close_date": pl.Date(),
    "close_date_moved_days": _INT,
    "days_to_close": _INT,
    "first_amount": pl.Float64(),
    "amount_changes": _INT,
    "amount_decreases": _INT,
    "last_amount_change_at": _TS,
    "amount_ratio": pl.Float64(),
    "last_two_way_at": _TS,
    "days_since_two_way": _INT,
    "last_activity_at": _TS,
    "days_since_activity": _INT,
    "two_way_30d": _INT,
    "outbound_30d": _INT,
    "outbound_since_two_way": _INT,
    "engaged_contacts": _INT,
    "engaged_30d": _INT,
    "contacts_on_deal": _INT,
    "has_champion": pl.Boolean(),
    "has_economic_buyer": pl.Boolean(),
    "champion_left": pl.Boolean(),
    "economic_buyer_left": pl.Boolean(),
    "champion_last_reply_at": _TS,
}

# Used when no definitions are given: the keys definitions.yaml ships with.
_CLOSED, _WON = ("closed_won", "closed_lost"), ("closed_won",)


def _stage_keys(definitions: Any) -> tuple[list[str], list[str]]:
    if definitions is None:
        return list(_CLOSED), list(_WON)
    stages = definitions.stages
    return [s.key for s in stages if s.closed], [s.key for s in stages if s.won]


def deal_states(
    con: duckdb.DuckDBPyConnection,
    moments: dt.datetime | Sequence[dt.datetime],
    *,
    definitions: Any = None,
    open_only: bool = False,
) -> pl.DataFrame:
    """Each deal's state at each moment, from rows stamped at or before it (see module doc).

    ``con`` holds ``crm.*`` tables with the columns in ``TABLES`` (a warehouse
    connection, or ``frames_connection``). ``definitions`` (contracts.Definitions)
    says which stages are closed and won; without it the shipped keys are used.
    """
    if isinstance(moments, dt.datetime):
        moments = [moments]
    closed, won = _stage_keys(definitions)
    params = {"moments": list(moments), "closed": closed, "won": won, "open_only": open_only}
    # one moment: totals instead of running counts (the same figures, without the
    # window functions over every touch; _features_sql)
    out = frame(con, STATES_ONE if len(set(moments)) == 1 else STATES, params)
    return out.select([pl.col(c).cast(t) for c, t in STATE_SCHEMA.items()])


def states_query(
    moments: dt.datetime | Sequence[dt.datetime],
    *,
    definitions: Any = None,
    open_only: bool = False,
    deals: Sequence[str] | None = None,
    history_only: bool = False,
    at_rows: bool = False,
) -> tuple[str, dict[str, Any], dict[str, tuple[str, Sequence[Any]]]]:
    """The SQL of ``deal_states`` with its parameters, and the rows of ``TABLES`` it is to
    see (``Context.warehouse``'s ``rows``): see ``deal_states_in``. ``at_rows``: only the
    rows at the (as_of, opportunity_id) pairs of the table ``at_rows``, which the caller
    creates first (no pair twice, each moment among ``moments``): the same rows as
    filtering the whole result to them."""
    if isinstance(moments, dt.datetime):
        moments = [moments]
    closed, won = _stage_keys(definitions)
    params = {"moments": list(moments), "closed": closed, "won": won, "open_only": open_only}
    query = STATES_ONE if len(set(moments)) == 1 else STATES
    if at_rows:
        query = STATES_AT
    rows: dict[str, tuple[str, Sequence[Any]]] = {}
    if deals is not None:
        rows = {t: ("opportunity_id", list(deals)) for t in TABLES if t != "crm.contacts"}
    if history_only:
        rows |= {t: (cols[0], []) for t, cols in TABLES.items() if t != "crm.opportunity_history"}
    return query, params, rows


def typed(states: pl.DataFrame) -> pl.DataFrame:
    """Rows of the states' SQL (any of ``STATE_SCHEMA``'s columns) in its polars types."""
    return states.select([pl.col(c).cast(STATE_SCHEMA[c]) for c in states.columns])


def deal_states_in(
    ctx: Any,
    moments: dt.datetime | Sequence[dt.datetime],
    *,
    definitions: Any = None,
    open_only: bool = False,
    deals: Sequence[str] | None = None,
    history_only: bool = False,
    columns: Sequence[str] | None = None,
    types: Mapping[str, str] | None = None,
    moments_per_query: int | None = None,
) -> pl.DataFrame:
    """``deal_states`` computed in the warehouse's own DuckDB through an agent's context
    (``Context.warehouse``: only ``TABLES``' columns, which its contract must grant).

    The same rows as ``deal_states`` over ``frames_connection`` of those tables read
    whole, without holding them: on the large company the frames (23.7M activity rows,
    13.5M history rows) and a scratch DuckDB over them went past 16 GB, where the
    warehouse reads the file under revstack's memory limit. ``deals``: only these deals'
    rows of the history, activities and buying roles (a deal's state reads nothing of
    another's, so theirs are the same). ``history_only``: the other tables empty (the
    stage and close-date columns, which read the history alone). ``columns``: only these
    of ``STATE_SCHEMA``, in the same row order. ``types``: casts as the caller's frames
    would hold the columns (``{"crm.opportunity_history.amount": "DOUBLE"}``).
    ``moments_per_query``: with more moments than this, the history's and the
    activities' running figures are kept in the warehouse once and the states are
    computed that many moments at a time (``_in_parts``; the same rows): over every
    moment of a large company at once, DuckDB held all the open deals' states and each
    join's copy of them, and spilled for many minutes.
    """
    query, params, rows = states_query(
        moments,
        definitions=definitions,
        open_only=open_only,
        deals=deals,
        history_only=history_only,
    )
    wanted = sorted(set(params["moments"]))
    if moments_per_query is not None and columns is None and len(wanted) > moments_per_query:
        return _in_parts(ctx, wanted, moments_per_query, params, rows, types)
    if columns is not None:
        picked = ", ".join(f'"{c}"' for c in columns)
        query = f"SELECT {picked} FROM ({query}) ORDER BY as_of, opportunity_id"
    with ctx.warehouse(TABLES, rows=rows, types=types) as wh:
        out = wh.frame(query, params)
    return typed(out) if columns is not None else typed(out).select(list(STATE_SCHEMA))


def _in_parts(
    ctx: Any,
    moments: list[dt.datetime],
    per_query: int,
    params: dict[str, Any],
    rows: dict[str, tuple[str, Sequence[Any]]],
    types: Mapping[str, str] | None,
) -> pl.DataFrame:
    """``deal_states_in`` at sorted ``moments``, ``per_query`` of them at a time, from
    the running figures kept once (``PART_*`` in ``_features_sql``); ``params`` and
    ``rows`` are ``states_query``'s."""
    parts = []
    with ctx.warehouse(TABLES, rows=rows, types=types) as wh:
        wh.keep("part_h", PART_H, {"closed": params["closed"]})
        wh.keep("part_touch", PART_TOUCH, {"moments": moments})
        wh.keep("part_reply", PART_REPLY, {"moments": moments})
        for i in range(0, len(moments), per_query):
            some = {**params, "moments": moments[i : i + per_query]}
            some.pop("closed")
            parts.append(typed(wh.frame(PART_STATES, some)).select(list(STATE_SCHEMA)))
    return pl.concat(parts)


def frames_connection(frames: Mapping[str, pl.DataFrame]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB where each frame (keyed ``crm.table``) is that table.

    The caller closes it. Frames may carry more columns than ``TABLES`` lists; a missing
    table or column fails with the name of what is missing.
    """
    con = scratch()
    con.execute("CREATE SCHEMA crm")
    for table, columns in TABLES.items():
        if table not in frames:
            con.close()
            raise KeyError(f"deal_states needs {table} ({', '.join(columns)})")
        data = frames[table]
        missing = [c for c in columns if c not in data.columns]
        if missing:
            con.close()
            raise KeyError(f"deal_states needs {table}.{', '.join(missing)}")
        name = table.split(".")[1]
        con.register(f"_frame_{name}", data.select(columns))
        con.execute(f"CREATE VIEW crm.{name} AS SELECT * FROM _frame_{name}")  # names: TABLES
    return con


def weekly_moments(start: dt.date, end: dt.date, *, weekday: int = 0) -> list[dt.datetime]:
    """Midnight of every ``weekday`` (0 = Monday) from ``start`` to ``end``, inclusive."""
    first = start + dt.timedelta(days=(weekday - start.weekday()) % 7)
    days = range(0, (end - first).days + 1, 7)
    return [dt.datetime.combine(first + dt.timedelta(days=d), dt.time()) for d in days]
