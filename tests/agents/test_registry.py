"""The registry loads every contract and wires the engine's view of it."""

from __future__ import annotations

import polars as pl

from revstack.agents.registry import policy_frame, registry_rows, specs
from revstack.contracts import load_all
from revstack.data.warehouse import Warehouse


def test_registry_lists_every_contracted_agent_in_dependency_order(wh: Warehouse) -> None:
    rows = wh.read(registry_rows)
    names = [r["agent"] for r in rows]
    assert set(names) == {"crm_hygiene", "pipeline_health", "deal_prep", "forecast", "outbound"}
    assert names[0] == "crm_hygiene"  # hygiene before the others
    for r in rows:
        assert all(names.index(d) < names.index(r["agent"]) for d in r["depends_on"])
    pipeline = next(r for r in rows if r["agent"] == "pipeline_health")
    assert pipeline["mode"] == "shadow"  # read-only until graduated (docs/design.md)


def test_policy_takes_the_stricter_of_action_and_field() -> None:
    bundle = load_all()
    hygiene = policy_frame(bundle.contracts["crm_hygiene"])
    enrich = hygiene.filter(
        (pl.col("action_type") == "enrich_empty_field") & (pl.col("field") == "industry")
    )
    assert enrich.select("tier", "min_confidence").row(0) == (1, 0.9)
    close = hygiene.filter(pl.col("action_type") == "close_phantom_deal")
    assert set(close["tier"]) == {3}
    outbound = policy_frame(bundle.contracts["outbound"])
    assert outbound.select("action_type", "object_type", "field", "tier").row(0) == (
        "draft_email",
        "contacts",
        None,
        3,
    )
    assert [s.name for s in specs(bundle)][0] == "crm_hygiene"
