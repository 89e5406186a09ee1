"""A warehouse file as an older revstack left it, for tests of a migration's upgrade.

A file is at the version of its newest ``ops.schema_version`` row, and opening it runs
only the migrations after that; so a test that makes a file "from before migration N"
must undo N and every later migration, or N never runs again (or a later one fails on a
column that is already there). ``UNDO`` says how, for every migration since the first
test needed it; ``tests/test_schema_rollback.py`` fails when a new migration has no entry.
"""

from __future__ import annotations

import duckdb

__all__ = ["UNDO", "as_before"]

# Per migration, what takes its schema change back out. 023 changed stored values, not the
# schema: a test that needs a file from before it plants those values itself.
UNDO: dict[int, tuple[str, ...]] = {
    23: (),
    24: ("ALTER TABLE ops.review_batches DROP COLUMN looks",),
    25: ("ALTER TABLE ops.forecast_cache DROP COLUMN parts",),
}


def as_before(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Make the file ``con`` holds look as it did before migration ``version``."""
    for v in sorted((v for v in UNDO if v >= version), reverse=True):
        for sql in UNDO[v]:
            con.execute(sql)
    con.execute("DELETE FROM ops.schema_version WHERE version >= $v", {"v": version})
