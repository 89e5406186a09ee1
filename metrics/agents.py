"""One entry point for an agent's measures: ``revstack metrics --agent NAME``.

Every agent gets what the engine recorded about it (outcomes per action type, runs);
an agent whose issue has landed its measures against truth adds them through a
module here with ``report(con, definitions) -> dict`` (listed in ``REPORTS``), and, where
that report is a replay taking minutes, ``stored_report`` with the same signature for
the dashboard, reading what the replay last stored.
"""

from __future__ import annotations

import importlib
from typing import Any

import duckdb

from revstack.data.errors import InputError
from revstack.metrics.engine import action_outcomes, run_stats

__all__ = ["REPORTS", "agent_report"]

# agent -> module with its measures against truth and reviewer decisions.
REPORTS: dict[str, str] = {
    "crm_hygiene": "revstack.metrics.hygiene",
    "pipeline_health": "revstack.metrics.pipeline",
    "deal_prep": "revstack.metrics.deal_prep",
    "outbound": "revstack.metrics.outbound",
    "forecast": "revstack.metrics.forecast_store",
}


def agent_report(
    con: duckdb.DuckDBPyConnection,
    agent: str,
    definitions: Any,
    *,
    known: set[str],
    stored: bool = False,
) -> dict[str, Any]:
    """The engine's record of ``agent`` plus its own measures where they exist.

    ``stored``: where a measure is a replay that takes minutes (a module with
    ``stored_report``), its last stored figures instead; a page uses this, the CLI does not.
    """
    if agent not in known:
        raise InputError(f"unknown agent {agent!r}; agents are {', '.join(sorted(known))}")
    outcomes = action_outcomes(con).filter(agent=agent).drop("agent")
    runs = run_stats(con).filter(agent=agent).drop("agent")
    out: dict[str, Any] = {
        "agent": agent,
        "engine": {"actions": outcomes.to_dicts(), "runs": runs.to_dicts()},
    }
    module = REPORTS.get(agent)
    if module is None:
        out["measures"] = None
    else:
        mod = importlib.import_module(module)
        measure = getattr(mod, "stored_report", mod.report) if stored else mod.report
        out["measures"] = measure(con, definitions)
    return out
