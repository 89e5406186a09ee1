"""Agents: one agent at a time, what the engine recorded and how well it does, per week."""

from __future__ import annotations

from typing import cast

import polars as pl
import streamlit as st

from revstack.dashboard._feedback import feedback_panel
from revstack.dashboard._measures import show_measures
from revstack.dashboard._state import bundle, chart, filters, keep_choice, load, plain, table
from revstack.dashboard.charts import bars, lines
from revstack.metrics.activity import agent_measures, agents_seen, trigger_latency
from revstack.metrics.engine import action_outcomes
from revstack.metrics.health import agent_uptime, weekly_activity

st.title("Agents")
f = filters()
names = list(f.agents) or sorted(set(bundle().contracts) | set(load(agents_seen)))
agent = st.selectbox("Agent", names, **keep_choice("agents_page_agent", names))
contract = bundle().contracts.get(agent)
if contract is not None:
    st.caption(f"{contract.description}  \nOwner {contract.owner} · contract {contract.version}.")

since = f.since
weekly = load(weekly_activity, since=since).filter(pl.col("agent") == agent)
outcomes = load(action_outcomes, since=since).filter(pl.col("agent") == agent)
latency = load(trigger_latency, since=since).filter(pl.col("agent") == agent)
up = load(agent_uptime).filter(pl.col("agent") == agent)

if outcomes.is_empty() and up.is_empty():
    st.info(
        f"{agent} has not proposed anything in this window ({f.window.lower()})."
        + (
            ""
            if contract is None or agent in load(agents_seen)
            else " It has never run: `revstack run`."
        )
    )
else:
    # -- tier 1: what the engine recorded --------------------------------------------------
    reviewed = int(outcomes["reviewed"].sum())
    overridden = int((outcomes["edited"] + outcomes["rejected"]).sum())
    overall = load(trigger_latency, since=since, by_week=False).filter(pl.col("agent") == agent)

    def _median(automatic: bool) -> str:
        part = overall.filter(pl.col("automatic") == automatic)
        if part.is_empty():
            return "–"
        secs = part["median_seconds"][0]
        return f"{secs / 3600:.1f} h" if secs >= 3600 else f"{secs:.0f} s"

    c = st.columns(6)
    c[0].metric("Proposals", f"{int(outcomes['proposals'].sum()):,}")
    c[1].metric("Applied automatically", f"{int(outcomes['auto_applied'].sum()):,}")
    c[2].metric("Reviewed", f"{reviewed:,}")
    c[3].metric(
        "Override rate",
        f"{overridden / reviewed:.0%}" if reviewed else "–",
        help="(edited + rejected) / reviewed",
    )
    c[4].metric(
        "Latency, automatic",
        _median(True),
        help="Trigger to action: median time from the event that woke the run to the engine's write",
    )
    c[5].metric(
        "Latency, decided",
        _median(False),
        help="Trigger to action: median time from the event to a person's approval",
    )

    st.subheader("Per week")
    if not weekly.is_empty():
        volume = weekly.unpivot(
            index="week",
            on=["auto_applied", "approved_unchanged", "edited", "rejected", "pending", "shadow"],
            variable_name="outcome",
            value_name="count",
        )
        left, right = st.columns(2)
        chart(
            left,
            bars(volume, "week", "count", by="outcome", title="Action volume by outcome"),
            key="agent_volume",
        )
        rates = weekly.filter(pl.col("reviewed") > 0).unpivot(
            index="week",
            on=["override_rate", "agreement"],
            variable_name="measure",
            value_name="rate",
        )
        if rates.is_empty():
            right.info("No reviewed proposals yet: no override rate or reviewer agreement.")
        else:
            chart(
                right,
                lines(
                    rates,
                    "week",
                    "rate",
                    by="measure",
                    percent=True,
                    title="Override rate and reviewer agreement (approved unchanged)",
                ),
                key="agent_rates",
            )
    if not latency.is_empty():
        # seconds, minutes or hours, whichever the slowest week reads best in
        top = cast(float, latency["median_seconds"].max())
        unit, div = (
            ("seconds", 1) if top < 120 else ("minutes", 60) if top < 7200 else ("hours", 3600)
        )
        lat = latency.with_columns(
            path=pl.when(pl.col("automatic"))
            .then(pl.lit("automatic"))
            .otherwise(pl.lit("decided by a person")),
            median=pl.col("median_seconds") / div,
        )
        chart(
            st,
            lines(
                lat, "week", "median", by="path", title=f"Trigger-to-action latency, median {unit}"
            ),
            key="agent_latency",
        )
    table(weekly, f"{agent}_weekly", key="dl_agent_weekly")
    with st.expander("Per action type"):
        table(outcomes, f"{agent}_actions", key="dl_agent_actions")

st.subheader("Feedback from people")
feedback_panel(agent, key="agent_feedback")

# -- tier 2: the agent's own measures against truth and reviewers --------------------------
st.subheader("Measures against truth and reviewers")
try:
    measures = load(agent_measures, agent)
except Exception as exc:
    st.warning(f"{agent}'s measures could not be computed: {plain(exc)}")
else:
    if measures is None:
        st.info(
            f"No measures against truth yet for {agent}. An agent adds them by registering a "
            "report in metrics/agents.py (REPORTS); they appear here without a page change."
        )
    elif not measures:
        st.info(f"{agent}'s report has nothing to measure in this warehouse yet.")
    else:
        show_measures(measures, path=agent)
