"""``Context.sql`` hands its sandbox polars' own string views; a query there answers as the
same query on the warehouse does."""

from __future__ import annotations

import datetime as dt

import polars as pl

from revstack.agents.engine import Context
from revstack.agents.registry import specs
from revstack.contracts import (
    load_all,
    required_fields_sql,
    stage_checks_sql,
    stage_fit_sql,
    stage_violations_sql,
)
from revstack.data.warehouse import Warehouse, frame, release_all

_DEALS = ["crm.opportunities", "crm.activities", "crm.opportunity_contacts"]


def _hygiene_context(wh: Warehouse) -> Context:
    bundle = load_all()
    hygiene = next(s for s in specs(bundle) if s.name == "crm_hygiene")
    return Context(
        wh,
        agent=hygiene.name,
        reads=hygiene.reads,
        as_of=dt.datetime(2026, 9, 1),
        definitions=bundle.definitions,
    )


def test_the_hygiene_checks_answer_over_string_views_as_over_copies(
    small_company: Warehouse,
) -> None:
    """The checks' queries over the views give what they gave over Arrow copies of the
    tables (what ``Context.sql`` registered before), row for row and in order. (Not
    compared with the warehouse itself: a ``list(DISTINCT ...)`` lists in the order
    the rows come, and the context's rows come sorted.)"""
    d = load_all().definitions
    params = {"as_of": dt.datetime(2026, 9, 1)}
    queries = [
        (stage_violations_sql(d), _DEALS, params),
        (stage_fit_sql(d), _DEALS, params),
        *((required_fields_sql(d, o), [f"crm.{o}"], None) for o in ("accounts", "contacts")),
    ]
    views, copies = _hygiene_context(small_company), _hygiene_context(small_company)
    for t in {t for _, tables, _ in queries for t in tables}:
        copies._arrow[t] = copies.table(t).to_arrow()  # the layout registered before
    rows = 0
    for sql, tables, p in queries:
        got = views.sql(sql, tables=tables, params=p)
        want = copies.sql(sql, tables=tables, params=p)
        assert got.schema == want.schema
        assert got.equals(want)
        rows += len(got)
    # the views are polars' own buffers, not copies in Arrow's older layout
    assert any(str(f.type) == "string_view" for f in views._arrow["crm.activities"].schema)
    assert not any(str(f.type) == "string_view" for f in copies._arrow["crm.activities"].schema)
    release_all()
    assert rows > 0


def test_the_stage_checks_answer_in_the_sandbox_as_on_the_warehouse(
    small_company: Warehouse,
) -> None:
    """A deal's roles are listed in one order whatever order its rows come in: the
    context's rows come sorted, the warehouse's as stored, and the reasons people read
    name the roles (they listed them in arrival order before)."""
    d = load_all().definitions
    params = {"as_of": dt.datetime(2026, 9, 1)}
    ctx = _hygiene_context(small_company)
    compared = 0
    for sql in (stage_violations_sql(d), stage_fit_sql(d)):
        got = ctx.sql(sql, tables=_DEALS, params=params)
        with small_company.connect() as con:
            want = frame(con, sql, params)
        assert got.equals(want)
        compared += len(got)
    release_all()
    assert compared > 0


# The latest two-way activity of each open deal, as the phantom check asked it apart.
_LATEST_TWO_WAY = """
SELECT o.opportunity_id, o.stage, o.close_date, o.created_at,
       max(a.occurred_at) FILTER (WHERE a.status = 'completed' AND a.direction IN ('inbound', 'two_way')
                                  AND a.occurred_at <= $as_of) AS last_two_way
FROM crm.opportunities o LEFT JOIN crm.activities a USING (opportunity_id)
WHERE NOT o.is_closed
GROUP BY ALL ORDER BY opportunity_id
"""


def test_the_stage_checks_in_one_pass_answer_as_the_three_queries(
    small_company: Warehouse,
) -> None:
    """``stage_checks_sql`` (one pass over the activity) gives each open deal the fits of
    ``stage_fit_sql``, the failed criteria of ``stage_violations_sql`` in their order, and
    the latest two-way activity the phantom check asked for, at two as-of moments."""
    d = load_all().definitions
    ctx = _hygiene_context(small_company)
    checked = failing = 0
    for as_of in (dt.datetime(2026, 9, 1), dt.datetime(2026, 3, 1)):
        params = {"as_of": as_of}
        got = ctx.sql(stage_checks_sql(d), tables=_DEALS, params=params)
        fits = ctx.sql(stage_fit_sql(d), tables=_DEALS, params=params)
        fails = ctx.sql(stage_violations_sql(d), tables=_DEALS, params=params)
        latest = ctx.sql(_LATEST_TWO_WAY, tables=_DEALS, params=params)
        assert got.select(latest.columns).equals(latest)
        assert (
            got.select(fits.columns)
            .filter(pl.col("opportunity_id").is_in(fits["opportunity_id"].implode()))
            .equals(fits)
        )
        # a deal in no open stage has no fit
        assert got.join(fits, on="opportunity_id", how="anti")["fits"].null_count() == len(
            got.join(fits, on="opportunity_id", how="anti")
        )
        want = (
            fails.group_by("opportunity_id", maintain_order=True)
            .agg(failed=pl.struct("criterion", "actual"))
            .sort("opportunity_id")
        )
        mine = got.filter(pl.col("failed").is_not_null()).select("opportunity_id", "failed")
        assert mine.equals(want)
        checked += len(got)
        failing += len(mine)
    release_all()
    assert checked > 0 and failing > 0


def test_text_compares_joins_and_lists_alike_in_the_sandbox(small_company: Warehouse) -> None:
    """Grouping, joining, sorting and list functions over text read from the views."""
    reads = {"crm.contacts": "*", "crm.accounts": "*"}
    ctx = Context(small_company, agent="probe", reads=reads, as_of=dt.datetime(2026, 9, 1))
    sql = """
    SELECT a.account_id, a.name, list(c.email ORDER BY c.contact_id) AS emails,
           count(DISTINCT lower(c.last_name)) AS names, max(c.email) AS last_email
    FROM crm.accounts a JOIN crm.contacts c USING (account_id)
    WHERE c.email LIKE '%@%' GROUP BY ALL ORDER BY a.account_id
    """
    got = ctx.sql(sql, tables=list(reads))
    with small_company.connect() as con:
        want = frame(con, sql)
    release_all()
    assert len(want) > 10
    assert got.equals(want)
    assert got.schema["emails"] == pl.List(pl.String)


def test_hygiene_measures_open_deals_in_the_warehouse_as_over_frames(
    small_company: Warehouse,
) -> None:
    """The hygiene agent's stage checks run in the warehouse's own DuckDB give what the same
    query gives over the tables loaded as frames, at two as-of moments, without the
    activity ever held as a frame."""
    from revstack.agents.crm_hygiene._checks import _open_deals

    d = load_all().definitions
    compared = failing = 0
    for as_of in (dt.datetime(2026, 9, 1), dt.datetime(2026, 3, 1)):
        framed, warehoused = _hygiene_context(small_company), _hygiene_context(small_company)
        want = framed.sql(stage_checks_sql(d), tables=_DEALS, params={"as_of": as_of})
        got = _open_deals(warehoused, as_of)
        assert got.schema == want.schema
        assert got.equals(want)
        assert "crm.activities" not in warehoused._arrow
        assert "crm.activities" not in warehoused.read_log
        assert "crm.activities" in warehoused.queried
        compared += len(got)
        failing += got["failed"].is_not_null().sum()
    release_all()
    assert compared > 0 and failing > 0


def test_a_context_that_let_go_of_its_tables_reads_them_again_alike(
    small_company: Warehouse,
) -> None:
    """The engine lets go of an agent's tables once it has run (before the commit); a
    read after that reads the table again, the same rows in the same order."""
    ctx = _hygiene_context(small_company)
    before = ctx.table("crm.accounts")
    ctx.sql("SELECT count(*) AS n FROM crm.accounts", tables=["crm.accounts"])
    assert ctx.held()
    ctx.let_go()
    assert not ctx.held()
    assert ctx.table("crm.accounts").equals(before)


def test_a_warehouse_block_gives_back_what_it_cached(small_company: Warehouse) -> None:
    """After a block of warehouse queries DuckDB holds no more of the file's blocks it
    read (they would stay until it needed the room), and its memory limit is as before."""
    ctx = _hygiene_context(small_company)
    cached = "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    with small_company.connect() as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    tables = {
        "crm.activities": ["opportunity_id", "contact_id", "direction", "status", "occurred_at"],
        "crm.contacts": ["contact_id", "email", "first_name", "last_name", "updated_at"],
        "crm.opportunities": ["opportunity_id", "name", "stage", "amount", "close_date"],
    }
    with ctx.warehouse(tables) as wh:
        rows = sum(len(wh.frame(f"SELECT * FROM {t}")) for t in tables)
        with small_company.connect() as con:
            held = con.execute(cached).fetchone()
    with small_company.connect() as con:
        after = con.execute(cached).fetchone()
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == limit
    assert rows > 1000 and held is not None and after is not None
    assert held[0] > 1_500_000 and after[0] < held[0] / 2
