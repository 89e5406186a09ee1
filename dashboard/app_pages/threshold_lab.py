"""Threshold lab: move an action's min_confidence and see volume, queue and errors move."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from revstack.agents.engine import Calibration, EngineError, set_policy
from revstack.dashboard._state import (
    bundle,
    chart,
    download,
    filters,
    load,
    plain,
    refresh,
    signed_in,
    table,
    warehouse,
)
from revstack.data.errors import ContractError
from revstack.metrics.calibration import calibration_maps, confidence_reliability
from revstack.metrics.engine import action_outcomes
from revstack.metrics.overrides import implied_changes, override_patterns
from revstack.metrics.thresholds import labelled_proposals, threshold_curve
from revstack.metrics.trust import contract_change

st.title("Threshold lab")
wh = warehouse()
name, role = signed_in()
f = filters(window=False)  # the curve uses every past decision: more evidence, not less
outcomes = f.by_agent(load(action_outcomes))
if outcomes.is_empty():
    st.info("No proposals yet (for the agents chosen in the sidebar): run the agents first.")
    st.stop()
choices = (outcomes["agent"] + " · " + outcomes["action_type"]).to_list()
# Open on the action people have judged most: where a threshold has evidence to move on.
most = int(outcomes["reviewed"].arg_max() or 0) if outcomes["reviewed"].sum() else 0
pick = st.selectbox("Action type", choices, index=most, key="lab_action")
agent, action = pick.split(" · ")
labelled = load(labelled_proposals, agent, action)
curve = threshold_curve(labelled)
threshold = st.slider("min_confidence", 0.0, 1.0, 0.9, 0.01, key="lab_threshold")
at = curve.filter(pl.col("threshold") == round(threshold, 2)).row(0, named=True)
c = st.columns(3)
c[0].metric("Would run on their own", f"{at['auto']:,}")
c[1].metric("Would wait for a reviewer", f"{at['queue']:,}")
rate = at["expected_error_rate"]
c[2].metric("Expected error rate of automatic runs", "–" if rate is None else f"{rate:.1%}")
st.caption(
    f"{len(labelled)} proposals; {int(labelled['correct'].is_not_null().sum())} judged by people (approved = right; edited, rejected or rolled back = wrong)."
)

fig = go.Figure()
fig.add_scatter(x=curve["threshold"].to_list(), y=curve["auto"].to_list(), name="automatic")
fig.add_scatter(x=curve["threshold"].to_list(), y=curve["queue"].to_list(), name="review queue")
fig.add_scatter(
    x=curve["threshold"].to_list(),
    y=curve["expected_error_rate"].to_list(),
    name="expected error rate",
    yaxis="y2",
)
fig.add_vline(x=threshold, line_dash="dash")
fig.update_layout(
    title="Moving the threshold: what runs on its own, what waits, how often it would be wrong",
    height=380,
    margin={"l": 10, "r": 10, "t": 50, "b": 10},
    legend={"orientation": "h", "yanchor": "top", "y": -0.15},
    xaxis={"title": "min_confidence"},
    yaxis={"title": "proposals", "rangemode": "tozero"},
    yaxis2={
        "title": "error rate",
        "overlaying": "y",
        "side": "right",
        "tickformat": ".0%",
        "range": [0, 1],
        "showgrid": False,
        "tickmode": "linear",
        "dtick": 0.25,
    },
)
implied = [c for c in load(implied_changes) if (c["agent"], c["action_type"]) == (agent, action)]
for found in implied:
    if found["change"] == "min_confidence":
        fig.add_vline(
            x=found["to"],
            line_dash="dot",
            line_color="firebrick",
            annotation_text="the overrides' threshold",
        )
chart(st, fig, key="lab_chart")
download(curve, "threshold_curve", key="dl_curve")

st.subheader("Does the confidence mean what it says?")


def _mine(df: pl.DataFrame) -> pl.DataFrame:
    if df.is_empty():
        return df
    return df.filter((pl.col("agent") == agent) & (pl.col("action_type") == action))


mine_rel = _mine(load(confidence_reliability))
raw_rel = _mine(load(confidence_reliability, score="raw_confidence"))
fit = _mine(load(calibration_maps))
engine_map = (
    None
    if fit.is_empty()
    else Calibration(action, *fit.select("judged", "judged_right", "intercept", "slope").row(0))
)
if mine_rel.is_empty():
    st.caption(
        "Nothing of this action has been judged yet, by truth or by people one by one: "
        "no reliability to show."
    )
else:
    rel = go.Figure()
    rel.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dot"}
    )
    rel.add_scatter(
        x=mine_rel["mean_confidence"].to_list(),
        y=mine_rel["observed"].to_list(),
        mode="markers",
        name="judged",
        marker={"size": [max(6, min(30, n**0.5 * 2)) for n in mine_rel["judged"].to_list()]},
        error_y={
            "type": "data",
            "symmetric": False,
            "array": (mine_rel["observed_high"] - mine_rel["observed"]).to_list(),
            "arrayminus": (mine_rel["observed"] - mine_rel["observed_low"]).to_list(),
        },
        text=[
            f"{n:,} judged ({j})"
            for n, j in zip(mine_rel["judged"], mine_rel["judge"], strict=True)
        ],
    )
    if engine_map is not None:
        rel.add_scatter(
            x=raw_rel["mean_confidence"].to_list(),
            y=raw_rel["observed"].to_list(),
            mode="markers",
            name="judged, by the agent's own score",
            marker={"symbol": "x", "size": 9},
        )
        grid = np.linspace(0.005, 0.995, 100)
        rel.add_scatter(
            x=grid.tolist(), y=engine_map(grid).tolist(), mode="lines", name="the engine's map"
        )
    rel.update_layout(
        title="Confidence against the share that was right (95% interval)",
        height=360,
        xaxis={"title": "confidence", "range": [0, 1.02], "tickformat": ".0%"},
        yaxis={"title": "right", "range": [0, 1.05], "tickformat": ".0%"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    chart(st, rel, key="lab_reliability")
    used = int(mine_rel["judged"].sum())
    right = int(mine_rel["right"].sum())
    st.caption(
        f"{used:,} judged ({', '.join(sorted(set(mine_rel['judge'])))}): {right / used:.1%} right "
        f"at a mean confidence of {float((mine_rel['mean_confidence'] * mine_rel['judged']).sum()) / used:.1%}. "
        "Points on the diagonal mean the confidence can be read as a probability; one point "
        "means the agent gives this action one confidence, and a threshold cannot tell its "
        "proposals apart."
    )
    if engine_map is not None:
        half, ninety = engine_map(np.array([0.5, 0.9]))
        st.caption(
            f"The engine calibrates this action's confidence on {engine_map.judged:,} proposals "
            f"people decided one by one ({engine_map.judged_right:,} approved as proposed): an "
            f"agent score of 50% now reads {half:.0%}, 90% reads {ninety:.0%}. Routing and "
            "thresholds use the calibrated confidence; the crosses are the same judgements binned by the agent's own score."
        )

st.subheader("What people overrode, and why")
patterns = load(override_patterns, agent)
mine = (
    patterns.filter((pl.col("agent") == agent) & (pl.col("action_type") == action))
    if not patterns.is_empty()
    else patterns
)
if mine.is_empty():
    st.caption("No edits or rejections of this action yet.")
else:
    table(mine.drop("agent", "action_type"), f"overrides_{action}", key="dl_lab_overrides")
for found in implied:
    st.info(f"Implied {found['change']} {plain(found['to'])}: {plain(found['why'])}")

reason = st.text_input("Why (saved with the proposed policy)", key="lab_reason")
if st.button("Save as policy", key="lab_save", disabled=role != "admin" or not reason):
    try:
        set_policy(
            wh,
            agent=agent,
            action_type=action,
            min_confidence=float(threshold),
            by=name,
            reason=reason,
        )
        refresh()
        st.success(f"min_confidence {threshold:.2f} for {pick} saved and logged.")
    except EngineError as exc:
        st.error(plain(exc))
if role != "admin":
    st.caption("Only admins change policy.")
contract = bundle().contracts.get(agent)
if contract is not None and any(a.name == action for a in contract.actions):
    with st.expander("The contract change this threshold stands for"):
        try:
            change = contract_change(
                agent,
                action,
                min_confidence=round(float(threshold), 2),
                note=f"threshold lab: {reason or 'proposed'}",
            )
        except ContractError as exc:
            st.error(plain(exc))
        else:
            if change.diff:
                st.code(change.diff, language="diff")
                st.download_button(
                    "Download as a patch (git apply)",
                    change.diff,
                    file_name=f"{agent}.patch",
                    key="lab_patch",
                    on_click="ignore",
                )
            else:
                st.caption("The contract already says this.")
