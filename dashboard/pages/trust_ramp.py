"""Trust ramp: which action types have earned autonomy, and graduating them."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from agents.engine._catalog import EngineError
from agents.engine._policy import set_policy
from dashboard._state import download, signed_in, warehouse
from metrics.trust import RAMP_RULES, suggestions, trust_cycles

st.title("Trust ramp")
wh = warehouse()
name, role = signed_in()
with wh.connect() as con:
    cycles = trust_cycles(con, cycle_days=RAMP_RULES["cycle_days"])

st.caption(
    f"{RAMP_RULES['cycle_days']}-day cycles. Graduate (tier 2 → 1) after at least "
    f"{RAMP_RULES['min_reviewed']} reviews when the 95% lower bound of approval-without-change "
    f"is at least {RAMP_RULES['graduate_lower_bound']:.0%}; demote when more than "
    f"{RAMP_RULES['demote_override_rate']:.0%} are overridden or rolled back."
)
if cycles.is_empty():
    st.info(
        "No decisions yet. As reviewers approve, edit and reject, each action type builds its record here."
    )
else:
    fig = go.Figure()
    for (agent, action), part in cycles.group_by("agent", "action_type", maintain_order=True):
        label = f"{agent} · {action}"
        fig.add_scatter(
            x=part["cycle_start"].to_list(),
            y=part["approval_rate"].to_list(),
            name=label,
            mode="lines+markers",
        )
        fig.add_scatter(x=part["cycle_start"].to_list(), y=part["approval_lower_bound"].to_list(), name=f"{label} (95% lower bound)",
                        mode="lines", line={"dash": "dot"})  # fmt: skip
    fig.add_hline(
        y=RAMP_RULES["graduate_lower_bound"], line_dash="dash", annotation_text="graduation bar"
    )
    fig.update_layout(
        title="Approved without change, per cycle", yaxis_tickformat=".0%", height=360
    )
    fig.update_yaxes(range=[0, 1.05], autorange=False)
    st.plotly_chart(fig, key="trust_chart")
    st.dataframe(cycles.drop("override_notes"))
    download(cycles.drop("override_notes"), "trust_cycles", key="dl_trust")

    st.subheader("Suggestions")
    sugg = suggestions(cycles)
    if sugg.is_empty():
        st.write("No action type has enough evidence for a change yet.")
    for s in sugg.iter_rows(named=True):
        with st.container(border=True):
            st.markdown(f"**{s['agent']} · {s['action_type']}**: {s['suggestion']}")
            st.caption(s["evidence"])
            new_tier = 1 if s["suggestion"].startswith("graduate") else 2
            st.code(
                f"# contracts/agents/{s['agent']}.yaml, action {s['action_type']}\n"
                f"tier: {new_tier}  # {s['suggestion']} on {dt.date.today()}: {s['evidence']}",
                language="yaml",
            )
            key = f"apply_{s['agent']}_{s['action_type']}"
            if st.button("Apply as policy", key=key, disabled=role != "admin"):
                try:
                    set_policy(
                        wh,
                        agent=s["agent"],
                        action_type=s["action_type"],
                        tier=new_tier,
                        by=name,
                        reason=s["evidence"],
                    )
                    st.success("Policy changed and logged.")
                except EngineError as exc:
                    st.error(str(exc))
            if role != "admin":
                st.caption("Only admins change policy.")
