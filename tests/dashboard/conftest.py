"""Dashboard fixtures: the engine's tiny warehouses, and the small company after a real run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from revstack.data.warehouse import Warehouse
from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures


@pytest.fixture
def small_copy(small_run: Path, tmp_path: Path) -> Warehouse:
    """A private copy of ``small_run`` a test may write to."""
    path = tmp_path / "small.duckdb"
    shutil.copy(small_run, path)
    return Warehouse(path)
