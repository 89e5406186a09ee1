"""Every DuckDB revstack opens gets revstack's memory limit (``$REVSTACK_MEMORY_LIMIT``,
else a quarter of the machine), and spills past it instead of growing."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import duckdb
import pytest

from revstack.agents.engine import Context
from revstack.data.errors import WarehouseError
from revstack.data.warehouse import (
    MEMORY_LIMIT_ENV,
    Warehouse,
    memory_limit,
    release_all,
    scratch,
)

ROOT = Path(__file__).resolve().parents[2]
_SETTING = "SELECT current_setting('memory_limit')"


def _reading(value: str) -> str:
    """How DuckDB itself reads a memory limit."""
    con = duckdb.connect(config={"memory_limit": value})
    try:
        return str(con.sql(_SETTING).fetchall()[0][0])
    finally:
        con.close()


def _limits(wh: Warehouse) -> dict[str, str]:
    """The memory limit each kind of connection revstack opens has."""
    release_all()  # a handle opened before the setting changed keeps its own
    with wh.connect() as con:
        warehouse = str(con.sql(_SETTING).fetchall()[0][0])
    release_all()
    con = scratch()
    try:
        work = str(con.sql(_SETTING).fetchall()[0][0])
    finally:
        con.close()
    ctx = Context(wh, agent="probe", reads={}, as_of=dt.datetime(2026, 9, 1))
    sandbox = str(ctx.sql(_SETTING + " AS m", tables=[])["m"][0])
    return {"warehouse": warehouse, "scratch": work, "agent sandbox": sandbox}


def test_a_set_limit_reaches_the_warehouse_scratch_and_agent_connections(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    want = _reading("300MB")
    assert want != _reading("80%")
    assert _limits(wh) == {"warehouse": want, "scratch": want, "agent sandbox": want}
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "30%")
    share = _reading("30%")
    assert share != want
    assert _limits(wh) == {"warehouse": share, "scratch": share, "agent sandbox": share}


def test_without_a_setting_each_connection_gets_a_quarter_of_the_machine(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    assert memory_limit() == "25%"
    quarter = _reading("25%")
    assert quarter != _reading("80%")  # DuckDB's own default, per database
    assert set(_limits(wh).values()) == {quarter}


@pytest.mark.parametrize("bad", ["lots", "0", "0GB", "150%", "-1GB", "6 GB and more", "%"])
def test_a_limit_that_is_not_a_size_or_a_share_is_refused_in_words(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, bad)
    with pytest.raises(WarehouseError, match=MEMORY_LIMIT_ENV):
        memory_limit()
    release_all()
    with (
        pytest.raises(WarehouseError, match=MEMORY_LIMIT_ENV),
        Warehouse(tmp_path / "x.duckdb").connect(),
    ):
        pass


@pytest.mark.parametrize("good", ["6GB", "512MiB", "1.5gb", "2G", "100%", "12.5%"])
def test_sizes_and_shares_pass_as_duckdb_reads_them(
    good: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, f" {good} ")
    assert memory_limit() == good
    con = scratch()
    try:
        assert con.sql(_SETTING).fetchall()[0][0] == _reading(good)
    finally:
        con.close()


def test_a_scratch_connection_spills_past_the_limit_and_removes_its_spill_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64MB")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    con = scratch()
    try:
        # one thread and no order kept: a sort's own floor stays under so small a limit
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = false")
        con.execute(
            "CREATE TABLE t AS SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
            "FROM range(2000000) r(i) ORDER BY s"
        )
        spilled = con.sql("SELECT count(*) FROM duckdb_temporary_files()").fetchall()[0][0]
        rows = con.sql("SELECT count(*), count(DISTINCT s) FROM t").fetchall()[0]
        folders = list(tmp_path.glob("revstack-spill-*"))
    finally:
        con.close()
    assert rows == (2_000_000, 2_000_000)
    assert spilled > 0  # ~150 MB of strings sorted under 64 MB
    assert len(folders) == 1
    assert not folders[0].exists()


def test_no_library_module_opens_a_duckdb_of_its_own() -> None:
    """A bare ``duckdb.connect`` gets DuckDB's 80% of the machine: the library opens its
    in-memory DuckDBs with ``scratch()`` and the warehouse through ``Warehouse``."""
    bare = re.compile(r"\bduckdb\.connect\(")
    found = []
    for folder in ("agents", "contracts", "data", "metrics", "dashboard", "revstack"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "data" / "warehouse.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if bare.search(line) and not line.lstrip().startswith("#"):
                    found.append(f"{path.relative_to(ROOT)}:{n}")
    assert found == []
