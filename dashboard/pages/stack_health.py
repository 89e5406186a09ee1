"""Stack health: is the stack healthy, what did it do, where is it getting worse?"""

from __future__ import annotations

import streamlit as st

from dashboard._state import download, warehouse
from dashboard.charts import outcome_bars, override_trend
from metrics.engine import action_outcomes, run_stats
from metrics.health import records_touched, weekly_activity

st.title("Stack health")
wh = warehouse()
with wh.connect() as con:
    outcomes = action_outcomes(con)
    runs = run_stats(con)
    weekly = weekly_activity(con)
    touched = records_touched(con)

if outcomes.is_empty() and runs.is_empty():
    st.info(
        "No agent has run yet. `revstack run` processes pending events; this page fills as agents act."
    )
else:
    cols = st.columns(4)
    cols[0].metric("Proposals", int(outcomes["proposals"].sum()))
    cols[1].metric("Applied automatically", int(outcomes["auto_applied"].sum()))
    reviewed = int(outcomes["reviewed"].sum())
    overridden = int((outcomes["edited"] + outcomes["rejected"]).sum())
    cols[2].metric("Override rate", f"{overridden / reviewed:.0%}" if reviewed else "–")
    cols[3].metric("Run error rate", f"{runs['failed'].sum() / max(runs['runs'].sum(), 1):.1%}")
    st.subheader("Agents")
    tiles = st.columns(max(len(runs), 1))
    for tile, r in zip(tiles, runs.iter_rows(named=True), strict=False):
        tile.metric(r["agent"], f"{r['runs']} runs")
        tile.caption(
            f"{r['failed']} failed · last run {r['last_run']:%Y-%m-%d %H:%M} · p95 {r['p95_seconds']:.1f}s"
        )
    st.plotly_chart(outcome_bars(outcomes), key="outcomes")
    if not weekly.is_empty():
        st.plotly_chart(override_trend(weekly), key="override_trend")
    st.subheader("CRM records touched by an agent in the last 30 days")
    st.dataframe(touched)
    download(outcomes, "action_outcomes", key="dl_outcomes")
