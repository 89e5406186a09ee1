"""Stack health: is the stack healthy, what did it do, where is it getting worse?"""

from __future__ import annotations

import polars as pl
import streamlit as st

from revstack.agents.registry import registry_rows
from revstack.dashboard._feedback import feedback_panel
from revstack.dashboard._state import (
    chart,
    column_config,
    download,
    filters,
    load,
    plain,
    show_frame,
    table,
)
from revstack.dashboard.charts import bars, lines, outcome_bars
from revstack.metrics.effort import weekly_hours
from revstack.metrics.engine import action_outcomes
from revstack.metrics.feedback import feedback_by_agent
from revstack.metrics.health import (
    agent_uptime,
    records_touched,
    score_trend,
    weekly_activity,
    weekly_runs,
)
from revstack.metrics.reviewers import reviewer_accuracy
from revstack.metrics.weekly_review import agent_quality

st.title("Stack health")
f = filters()
since = f.since
outcomes = f.by_agent(load(action_outcomes, since=since))
weekly = f.by_agent(load(weekly_activity, since=since))
runs = f.by_agent(load(weekly_runs, since=since))
uptime = load(agent_uptime)
hours = f.by_agent(load(weekly_hours, since=since))
touched = load(records_touched)
scores = load(score_trend)
st.caption(f"Showing {plain(f.describe())}. Filters in the sidebar apply on every page.")

# -- headline figures -------------------------------------------------------------------
c = st.columns(5)
last_week = hours.filter(pl.col("week") == hours["week"].max()) if len(hours) else hours
c[0].metric(
    "Hours automated (week)",
    f"{last_week['hours_automated'].sum():,.1f}",
    help="The latest week's task volume x documented manual minutes per task "
    "(contracts/effort.yaml), net of the reviewer's minutes on what a person approved.",
)
c[1].metric(
    "Hours automated (all)",
    f"{hours['hours_automated'].sum():,.1f}",
    help="Over the whole time window chosen in the sidebar",
)
reviewed = int(outcomes["reviewed"].sum()) if len(outcomes) else 0
overridden = int((outcomes["edited"] + outcomes["rejected"]).sum()) if len(outcomes) else 0
c[2].metric(
    "Override rate",
    f"{overridden / reviewed:.0%}" if reviewed else "–",
    help="(edited + rejected) / reviewed",
)
n_runs, n_failed = (
    int(runs["runs"].sum()) if len(runs) else 0,
    int(runs["failed"].sum()) if len(runs) else 0,
)
c[3].metric(
    "Run error rate",
    f"{n_failed / n_runs:.1%}" if n_runs else "–",
    help=f"{n_failed} of {n_runs} runs failed",
)
c[4].metric(
    "Data quality score",
    f"{scores['score'][-1]:.1f}" if len(scores) else "–",
    f"{scores['score'][-1] - scores['score'][-2]:+.1f}" if len(scores) > 1 else None,
)

# -- one tile per agent -------------------------------------------------------------------
st.subheader("Precision and recall, every agent")
quality = f.by_agent(load(agent_quality))
if quality.is_empty():
    st.caption("No agent has proposed anything yet.")
else:
    config = column_config(quality.drop("weekly_precision"))
    config["weekly_precision"] = st.column_config.LineChartColumn(
        "precision, last 8 weeks", y_min=0.0, y_max=1.0
    )
    st.dataframe(quality, hide_index=True, column_config=config, key="health_quality")
    st.caption(
        "Precision against the generator's truth where it can judge the proposals, else "
        "against people (approved unchanged, or a task marked done, of what they judged "
        "one by one); recall only where truth says what should have been found."
    )
    download(quality, "agent_quality", key="dl_agent_quality")

st.subheader("Reviewers")
people_quality = load(reviewer_accuracy)
if people_quality.is_empty():
    st.caption("Nobody has decided a proposal one by one yet.")
else:
    show_frame(people_quality, key="health_reviewers")
    stamps = people_quality.filter(pl.col("rubber_stamp"))["reviewer"].to_list()
    if stamps:
        st.warning(
            f"{plain(', '.join(stamps))} approved nearly everything while truth says at least a tenth "
            "of it was wrong: their approvals are a signal about the reviewer, not evidence "
            "about the agent."
        )
    st.caption(
        "Where the generator's truth can judge a proposal, a reviewer's decision agrees when "
        "it approves a right one or overrides a wrong one. On a real CRM only the counts "
        "and the approval rate remain."
    )

st.subheader("Agents")
registry = {r["agent"]: r for r in load(registry_rows)}
up = {r["agent"]: r for r in uptime.iter_rows(named=True)}
names = [n for n in sorted(set(registry) | set(up)) if not f.agents or n in f.agents]
per_row = 5
for start in range(0, len(names), per_row):
    for tile, agent in zip(st.columns(per_row), names[start : start + per_row], strict=False):
        reg, u = registry.get(agent), up.get(agent)
        if reg is not None and not reg["implemented"]:
            status = ":gray-badge[not built yet]"
        elif u is None:
            status = ":gray-badge[not run yet]"
        elif u["last_status"] == "succeeded":
            status = ":green-badge[healthy]"
        else:
            status = ":red-badge[failing]"
        with tile.container(border=True):
            st.markdown(f"**{agent}**  \n{status}")
            mode = reg["mode"] if reg else "-"
            st.caption(f"mode: {mode}" + (f" · uptime {u['uptime']:.0%}" if u else ""))
            if u:
                st.caption(f"last run {u['last_run']:%Y-%m-%d %H:%M}")
                if u["last_status"] != "succeeded" and u["last_error"]:
                    st.caption(f"error: {plain(u['last_error'][:120])}")

if outcomes.is_empty() and runs.is_empty():
    st.info(
        "No agent has run in this window. `revstack run` processes pending events; "
        "this page fills as agents act."
    )
else:
    left, right = st.columns(2)
    if not hours.is_empty():
        chart(
            left,
            bars(
                hours,
                "week",
                "hours_automated",
                by="agent",
                title="Hours of manual work automated per week",
            ),
            key="hours_chart",
        )
        undocumented = int(hours["undocumented_actions"].sum())
        if undocumented:
            left.caption(
                f"{undocumented:,} actions have no documented minutes in contracts/effort.yaml and count 0."
            )
    trend = weekly.filter(pl.col("reviewed") > 0)
    if trend.is_empty():
        right.info("No reviewed proposals yet, so no override rate to chart.")
    else:
        chart(
            right,
            lines(
                trend,
                "week",
                "override_rate",
                by="agent",
                percent=True,
                title="Override rate by week (edited + rejected / reviewed)",
            ),
            key="override_trend",
        )
    if outcomes.is_empty():
        st.info(
            f"Agents ran {n_runs} time(s) in this window and proposed nothing: the data gave "
            "them nothing to act on (on an imported export without enrichment data, hygiene "
            "has no provider to compare with)."
        )
    else:
        chart(st, outcome_bars(outcomes), key="outcomes")
        download(outcomes, "action_outcomes", key="dl_outcomes")

left, right = st.columns(2)
if not runs.is_empty():
    chart(
        left,
        lines(runs, "week", "error_rate", by="agent", percent=True, title="Run error rate by week"),
        key="error_trend",
    )
if len(scores):
    chart(
        right,
        lines(scores, "taken_at", "score", title="Data quality score per audit"),
        key="dq_trend",
    )
else:
    right.caption("No data-quality audit stored yet: `revstack audit` adds one to the trend.")

st.subheader("Feedback from people")
flagged = f.by_agent(load(feedback_by_agent))
if not flagged.is_empty():
    table(flagged, "feedback_by_agent", key="dl_feedback_by_agent")
feedback_panel(key="health_feedback")

st.subheader("CRM records touched by an agent in the last 30 days")
cols = st.columns(max(len(touched), 1))
for col, r in zip(cols, touched.iter_rows(named=True), strict=False):
    col.metric(
        r["object_type"], f"{r['share']:.1%}", help=f"{r['touched_30d']:,} of {r['records']:,}"
    )
table(touched, "records_touched", key="dl_touched")
with st.expander("Hours automated per week and agent"):
    table(hours, "hours_automated", key="dl_hours")
