"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.warehouse import Warehouse, release_all

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A fresh, migrated warehouse file."""
    warehouse = Warehouse(tmp_path / "wh.duckdb", busy_timeout=5)
    with warehouse.connect():
        pass
    release_all()  # let go of the file now, not after the idle linger
    return warehouse


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
