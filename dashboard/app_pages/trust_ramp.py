"""Trust ramp: which action types have earned autonomy, graduating them, and the contract
change each graduation stands for."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from revstack.agents.engine import EngineError, active_policy, set_policy
from revstack.dashboard._state import (
    bundle,
    chart,
    filters,
    load,
    plain,
    refresh,
    signed_in,
    table,
    warehouse,
)
from revstack.dashboard.charts import time_axis
from revstack.data.errors import ContractError
from revstack.metrics.graduation import (
    all_suggestions,
    batch_evidence,
    continuous_precision,
    demotions,
)
from revstack.metrics.overrides import implied_changes, override_patterns
from revstack.metrics.trust import (
    RAMP_RULES,
    contract_change,
    policy_as_contracts,
    trust_cycles,
)


def _export(change, key: str) -> None:
    """The change as a diff on the page, downloadable as a patch and as the whole file."""
    if not change.diff:
        st.caption("The contract already says this: no change to export.")
        return
    st.code(change.diff, language="diff")
    if change.also_affects:
        st.caption("The field grants moved also govern: " + ", ".join(change.also_affects))
    a, b = st.columns(2)
    a.download_button(
        "Download as a patch (git apply)",
        change.diff,
        key=f"{key}_patch",
        file_name=f"{change.path.stem}.patch",
        mime="text/x-diff",
        on_click="ignore",
    )
    b.download_button(
        f"Download {change.path.name} as changed",
        change.after,
        key=f"{key}_yaml",
        file_name=change.path.name,
        mime="application/yaml",
        on_click="ignore",
    )


st.title("Trust ramp")
wh = warehouse()
name, role = signed_in()
f = filters()
cycles = f.by_agent(load(trust_cycles, cycle_days=RAMP_RULES["cycle_days"]))

st.caption(
    "An action reviewed in batches graduates (tier 2 → 1) on its batches' samples: each "
    "batch's exact 95% error bound, weighted by its share of the action, below the bar, and "
    "every batch passing its own. An action reviewed only card by card graduates on "
    f"{RAMP_RULES['cycle_days']}-day cycles: at least {RAMP_RULES['min_reviewed']} reviews "
    "and a 95% Wilson lower bound of approval-without-change of at least "
    f"{RAMP_RULES['graduate_lower_bound']:.0%}. Demote when more than "
    f"{RAMP_RULES['demote_override_rate']:.0%} are overridden or rolled back, and at once "
    "when a continuous sample of a graduated action is wrong. Applying a suggestion is a "
    "policy change by a named admin, logged, and exportable as the edit to the agent's "
    "contract YAML."
)
shown = cycles.filter(pl.col("cycle_start") >= f.since) if len(cycles) else cycles
if shown.is_empty():
    st.info(
        "No decisions in this window. As reviewers approve, edit and reject, each action "
        "type builds its record here."
    )
else:
    fig = go.Figure()
    for part in shown.partition_by("agent", "action_type", maintain_order=True):
        label = f"{part['agent'][0]} · {part['action_type'][0]}"
        x = part["cycle_start"].to_list()
        fig.add_scatter(x=x, y=part["approval_rate"].to_list(), name=label, mode="lines+markers")
        fig.add_scatter(
            x=x,
            y=part["approval_lower_bound"].to_list(),
            name=f"{label} (95% lower bound)",
            mode="lines+markers",
            line={"dash": "dot"},
            marker={"size": 14, "symbol": "line-ew-open"},
        )
    fig.add_hline(
        y=RAMP_RULES["graduate_lower_bound"], line_dash="dash", annotation_text="graduation bar"
    )
    fig.update_layout(
        title="Approved without change, per cycle",
        yaxis_tickformat=".0%",
        height=360,
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_yaxes(range=[0, 1.05], autorange=False)
    time_axis(fig, shown["cycle_start"])
    chart(st, fig, key="trust_chart")
    table(shown.drop("override_notes"), "trust_cycles", key="dl_trust")

st.subheader("Evidence from batches")
evidence = f.by_agent(load(batch_evidence))
if evidence.is_empty():
    st.caption(
        "No batch has its sample decided yet. On Approvals, batch the queue and decide a "
        "batch's sample: each batch is a stratum, weighted by its share of the action."
    )
else:
    table(evidence, "batch_evidence", key="dl_batch_evidence")
    st.caption(
        "right_share: approved unchanged, estimated batch by batch and weighted by each "
        "batch's share of the action's proposals (never pooled raw). error_upper_bound: "
        "each batch's exact 95% bound, weighted the same way; below the bar, the action "
        "may graduate."
    )

st.subheader("Overrides: what people corrected, and why")
patterns = load(override_patterns)
patterns = f.by_agent(patterns) if not patterns.is_empty() else patterns
if patterns.is_empty():
    st.caption(
        "No edits or rejections yet. A reviewer's reason code (on each Approvals card) "
        "groups them here by action, field and reason."
    )
else:
    table(patterns, "override_patterns", key="dl_override_patterns", rows=30)
for implied in load(implied_changes):
    if not f.agents or implied["agent"] in f.agents:
        st.info(
            f"{implied['agent']} · {implied['action_type']}: implied {implied['change']} "
            f"{plain(implied['to'])}: {plain(implied['why'])}"
        )

st.subheader("Suggestions")
sugg = f.by_agent(load(all_suggestions, cycle_days=RAMP_RULES["cycle_days"]))
if sugg.is_empty():
    st.write("No action type has enough evidence for a change yet.")
contracts = bundle().contracts
for s in sugg.iter_rows(named=True):
    with st.container(border=True):
        # agent, action and the evidence's words come from contracts and counts, not data
        st.markdown(f"**{s['agent']} · {s['action_type']}**: {s['suggestion']}")
        st.caption(f"{s['evidence']} (from {s['source']})")
        new_tier = 1 if s["suggestion"].startswith("graduate") else 2
        key = f"apply_{s['agent']}_{s['action_type']}"
        contract = contracts.get(s["agent"])
        action = (
            next((a for a in contract.actions if a.name == s["action_type"]), None)
            if contract
            else None
        )
        if action is not None:
            note = f"{s['suggestion']} on {dt.date.today()}: {s['evidence']}"
            with st.expander("The contract change this stands for"):
                try:
                    _export(
                        contract_change(
                            s["agent"],
                            s["action_type"],
                            tier=new_tier,
                            min_confidence=s["min_confidence"],
                            note=note,
                        ),
                        key,
                    )
                except ContractError as exc:
                    st.error(plain(exc))
        if st.button("Apply as policy", key=key, disabled=role != "admin"):
            try:
                set_policy(
                    wh,
                    agent=s["agent"],
                    action_type=s["action_type"],
                    tier=new_tier,
                    min_confidence=s["min_confidence"],
                    by=name,
                    reason=s["evidence"],
                    contract_tier=action.tier if action else None,
                )
                refresh()
                st.success(f"Policy changed by {plain(name)} and logged; export it below.")
            except EngineError as exc:
                st.error(plain(exc))
        if role != "admin":
            st.caption("Only admins change policy.")

st.subheader("After graduation: continuous sampling")
sampled = f.by_agent(load(continuous_precision))
if sampled.is_empty():
    st.caption(
        "Once an action graduates, 2% of its proposals still go to a reviewer before they "
        "apply; a wrong one puts the action back to tier 2, logged with the reason."
    )
else:
    table(sampled, "continuous_samples", key="dl_continuous")
down = f.by_agent(load(demotions))
if not down.is_empty():
    st.markdown("**Demotions**")
    table(down, "demotions", key="dl_demotions")

st.subheader("Policy in force")
policy = f.by_agent(load(active_policy))
if policy.is_empty():
    st.caption("No overrides: every action runs at its contract's tier and threshold.")
else:
    table(policy, "policy_overrides", key="dl_policy")
    st.caption(
        "Each override, written as the edit to the agent's contract that would make it "
        "permanent (review it, commit it, then the override can be retired):"
    )
    try:
        for change in policy_as_contracts(policy):
            st.markdown(f"**{change.path.name}**")
            _export(change, f"policy_{change.path.stem}")
    except ContractError as exc:
        st.error(plain(exc))
