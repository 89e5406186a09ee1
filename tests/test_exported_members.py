"""Each package's ``__init__`` is its public face: what ``__all__`` names is there, and
what is there without being named is a submodule, ``__future__`` or nothing at all."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "revstack.data",
    "revstack.data.enrichment",
    "revstack.data.generator",
    "revstack.data.identity",
    "revstack.data.ingest",
    "revstack.contracts",
    "revstack.agents.engine",
    "revstack.agents.crm_hygiene",
    "revstack.agents.deal_prep",
    "revstack.agents.forecast",
    "revstack.agents.outbound",
    "revstack.agents.pipeline_health",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exactly_what_the_package_offers(name: str) -> None:
    package = importlib.import_module(name)
    exported = package.__all__
    assert len(exported) == len(set(exported))
    for member in exported:
        assert getattr(package, member) is not None, member
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_")
        and not isinstance(value, types.ModuleType)
        and member != "annotations"  # from __future__ import annotations
    }
    assert public <= set(exported), sorted(public - set(exported))


def test_the_engine_api_covers_what_the_cli_and_the_dashboard_need() -> None:
    import revstack.agents.engine as engine

    needed = {
        # runs
        "Agent",
        "AgentResult",
        "Context",
        "run_agents",
        "AgentSpec",
        "record_schedule",
        # decisions, the queue, rollback
        "decide",
        "list_proposals",
        "get_proposal",
        "rollback",
        # people and policy
        "add_person",
        "people",
        "require_role",
        "set_policy",
        "set_mode",
        "active_policy",
        # the audit log
        "verify",
        "audit_rows",
        "append",
        # errors
        "EngineError",
        "InvalidValue",
        "AccessDenied",
        "AgentOutputError",
    }
    assert needed <= set(engine.__all__)
    # and each comes from the engine's own private modules, not from elsewhere
    for member in needed:
        assert getattr(engine, member).__module__.startswith("revstack.agents.engine._"), member
