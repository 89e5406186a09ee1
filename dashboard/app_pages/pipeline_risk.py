"""Pipeline risk: what the pipeline health agent flagged, with reasons and evidence,
filtered by manager, team and signal; and how precise each signal was in the backtest."""

from __future__ import annotations

import json

import polars as pl
import streamlit as st

from revstack.dashboard._feedback import flag_box
from revstack.dashboard._state import chart, download, load, plain, show_frame
from revstack.dashboard.risk_charts import quality_bars, signal_bars
from revstack.metrics.pipeline import stored_quality
from revstack.metrics.risk_flags import deal_flags, flag_runs, flags, signal_counts

st.title("Pipeline risk")
runs = load(flag_runs)
quality = load(stored_quality)
if runs.is_empty():
    st.info(
        "No flags yet. `revstack run --agent pipeline_health` scores every open deal; "
        "`revstack digest --out DIR` writes the managers' weekly digests."
    )
else:
    labels = [
        f"{r['run_id']} · {r['flagged_at']:%Y-%m-%d} · {r['mode'] or '-'}"
        for r in runs.iter_rows(named=True)
    ]
    pick = st.selectbox("Run", labels, key="risk_run")
    run_id = runs["run_id"][labels.index(pick)]
    rows = load(flags, run_id)
    f = st.columns(3)
    managers = f[0].multiselect(
        "Manager", sorted(rows["manager"].drop_nulls().unique().to_list()), key="risk_manager"
    )
    teams = f[1].multiselect(
        "Team", sorted(rows["team"].drop_nulls().unique().to_list()), key="risk_team"
    )
    signals = f[2].multiselect(
        "Signal", sorted(rows["signal"].unique().to_list()), key="risk_signal"
    )
    shown = rows
    if managers:
        shown = shown.filter(pl.col("manager").is_in(managers))
    if teams:
        shown = shown.filter(pl.col("team").is_in(teams))
    if signals:  # a deal shows when any chosen signal fired; all its flags stay visible
        hit = shown.filter(pl.col("signal").is_in(signals))["opportunity_id"].unique()
        shown = shown.filter(pl.col("opportunity_id").is_in(hit.implode()))
    deals = deal_flags(shown)
    m = st.columns(4)
    m[0].metric("Flagged deals", f"{len(deals):,}")
    m[1].metric("Flags", f"{len(shown):,}")
    m[2].metric("Flagged amount", f"${deals['amount'].sum():,.0f}")
    m[3].metric("Mode", str(runs["mode"][labels.index(pick)] or "-"))
    if not shown.is_empty():
        chart(st, signal_bars(signal_counts(shown)), key="risk_signals")
    table = deals.with_columns(
        signals=pl.col("signals").list.join(", "), reasons=pl.col("reasons").list.join(" | ")
    )
    show_frame(table.drop("manager_id", "manager_email"), key="risk_table")
    download(table, "pipeline_risk_flags", key="dl_risk_flags")
    if len(deals):
        names = dict(
            zip(deals["opportunity_id"], deals["deal"], strict=True)
        )  # one lookup per option
        deal = st.selectbox(
            "Deal",
            deals["opportunity_id"].to_list(),
            key="risk_deal",
            format_func=lambda o: f"{o} · {names[o]}",
        )
        for r in shown.filter(opportunity_id=deal).iter_rows(named=True):
            with st.expander(f"{plain(r['signal'])}: {plain(r['reason'])}"):
                st.json(json.loads(r["evidence"]) if r["evidence"] else {})
                ref = f"{run_id}:{deal}:{r['signal']}"
                flag_box("pipeline_health", "risk_flag", ref, key=f"flag_{ref}")

st.subheader("Precision and recall per signal")
if quality.is_empty():
    st.info(
        "No backtest stored yet. `revstack backtest` replays past weeks against what "
        "really happened (a generated company's truth) and stores the figures here."
    )
else:
    st.caption(
        f"Latest backtest, measured {quality['measured_at'][0]:%Y-%m-%d %H:%M} UTC: a deal "
        "counts as a hit when it slipped out of its quarter, reached the quarter's end "
        "still open, or was lost within 4 weeks of the flag."
    )
    chart(st, quality_bars(quality), key="risk_quality")
    show_frame(quality.drop("measured_at"), key="risk_quality_table")
    download(quality, "pipeline_signal_quality", key="dl_risk_quality")
