"""The one place agents are wired to their contracts (a test proves it loads).

An agent appears here once its implementation lands; until then its contract is
listed with ``implemented: false`` and runs skip it, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import polars as pl

from revstack.agents.crm_hygiene import CrmHygiene
from revstack.agents.deal_prep import DealPrep
from revstack.agents.engine import POLICY_SCHEMA, Agent, AgentSpec, dependency_order
from revstack.agents.forecast import ForecastAgent
from revstack.agents.outbound import Outbound
from revstack.agents.pipeline_health import PipelineHealth
from revstack.contracts import AgentContract, Bundle, load_all
from revstack.data.warehouse import frame

__all__ = ["IMPLEMENTATIONS", "policy_frame", "specs", "registry_rows"]

# name -> factory. Each agent's issue adds its line.
IMPLEMENTATIONS: dict[str, Callable[[], Agent]] = {
    "crm_hygiene": CrmHygiene,
    "deal_prep": DealPrep,
    "outbound": Outbound,
    "pipeline_health": PipelineHealth,
    "forecast": ForecastAgent,
}

_MODES = "SELECT agent, mode FROM ops.agent_modes"


def policy_frame(contract: AgentContract) -> pl.DataFrame:
    """One row per (action, object, field) the contract allows, at the stricter of the
    action's and the field's tier and threshold; output-only actions have no field."""
    rows: list[tuple[str, str | None, str | None, int, float]] = []
    for action in contract.actions:
        if not action.writes:
            about = action.about if isinstance(action.about, list) else [action.about]
            rows += [
                (action.name, kind, None, action.tier, action.min_confidence) for kind in about
            ]
        for w in action.writes:
            table, _, field = w.rpartition(".")
            grant = contract.writes[table][field]
            rows.append(
                (
                    action.name,
                    table.split(".", 1)[1],
                    field,
                    max(action.tier, grant.tier),
                    max(action.min_confidence, grant.min_confidence),
                )
            )
    return pl.DataFrame(rows, schema=POLICY_SCHEMA, orient="row")


def specs(bundle: Bundle | None = None) -> list[AgentSpec]:
    """Every contracted agent as the engine runs it, in dependency order."""
    bundle = bundle or load_all()
    out = [
        AgentSpec(
            name=c.agent,
            version=getattr(IMPLEMENTATIONS.get(c.agent), "version", "-"),
            contract_version=c.version,
            owner=c.owner,
            mode=c.mode,
            depends_on=tuple(c.depends_on),
            triggers=tuple(c.triggers),
            reads={t: cols for t, cols in c.reads.items()},
            policy=policy_frame(c),
            factory=IMPLEMENTATIONS.get(c.agent),
            outputs=tuple(c.outputs),
            replaces=tuple(c.replaces),
            params=dict(c.params),
            expiry={a.name: a.expires_after_days for a in c.actions if a.expires_after_days},
        )
        for c in bundle.contracts.values()
    ]
    return dependency_order(out)


def registry_rows(
    con: duckdb.DuckDBPyConnection, bundle: Bundle | None = None
) -> list[dict[str, Any]]:
    """The registry as people read it: contract, triggers, dependencies, mode, owner, version."""
    modes = dict(frame(con, _MODES).iter_rows())
    return [
        {
            "agent": s.name,
            "implemented": s.factory is not None,
            "agent_version": s.version,
            "contract_version": s.contract_version,
            "owner": s.owner,
            "mode": modes.get(s.name, s.mode),
            "mode_source": "policy" if s.name in modes else "contract",
            "depends_on": list(s.depends_on),
            "triggers": list(s.triggers),
            "reads": sorted(s.reads),
            "outputs": list(s.outputs),
            "actions": s.policy.select("action_type", "tier")
            .unique(maintain_order=True)
            .to_dicts(),
        }
        for s in specs(bundle)
    ]
