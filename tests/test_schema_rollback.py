"""Every migration since the first upgrade test says how a test undoes it (tests/_schema.py)."""

from __future__ import annotations

from revstack.data.warehouse import Warehouse, first_row, migrations
from tests._schema import UNDO, as_before


def test_every_migration_since_the_first_upgrade_test_can_be_undone() -> None:
    versions = [v for v, _, _ in migrations()]
    missing = [v for v in versions if v >= min(UNDO) and v not in UNDO]
    assert not missing, f"say in tests/_schema.py UNDO how a test undoes migration {missing}"


def test_a_file_made_as_before_a_migration_is_migrated_again(tmp_path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    newest = max(v for v, _, _ in migrations())
    with wh.connect() as con:
        as_before(con, min(UNDO))
        assert first_row(con, "SELECT max(version) FROM ops.schema_version") == (min(UNDO) - 1,)
    from revstack.data.warehouse import release_all

    release_all()
    wh = Warehouse(tmp_path / "wh.duckdb")  # opening it runs the undone migrations again
    with wh.connect() as con:
        assert first_row(con, "SELECT max(version) FROM ops.schema_version") == (newest,)
        cols = {r[0] for r in con.execute("DESCRIBE ops.forecast_cache").fetchall()}
    assert "parts" in cols
