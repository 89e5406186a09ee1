"""Dashboard fixtures: the engine's tiny warehouses, and the small company after a real run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from revstack.data.warehouse import Warehouse, release_all
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures


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


@pytest.fixture
def small_copy(small_run: Path, tmp_path: Path) -> Warehouse:
    """A private copy of ``small_run`` a test may write to."""
    path = tmp_path / "small.duckdb"
    shutil.copy(small_run, path)
    return Warehouse(path)
