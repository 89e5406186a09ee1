"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from revstack.data.warehouse import Warehouse, release_all

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Put back the process's ``__main__`` after each test. Streamlit's AppTest runs a
    page as ``__main__`` and leaves it there, and a process started with ``spawn``
    afterwards in the same worker runs its parent's ``__main__`` file first: the
    dashboard's app, which opens ``var/revstack.duckdb`` under the working directory."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A fresh, migrated warehouse file."""
    warehouse = Warehouse(tmp_path / "wh.duckdb", busy_timeout=5)
    with warehouse.connect():
        pass
    release_all()  # let go of the file now, not after the idle linger
    return warehouse


@pytest.fixture(scope="session")
def small_company(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One generated small company (seed 3) for every test that only reads it or adds ops rows."""
    from revstack.data.generator import generate

    warehouse = Warehouse(tmp_path_factory.mktemp("company") / "small.duckdb")
    generate(warehouse, scale="small", seed=3)
    release_all()
    return warehouse


@pytest.fixture(scope="session")
def small_run(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small company (copied) with three people, audited, after `revstack run`: a file
    to copy, never to write."""
    from revstack.agents.engine import add_person, run_agents
    from revstack.agents.registry import specs
    from revstack.contracts import load_definitions

    release_all()
    path = tmp_path_factory.mktemp("small_run") / "small_run.duckdb"
    shutil.copy(small_company.path, path)
    wh = Warehouse(path)
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    add_person(wh, "vic", "viewer", by="ana")
    run_agents(wh, specs(), definitions=load_definitions())
    release_all()
    return path


@pytest.fixture(scope="session")
def forecast_company(
    small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Warehouse:
    """A copy of the small company after one run of the forecast agent (its outputs stored)."""
    import shutil

    from revstack.agents.engine import run_agents
    from revstack.agents.registry import specs

    path = tmp_path_factory.mktemp("forecast") / "small.duckdb"
    shutil.copy(small_company.path, path)
    warehouse = Warehouse(path)
    [result] = run_agents(warehouse, specs(), only="forecast")
    assert result.status == "succeeded", result.message
    release_all()
    return warehouse


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if os.environ.get("CI"):  # CI always has shared/ beside the clone: missing is a failure
            pytest.fail(f"real data not found at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


# DuckDB 2's nanobind module reports "leaked function" objects when the interpreter
# shuts down after a long test session (a reference-count issue inside the binding,
# not ours). The report lands after pytest's summary and buries it, so once pytest
# has written everything and every other plugin has finished, leave without the
# interpreter teardown, keeping pytest's exit status.
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import sys

    if _EXIT in config.stash and os.environ.get("REVSTACK_KEEP_TEARDOWN") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT])


_EXIT = pytest.StashKey[int]()
