"""One forecast run with test parameters, and the rows it stored: shared by the cache and
stored-model tests (kept in a module, not a test file, so both import it)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import polars as pl

from revstack.agents.engine import run_agents
from revstack.agents.forecast import _backtest
from revstack.agents.registry import specs
from revstack.data.warehouse import Warehouse, frame, release_all


def run_forecast(wh: Warehouse, params: dict[str, Any], *, new_process: bool = False) -> dict:
    """Run the forecast agent with ``params`` over its contract's; its run id and metadata.
    ``new_process``: nothing fitted in this process's memory, as a cron job's run."""
    if new_process:
        _backtest._FITTED.clear()
    spec = [
        dataclasses.replace(s, params={**s.params, **params})
        for s in specs()
        if s.name == "forecast"
    ]
    [result] = run_agents(wh, spec, only="forecast")
    assert result.status == "succeeded", result.message
    with wh.connect() as con:
        md = frame(con, "SELECT metadata FROM ops.runs WHERE run_id = $r", {"r": result.run_id})
    release_all()
    return {"run_id": result.run_id, **json.loads(md["metadata"][0])["agent"]}


def stored_rows(wh: Warehouse, run_id: str, tables: Iterable[str]) -> dict[str, pl.DataFrame]:
    """The rows run ``run_id`` stored in each of the ops ``tables``, run id left out."""
    out = {}
    with wh.connect() as con:
        for t in tables:
            out[t] = frame(
                con,
                f"SELECT * EXCLUDE (run_id) FROM ops.{t} WHERE run_id = $r ORDER BY ALL",
                {"r": run_id},
            )
    release_all()
    return out
