"""A generated company as it stood at an earlier moment, and the forecast's cache carried
from one warehouse to another: "the next week" of one company, for the cache's tests and
bench/bench_forecast_incremental.py.

The generator is not prefix-stable in its as-of (generating with an earlier ``--as-of``
makes another company), so a week is made by cutting one company twice: every dated
record after the cut goes, and the data's as-of (the latest import's) becomes the cut.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from revstack.agents.engine import Context
from revstack.agents.forecast import _inputs
from revstack.agents.registry import specs
from revstack.contracts import load_definitions
from revstack.data.warehouse import Warehouse, release_all

# Children first: the records dated after the cut, and the deals created after it.
_DATED = {
    "crm.opportunity_history": "changed_at",
    "crm.activities": "occurred_at",
    "crm.opportunity_contacts": "added_at",
    "crm.forecast_submissions": "submitted_at",
    "crm.opportunities": "created_at",
}
_CACHE = (
    "forecast_cache",
    "forecast_cache_snapshots",
    "forecast_cache_segments",
    "forecast_cache_open",
    "forecast_states",
    "forecast_states_head",
)


def cut(src: Path, dst: Path, at: dt.datetime) -> Warehouse:
    """A copy of the warehouse at ``src`` as its CRM stood at ``at``."""
    release_all()
    shutil.copy(src, dst)
    wh = Warehouse(dst)
    with wh.connect() as con:
        for table, column in _DATED.items():
            con.execute(f"DELETE FROM {table} WHERE {column} > $at", {"at": at})
        con.execute("UPDATE ops.imports SET as_of = $at", {"at": at})
    release_all()
    return wh


def carry_cache(src: Warehouse, dst: Warehouse) -> None:
    """Put the forecast cache stored in ``src`` into ``dst`` (replacing dst's)."""
    release_all()
    with dst.connect() as con:
        con.execute("ATTACH $path AS src (READ_ONLY)", {"path": str(src.path)})
        try:
            for table in _CACHE:
                con.execute(f"DELETE FROM ops.{table}")
                con.execute(f"INSERT INTO ops.{table} SELECT * FROM src.ops.{table}")
        finally:
            con.execute("DETACH src")
    release_all()


def forecast_inputs(wh: Warehouse, as_of: dt.datetime) -> _inputs.Inputs:
    """What the forecast agent reads of ``wh`` as of ``as_of``."""
    [spec] = [s for s in specs() if s.name == "forecast"]
    ctx = Context(
        wh, agent="forecast", reads=spec.reads, as_of=as_of, definitions=load_definitions(None)
    )
    inp = _inputs.load(ctx)
    release_all()
    return inp
