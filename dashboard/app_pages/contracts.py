"""Contracts & registry: every agent with its contract, mode, owner, dependencies, and the definitions."""

from __future__ import annotations

import polars as pl
import streamlit as st

from revstack.agents.registry import registry_rows
from revstack.dashboard._state import bundle as contracts_bundle
from revstack.dashboard._state import load, table
from revstack.metrics.effort import load_effort
from revstack.metrics.engine import action_outcomes


def _criterion(c: dict) -> str:
    """An entry criterion as a person reads it: 'amount > 0', 'role champion on the deal'."""
    if "role" in c:
        return f"a {c['role'].replace('_', ' ')} on the deal"
    what = c.get("field") or c.get("metric", "?")
    return f"{what} is set" if c["op"] == "is_set" else f"{what} {c['op']} {c['value']:g}"


st.title("Contracts & registry")
bundle = contracts_bundle()
rows = load(registry_rows)
outcomes = load(action_outcomes)
registry = pl.DataFrame(
    [
        {
            **r,
            "depends_on": ", ".join(r["depends_on"]),
            "triggers": ", ".join(r["triggers"]),
            "outputs": ", ".join(r["outputs"]),
            "reads": len(r["reads"]),
            "actions": ", ".join(f"{a['action_type']} (t{a['tier']})" for a in r["actions"]),
        }
        for r in rows
    ]
)
table(registry, "registry", key="dl_registry")
for r in rows:
    with st.expander(
        f"{r['agent']} · {r['mode']} · contract {r['contract_version']} · owner {r['owner']}"
    ):
        c = bundle.contracts[r["agent"]]
        st.write(c.description)
        st.markdown("**Reads:** " + ", ".join(f"`{t}`" for t in c.reads))
        st.markdown("**Actions:**")
        table(
            pl.DataFrame(
                [
                    {
                        "action": a.name,
                        "tier": a.tier,
                        "min_confidence": a.min_confidence,
                        "writes": ", ".join(a.writes) or f"(output about {a.about})",
                        "description": a.description,
                    }
                    for a in c.actions
                ]
            ),
            f"{r['agent']}_actions",
            key=f"dl_actions_{r['agent']}",
        )
        mine = outcomes.filter(pl.col("agent") == r["agent"])
        if not mine.is_empty():
            st.markdown("**Performance:**")
            table(mine, f"{r['agent']}_performance", key=f"dl_perf_{r['agent']}")
st.subheader("Canonical definitions: stages")
d = bundle.definitions
table(
    pl.DataFrame(
        [
            {
                "stage": s.key,
                "label": s.label,
                "probability": s.probability,
                "forecast category": s.forecast_category,
                "quiet days": s.quiet_days,
                "entry criteria": "; ".join(
                    _criterion(c.model_dump(exclude_none=True)) for c in s.entry_criteria
                ),
            }
            for s in d.stages
        ]
    ),
    "stages",
    key="dl_stages",
)
st.markdown(
    "**Required fields:** "
    + "; ".join(f"{o}: {', '.join(f)}" for o, f in d.required_fields.items())
)
st.subheader("Documented minutes per task (contracts/effort.yaml)")
st.caption("What Stack health's hours automated are computed from; RevOps edits the file.")
table(load_effort(bundle=bundle), "effort", key="dl_effort")
