"""A run reads a table several agents want once; each agent still sees what it would
have read alone, and what the engine or an import writes between agents is read again."""

from __future__ import annotations

import polars as pl

from revstack.agents.engine import AuditEntry, Context, SharedReads, append, decide
from revstack.agents.registry import specs
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.agents.conftest import insert_proposal


def _context(wh: Warehouse, agent: str, reads: dict, shared: SharedReads | None) -> Context:
    import datetime as dt

    return Context(wh, agent=agent, reads=reads, as_of=dt.datetime(2026, 1, 1), shared=shared)


def test_every_agent_sees_through_a_shared_read_what_it_reads_alone(
    small_company: Warehouse,
) -> None:
    agents = [s for s in specs() if s.factory is not None]
    shared = SharedReads.for_run([s.reads for s in agents])
    compared = 0
    for spec in agents:
        with_shared = _context(small_company, spec.name, spec.reads, shared)
        alone = _context(small_company, spec.name, spec.reads, None)
        for table in spec.reads:
            if table.split(".")[0] not in ("crm", "foundation"):
                continue
            got, want = with_shared.table(table), alone.table(table)
            # the same columns, rows and row order, and the same rows counted as read
            assert got.equals(want), f"{spec.name} {table}"
            # and the order is ORDER BY ALL's, whichever sort gave it
            cols = ", ".join(f'"{c}"' for c in got.columns)
            with small_company.connect() as con:
                everything = frame(con, f"SELECT {cols} FROM {table} ORDER BY ALL")
            assert got.equals(everything), f"{spec.name} {table}"
            assert with_shared.read_log[table] == alone.read_log[table]
            compared += 1
    release_all()
    # the tables several agents read are held once for the run
    assert {"crm.activities", "crm.contacts", "crm.opportunities"} <= set(shared.held)
    assert compared > 15


def test_a_change_the_engine_applies_between_agents_is_read_again(run_wh: Warehouse) -> None:
    wh = run_wh
    reads = {"crm.accounts": ["account_id", "industry"], "crm.contacts": ["contact_id"]}
    shared = SharedReads.for_run([reads, reads])
    first = _context(wh, "one", reads, shared)
    assert first.table("crm.accounts").filter(pl.col("account_id") == "a1")["industry"][0] is None
    first.table("crm.contacts")
    insert_proposal(wh, "p9", "a1", "industry", "null", '"Software"')
    decide(wh, "p9", approve=True, by="rev")  # the engine writes crm.accounts

    second = _context(wh, "two", reads, shared)
    accounts = second.table("crm.accounts")
    assert accounts.filter(pl.col("account_id") == "a1")["industry"][0] == "Software"
    assert shared.held == ["crm.accounts", "crm.contacts"]
    # once the last agent that may read a table has run, the run lets go of it
    shared.finished(reads)
    assert shared.held == ["crm.accounts", "crm.contacts"]
    shared.finished(reads)
    assert shared.held == []
    shared = SharedReads.for_run([reads, reads, reads])
    second = _context(wh, "two", reads, shared)
    # a proposal alone writes nothing, so the accounts read stays held: a row slipped in
    # behind the engine's back (no import, no audit row) is not seen until the next run
    second.table("crm.accounts")
    proposed = AuditEntry(
        actor="one", actor_kind="agent", action="propose", object_type="accounts", record_id="a2"
    )
    with wh.connect() as con:
        append(con, [proposed])
        con.execute("INSERT INTO crm.accounts (account_id, name, source) VALUES ('zz', 'Z', 'x')")
    assert len(_context(wh, "three", reads, shared).table("crm.accounts")) == len(accounts)
    assert len(_context(wh, "alone", reads, None).table("crm.accounts")) == len(accounts) + 1


def test_an_import_between_agents_drops_every_shared_read(run_wh: Warehouse) -> None:
    wh = run_wh
    reads = {"crm.accounts": ["account_id", "name"]}
    shared = SharedReads.for_run([reads, reads])
    assert len(_context(wh, "one", reads, shared).table("crm.accounts")) == 4
    with wh.connect() as con:  # what an import does: its rows and its ops.imports row at once
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, source) VALUES ('a5', 'Umbrella', 'test')"
        )
        con.execute(
            "INSERT INTO ops.imports VALUES (nextval('ops.import_seq'), 'test', 'here', now(), "
            "now(), now(), '{}')"
        )
        con.execute("COMMIT")
    assert len(_context(wh, "two", reads, shared).table("crm.accounts")) == 5


def test_a_table_one_agent_reads_or_without_its_key_is_not_shared(run_wh: Warehouse) -> None:
    one = {"crm.accounts": ["account_id"], "ref.news": "*"}
    other = {"crm.contacts": ["contact_id"], "ref.news": "*"}
    shared = SharedReads.for_run([one, other])
    assert _context(run_wh, "one", one, shared).table("crm.accounts").columns == ["account_id"]
    assert shared.held == []  # one reader, and ref tables are not the CRM's
    keyless = {"crm.accounts": ["name"]}
    shared = SharedReads.for_run([keyless, keyless])
    _context(run_wh, "one", keyless, shared).table("crm.accounts")
    assert shared.held == []  # without its key the rows' order is not the key's


def test_a_read_in_any_order_holds_the_same_rows(small_company: Warehouse) -> None:
    """``ordered=False`` skips the sort: the same rows as a set, counted as read; a table
    already read in order, or shared by the run, is served as it is."""
    spec = next(s for s in specs() if s.name == "pipeline_health")
    alone = _context(small_company, spec.name, spec.reads, None)
    anyhow = alone.table("crm.activities", ordered=False)
    ordered = alone.table("crm.activities")
    assert len(anyhow) > 10_000 and anyhow.columns == ordered.columns
    assert anyhow.sort(pl.all()).equals(ordered.sort(pl.all()))
    assert alone.read_log["crm.activities"] == 2 * len(ordered)  # two reads
    # read in order first: the unordered ask gets that frame, nothing is read again
    again = _context(small_company, spec.name, spec.reads, None)
    first = again.table("crm.activities")
    assert again.table("crm.activities", ordered=False) is first
    assert again.read_log["crm.activities"] == len(first)
    # a shared read serves it too, in its order
    shared = SharedReads.for_run([spec.reads, spec.reads])
    via = _context(small_company, spec.name, spec.reads, shared)
    assert via.table("crm.activities", ordered=False).equals(ordered)
    release_all()


def test_a_read_too_large_to_hold_is_each_agents_own(small_company: Warehouse) -> None:
    """A table of more than ``hold_up_to`` rows is not read once and held for later agents
    (memory on a large company); each agent still sees what it reads alone."""
    agents = [s for s in specs() if s.factory is not None]
    held = SharedReads.for_run([s.reads for s in agents])
    none = SharedReads.for_run([s.reads for s in agents], hold_up_to=0)
    compared = 0
    for spec in agents:
        alone = _context(small_company, spec.name, spec.reads, None)
        for shared in (held, none):
            ctx = _context(small_company, spec.name, spec.reads, shared)
            for table in spec.reads:
                if table.split(".")[0] not in ("crm", "foundation"):
                    continue
                assert ctx.table(table).equals(alone.table(table)), (spec.name, table)
                compared += 1
    release_all()
    assert compared > 30
    # at a limit of no rows, only an empty table is shared
    assert "crm.activities" in held.held and "crm.activities" not in none.held
    assert none.held == [t for t in held.held if t.startswith("foundation.")]
