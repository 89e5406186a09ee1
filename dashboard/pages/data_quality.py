"""Data quality: the audit snapshots over time, by object and field, with the current figures."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from dashboard._state import download, warehouse
from data.snapshots import quality_history

st.title("Data quality")
with warehouse().connect() as con:
    history = quality_history(con)
if history.is_empty():
    st.info(
        "No audit yet. `revstack audit` measures completeness, duplicates, definition violations and stale deals, and stores a snapshot here."
    )
    st.stop()

scores = history.select("snapshot_id", "taken_at", "score").unique().sort("snapshot_id")
latest = history.filter(pl.col("snapshot_id") == scores["snapshot_id"].max())
c = st.columns(3)
c[0].metric(
    "Data quality score",
    f"{scores['score'][-1]:.1f}",
    f"{scores['score'][-1] - scores['score'][-2]:+.1f}" if len(scores) > 1 else None,
)
c[1].metric("Snapshots", len(scores))
c[2].metric("As of", f"{latest['as_of'][0]:%Y-%m-%d}" if latest["as_of"][0] else "–")
fig = go.Figure(
    go.Scatter(x=scores["taken_at"].to_list(), y=scores["score"].to_list(), mode="lines+markers")
)
fig.update_layout(title="Score over time", height=300)
st.plotly_chart(fig, key="dq_trend")

kind = st.selectbox("Check", sorted(latest["check_kind"].unique().to_list()), key="dq_kind")
part = latest.filter(pl.col("check_kind") == kind).sort("object_type", "item")
bar = go.Figure(
    go.Bar(
        x=part["value"].to_list(),
        y=(part["object_type"] + " · " + part["item"]).to_list(),
        orientation="h",
    )
)
bar.update_layout(
    title=f"{kind}: share per object and item (latest)",
    xaxis_tickformat=".0%",
    height=120 + 28 * len(part),
)
st.plotly_chart(bar, key="dq_bar")
st.dataframe(part.select("object_type", "item", "numerator", "denominator", "value"))
download(history, "data_quality_history", key="dl_dq")
