"""A generated company replayed a week at a time: the past cut out honestly, each week's
changes loaded as an import, and the end equal to the company generated whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from revstack.agents.engine import detect_changes
from revstack.agents.features import deal_states
from revstack.data.errors import InputError
from revstack.data.generator import DEFAULT_AS_OF, REPLAYED, Replay
from revstack.data.generator._replay import BOOKED_AHEAD, cut_sql
from revstack.data.warehouse import Warehouse, first_row, frame, release_all, scalar

AS_OF = dt.datetime.combine(DEFAULT_AS_OF, dt.time())
START = AS_OF - dt.timedelta(weeks=4)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory):
    wh = Warehouse(tmp_path_factory.mktemp("replay") / "wh.duckdb")
    r = Replay.start(wh, scale="small", seed=3, as_of=DEFAULT_AS_OF, weeks=4)
    yield r
    r.close()
    release_all()


def _one(wh: Warehouse, sql: str, params: object = None) -> tuple:
    with wh.connect() as con:
        return first_row(con, sql, params)  # type: ignore[return-value]


def _params(sql: str, at: dt.datetime) -> dict[str, dt.datetime]:
    """A cut's parameters at ``at``, those its SQL names."""
    params = {"at": at, "ahead": at + BOOKED_AHEAD}
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _cut(con: duckdb.DuckDBPyConnection, table: str, at: dt.datetime) -> pl.DataFrame:
    sql = cut_sql(table)
    return frame(con, sql, _params(sql, at))


@pytest.mark.slow
def test_the_start_holds_nothing_from_after_it(replay: Replay) -> None:
    wh = replay.wh
    assert replay.at == START
    late = _one(
        wh,
        """SELECT (SELECT count(*) FROM crm.accounts WHERE created_at > $at OR updated_at > $at),
                  (SELECT count(*) FROM crm.opportunities WHERE created_at > $at
                       OR updated_at > $at OR stage_changed_at > $at),
                  (SELECT count(*) FROM crm.opportunity_history WHERE changed_at > $at),
                  (SELECT count(*) FROM crm.activities WHERE occurred_at > $at
                       AND status <> 'scheduled'),
                  (SELECT count(*) FROM crm.forecast_submissions WHERE submitted_at > $at),
                  (SELECT max(as_of) FROM ops.imports)""",
        {"at": START},
    )
    assert late == (0, 0, 0, 0, 0, START)
    # Every deal stands where its history says it stood at the start.
    assert _one(
        wh,
        """SELECT count(*) FROM crm.opportunities o
           JOIN (SELECT opportunity_id, arg_max(stage, (changed_at, history_id)) AS stage
                 FROM crm.opportunity_history GROUP BY ALL) h USING (opportunity_id)
           WHERE o.stage <> h.stage""",
    ) == (0,)
    # ... while truth stays whole: deals created after the start have their outcome there.
    assert _one(
        wh,
        "SELECT count(*) > (SELECT count(*) FROM crm.opportunities) FROM truth.deal_outcomes",
    ) == (True,)


@pytest.mark.slow
def test_the_start_holds_each_table_exactly_as_cut(replay: Replay) -> None:
    """The start deletes and replaces only the rows it does not know as they are, and
    what it leaves is each table's cut, row for row, a record changed later and a meeting
    booked ahead included."""
    with replay.wh.connect() as con:
        con.execute(f"ATTACH '{replay.source}' AS src (READ_ONLY)")
        try:
            for table in REPLAYED:
                cut = cut_sql(table)
                given = _params(cut, START)
                extra, missing, rows, differ = first_row(
                    con,
                    f"""SELECT (SELECT count(*) FROM (SELECT * FROM {table} EXCEPT SELECT * FROM ({cut}))),
                               (SELECT count(*) FROM (SELECT * FROM ({cut}) EXCEPT SELECT * FROM {table})),
                               (SELECT count(*) FROM {table}),
                               (SELECT count(*) FROM (SELECT * FROM ({cut}) EXCEPT SELECT * FROM src.{table}))""",
                    given,
                )  # type: ignore[misc]
                assert (table, extra, missing) == (table, 0, 0)
                assert rows == scalar(con, f"SELECT count(*) FROM ({cut})", given)
                if table in ("crm.accounts", "crm.opportunities", "crm.activities"):
                    assert differ > 0, table  # the cut changed rows here, not only dropped them
        finally:
            con.execute("DETACH src")


@pytest.mark.slow
def test_the_start_rewrites_no_row_it_keeps(replay: Replay) -> None:
    """Every row the start keeps stands where generation wrote it (the side file is a copy
    in the same order, so the same rowid). The cut deleted every row and inserted the
    whole cut back in one transaction, which ran out of DuckDB's memory on the large
    company (docs/scale.md, Weekly run on large)."""
    with replay.wh.connect() as con:
        con.execute(f"ATTACH '{replay.source}' AS src (READ_ONLY)")
        try:
            for table, keys in REPLAYED.items():
                on = " AND ".join(f"w.{k} = s.{k}" for k in keys)
                kept, moved = first_row(
                    con,
                    f"SELECT count(*), count(*) FILTER (WHERE w.rowid <> s.rowid) "
                    f"FROM {table} w JOIN src.{table} s ON {on}",
                )  # type: ignore[misc]
                assert kept > 0 and (table, moved) == (table, 0)
        finally:
            con.execute("DETACH src")


@pytest.mark.slow
def test_the_start_knows_no_departure_the_crm_heard_of_later(
    replay: Replay, small_company: Warehouse
) -> None:
    """A contact's departure flags are trusted at a moment only if its record is no newer
    (``features.deal_states``); the cut's update of a record changed later is its
    creation, so its flags must be those from before the CRM heard: else a departure
    heard of after the start counts at every moment since the contact was created."""
    later = _one(
        small_company,
        "SELECT count(*) FROM crm.contacts WHERE (NOT is_active OR email_bounced) "
        "AND updated_at > $at AND created_at <= $at",
        {"at": START},
    )[0]
    assert later > 0  # the company has such departures to hide
    moments = [START - dt.timedelta(days=d) for d in (0, 30, 200)]
    with replay.wh.connect() as con:
        cut = deal_states(con, moments)
    with small_company.connect() as con:
        whole = deal_states(con, moments)
    assert cut["champion_left"].sum() + cut["economic_buyer_left"].sum() > 0
    # Every moment up to the cut reads the deals as the whole company does.
    assert_frame_equal(cut.sort("as_of", "opportunity_id"), whole.sort("as_of", "opportunity_id"))


@pytest.mark.slow
def test_weeks_loaded_as_imports_end_where_the_whole_company_is(
    replay: Replay, small_company: Warehouse, tmp_path: Path
) -> None:
    wh = replay.wh
    with wh.connect() as con:  # the engine's first look, as a run starts with
        detect_changes(con, now=START)
    counts = replay.advance(START + dt.timedelta(weeks=1))
    assert counts["crm.opportunity_history"] > 0 and counts["crm.activities"] > 0
    with wh.connect() as con:
        detect_changes(con, now=START + dt.timedelta(weeks=1))
        changed = frame(
            con,
            "SELECT record_id FROM ops.events WHERE kind = 'stage_changed' AND created_at > $at",
            {"at": START},
        )["record_id"]
        week = scalar(
            con,
            "SELECT count(DISTINCT opportunity_id) FROM crm.opportunity_history "
            "WHERE changed_at > $a AND changed_at <= $b AND opportunity_id IN "
            "(SELECT opportunity_id FROM crm.opportunities WHERE created_at <= $a)",
            {"a": START, "b": START + dt.timedelta(weeks=1)},
        )
    # A stage change is an event of the week it happened in, and only of that week.
    assert 0 < len(changed) <= week
    with pytest.raises(InputError, match="moves forward only"):
        replay.advance(START)
    replay.advance(AS_OF)
    assert _one(wh, "SELECT count(*), max(as_of) FROM ops.imports") == (3, AS_OF)
    release_all()
    for table, keys in REPLAYED.items():
        if table == "crm.activities":
            continue  # meetings further ahead than the calendar shows are not there yet
        with wh.connect() as con:
            con.execute(f"ATTACH '{small_company.path}' AS whole (READ_ONLY)")
            try:
                diff = scalar(
                    con,
                    f"SELECT count(*) FROM (SELECT * EXCLUDE (import_id) FROM {table} "
                    f"EXCEPT SELECT * EXCLUDE (import_id) FROM whole.{table})"
                    if table != "ref.news"
                    else f"SELECT count(*) FROM (SELECT * FROM {table} "
                    f"EXCEPT SELECT * FROM whole.{table})",
                )
                missing = scalar(
                    con,
                    f"SELECT count(*) FROM whole.{table} w ANTI JOIN {table} t "
                    f"USING ({', '.join(keys)})",
                )
            finally:
                con.execute("DETACH whole")
        assert (table, diff, missing) == (table, 0, 0)


@pytest.mark.slow
def test_a_value_the_engine_wrote_survives_a_later_week(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    r = Replay.start(wh, scale="small", seed=3, as_of=DEFAULT_AS_OF, weeks=2)
    try:
        # An account the company updates in the replayed weeks, whose industry the
        # engine (an approved correction) sets before that update arrives.
        start = AS_OF - dt.timedelta(weeks=2)
        with wh.connect() as con:
            con.execute(f"ATTACH '{r.source}' AS src (READ_ONLY)")
            account, updated = first_row(
                con,
                "SELECT account_id, updated_at FROM src.crm.accounts WHERE updated_at > $s "
                "AND created_at <= $s ORDER BY account_id LIMIT 1",
                {"s": start},
            )  # type: ignore[misc]
            con.execute("DETACH src")
            con.execute(
                "UPDATE crm.accounts SET industry = 'Written by the engine' WHERE account_id = $a",
                {"a": account},
            )
        r.advance(AS_OF)
        assert _one(
            wh,
            "SELECT industry, updated_at FROM crm.accounts WHERE account_id = $a",
            {"a": account},
        ) == ("Written by the engine", updated)
    finally:
        r.close()
        release_all()


def test_a_replay_needs_a_week(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 1"):
        Replay.start(
            Warehouse(tmp_path / "wh.duckdb"), scale="small", seed=3, as_of=DEFAULT_AS_OF, weeks=0
        )
    assert not (tmp_path / "wh.duckdb").exists()


@pytest.mark.slow
def test_every_user_a_row_of_a_cut_names_is_in_it(replay: Replay) -> None:
    """The generator hires some reps after rows name them (a deal keeps its final owner;
    history names who changed it). An export of the CRM at that moment would hold them;
    left out, their first week would change rows of the past (a deal's owner gains a
    team) and replay the forecast's whole backtest, which a real weekly import never does.
    Checked at the start and at a moment between each such user's first naming row and
    their creation."""
    named = {
        "crm.opportunity_history": "changed_by",
        "crm.activities": "owner_id",
        "crm.forecast_submissions": "user_id",
        "crm.opportunities": "owner_id",
        "crm.accounts": "owner_id",
        "crm.contacts": "owner_id",
    }
    with replay.wh.connect() as con:
        con.execute(f"ATTACH '{replay.source}' AS src (READ_ONLY)")
        try:
            early = frame(
                con,
                """SELECT u.user_id, u.created_at, min(h.changed_at) AS first_named
                   FROM src.crm.users u JOIN src.crm.opportunity_history h
                     ON h.changed_by = u.user_id
                   GROUP BY ALL HAVING min(h.changed_at) < u.created_at""",
            )
            assert len(early), "no user named before their creation: nothing to test"
            moments = [START] + [
                r["first_named"] + (r["created_at"] - r["first_named"]) / 2
                for r in early.iter_rows(named=True)
            ]
            users = {at: set(_cut(con, "crm.users", at)["user_id"]) for at in moments}
            for at in moments:
                for table, col in named.items():
                    rows = _cut(con, table, at)[col].drop_nulls()
                    assert set(rows) <= users[at], (at, table)
            # each early user is in the cut at its moment, though created after it
            for r, at in zip(early.iter_rows(named=True), moments[1:], strict=True):
                assert r["created_at"] > at and r["user_id"] in users[at]
        finally:
            con.execute("DETACH src")


@pytest.mark.slow
def test_every_manager_a_user_of_a_cut_names_is_in_it(replay: Replay) -> None:
    """A user row names its manager, and the generator hires some managers after their
    reports (and names a deal's owner on a deal without a creation time): at a moment
    between a report's creation and their manager's, the cut holds the manager too, and
    the manager's own manager."""
    with replay.wh.connect() as con:
        con.execute(f"ATTACH '{replay.source}' AS src (READ_ONLY)")
        try:
            late = frame(
                con,
                """SELECT u.created_at + (m.created_at - u.created_at) / 2 AS moment
                   FROM src.crm.users u JOIN src.crm.users m ON m.user_id = u.manager_id
                   WHERE m.created_at > u.created_at ORDER BY moment""",
            )
            assert len(late), "no manager hired after a report: nothing to test"
            for at in late["moment"]:
                users = _cut(con, "crm.users", at)
                named = set(users["manager_id"].drop_nulls())
                assert named <= set(users["user_id"]), (at, named - set(users["user_id"]))
                owners = set(_cut(con, "crm.opportunities", at)["owner_id"].drop_nulls())
                assert owners <= set(users["user_id"]), at
        finally:
            con.execute("DETACH src")
