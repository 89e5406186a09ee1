"""Forecast: P10/P50/P90 per period and segment next to the rep commit, the period's fan,
the deals driving the range, and accuracy history against each baseline."""

from __future__ import annotations

import polars as pl
import streamlit as st

from revstack.dashboard._feedback import flag_box
from revstack.dashboard._state import chart, download, load, show_frame
from revstack.dashboard.forecast_charts import (
    accuracy_bars,
    driver_bars,
    error_history,
    fan_chart,
    reliability_chart,
    segment_ranges,
)
from revstack.metrics.forecast_store import (
    SAMPLED_WARNING,
    accuracy_table,
    backtest,
    combination,
    drivers,
    fan,
    latest_run,
    live_forecasts,
    period_errors,
    reliability_curve,
    sampled_backtest,
)

st.title("Forecast")
run = load(latest_run)
live = load(live_forecasts, run) if run else pl.DataFrame()
drive = load(drivers, run) if run else pl.DataFrame()
history = load(backtest, run) if run else pl.DataFrame()
table = load(accuracy_table, run) if run else pl.DataFrame()
errors = load(period_errors, run) if run else pl.DataFrame()
curve = load(reliability_curve, run) if run else pl.DataFrame()
mixes = load(combination, run) if run else pl.DataFrame()
sample = load(sampled_backtest, run) if run else None
if live.is_empty():
    st.info(
        "No forecast stored yet. `revstack run --agent forecast` forecasts the current month and quarter "
        "and replays the backtest it is calibrated on."
    )
    st.stop()


def money(x: float | None) -> str:
    return "–" if x is None else f"${x / 1e6:,.2f}M" if abs(x) >= 1e6 else f"${x:,.0f}"


if sample is not None:
    st.warning(SAMPLED_WARNING.format(**sample))
kind = st.radio("Period", ["quarter", "month"], horizontal=True, key="fc_kind")
part = live.filter(pl.col("period_kind") == kind)
company = part.filter(pl.col("segment_kind") == "company").row(0, named=True)
st.caption(
    f"Run {run}, snapshot {company['snapshot_at']:%Y-%m-%d %H:%M}, {kind} starting "
    f"{company['period_start']:%Y-%m-%d} (day {company['period_offset']})."
)
c = st.columns(5)
c[0].metric("P10", money(company["p10"]))
c[1].metric("P50", money(company["p50"]))
c[2].metric("P90", money(company["p90"]))
c[3].metric(
    "Rep commit",
    money(company["rep_commit"]),
    None
    if company["gap_to_commit"] is None
    else f"P50 {money(company['gap_to_commit'])} vs commit",
    help="Each rep's latest call for the period; for a rep who has not called yet, what they "
    "have won in it plus their open pipeline in it at the rates its stages have converted at.",
)
c[4].metric("Won so far", money(company["won_to_date"]))
if company.get("reps") is not None:  # rows stored before migration 022 do not say
    filled = (company["rep_commit"] or 0.0) - (company["rep_commit_calls"] or 0.0)
    st.caption(
        f"All {company['reps']} reps have called for this {kind}: the rep commit is their calls."
        if company["reps_called"] == company["reps"]
        else f"{company['reps_called']} of {company['reps']} reps have called for this {kind}: their calls "
        f"come to {money(company['rep_commit_calls'])}; the other {money(filled)} of the rep commit "
        "stands in for reps who have not called yet (their wins and their pipeline at its stages' "
        "past rates), nobody's word."
    )
flag_box("forecast", "forecast", f"{run}:{kind}:{company['period_start']}", key="flag_forecast")
st.caption(
    f"Expected {money(company['expected'])}: won so far {money(company['won_to_date'])}, open deals "
    f"{money(company['pipeline_expected'])}, deals not created yet {money(company['new_expected'])}."
)
mix = mixes.filter(pl.col("period_kind") == kind)
if len(mix):
    m = mix.row(0, named=True)
    season = m.get("season")
    if season is not None and kind == "quarter":
        st.caption(
            f"The simulation's bias includes ×{season:.2f} for this quarter of the year, learned from past "
            "quarters in the same season (the deal model sees few of each)."
        )
    if m["commit"] is None:
        st.caption(
            "No rep commit at this snapshot (the CRM holds no forecast calls): the range is the simulation's alone "
            f"(bias ×{m['sim_bias']:.2f}, range ×{m['scale']:.2f} from {m['periods']} past {kind}s)."
        )
    else:
        st.caption(
            f"The centre leans {m['weight']:.0%} on the teams' debiased commits, calls and stand-ins as above "
            f"(commit bias ×{m['commit_bias']:.2f}), "
            f"{1 - m['weight']:.0%} on the simulation (bias ×{m['sim_bias']:.2f}); range ×{m['scale']:.2f}. "
            f"Learned from {m['periods']} past {kind}s at this point of the period."
        )

seg_kind = st.selectbox("Segment", ["region", "team", "rep"], key="fc_segment")
segs = part.filter(pl.col("segment_kind") == seg_kind).sort("p50", descending=True)
shown = segs.head(40)
chart(
    st,
    segment_ranges(
        shown, f"{kind}: range per {seg_kind}" + (" (top 40 by P50)" if len(segs) > 40 else "")
    ),
    key="fc_segments",
)
show_frame(
    segs.select(
        "segment",
        "p10",
        "p50",
        "p90",
        "expected",
        "won_to_date",
        "rep_commit",
        "gap_to_commit",
        "rep_commit_calls",
        "reps_called",
        "reps",
    )
)
download(part, f"forecast_{kind}", key="dl_fc_live")

st.subheader("The period's fan")
periods = (
    sorted(
        set(
            history.filter((pl.col("period_kind") == kind) & (pl.col("method") == "agent"))[
                "period_start"
            ].to_list()
        )
        | {company["period_start"]},
        reverse=True,
    )
    if not history.is_empty()
    else [company["period_start"]]
)
chosen = st.selectbox("Period start", periods, key="fc_fan_period")
fan_rows = load(fan, kind, chosen, run)
if len(fan_rows):
    chart(
        st,
        fan_chart(fan_rows, f"{kind} starting {chosen}: the range from each snapshot"),
        key="fc_fan",
    )
    download(fan_rows, f"forecast_fan_{kind}_{chosen}", key="dl_fc_fan")

st.subheader("Deals that drive the range")
d = drive.filter(pl.col("period_kind") == kind)
if d.is_empty():
    st.info("No open deals in this period.")
else:
    chart(st, driver_bars(d, "Share of the company range's variance"), key="fc_drivers")
    show_frame(d)
    download(d, f"forecast_drivers_{kind}", key="dl_fc_drivers")

st.subheader("Accuracy history against the baselines")
if table.is_empty():
    st.info("No past period is over yet: the backtest has nothing to score.")
else:
    t = table.filter(pl.col("period_kind") == kind)
    chart(
        st,
        accuracy_bars(
            t.filter(pl.col("offset") != "all"), "mape", "MAPE by snapshot point (company)"
        ),
        key="fc_mape",
    )
    commit = t.filter((pl.col("offset") == "all") & (pl.col("method") == "rep_commit"))
    if len(commit) and commit["mape_ratio"][0] is not None:
        cr = commit.row(0, named=True)
        calls = t.filter((pl.col("offset") == "all") & (pl.col("method") == "rep_commit_submitted"))
        against_calls = (
            f" Against the calls alone, a rep who has not called counting nothing: "
            f"{calls['mape_ratio'][0]:.2f}×."
            if len(calls) and calls["mape_ratio"][0] is not None
            else ""
        )
        st.caption(
            f"Over every {kind} and snapshot point the forecast's MAPE is {cr['mape_ratio']:.2f}× the rep "
            f"commit's (90% interval {cr['ratio_low']:.2f}–{cr['ratio_high']:.2f}, resampling whole {kind}s; "
            f"a rep who has not called yet counts their wins and their pipeline at its stages' past rates).{against_calls}"
        )
    e = errors.filter(pl.col("period_kind") == kind)
    point = st.selectbox(
        "Snapshot point (days into the period)",
        sorted(e["period_offset"].unique().to_list()),
        key="fc_offset",
    )
    chart(
        st,
        error_history(
            e.filter(pl.col("period_offset") == point), f"Signed error per {kind}, day {point}"
        ),
        key="fc_errors",
    )
    agent = e.filter((pl.col("method") == "agent") & (pl.col("period_offset") == point))
    if len(agent):
        st.caption(
            f"P10–P90 held the actual in {agent['inside'].mean():.0%} of {len(agent)} {kind}s at day {point}."
        )
    show_frame(t)
    download(table, "forecast_accuracy", key="dl_fc_accuracy")
    download(errors, "forecast_errors", key="dl_fc_errors")
if not curve.is_empty():
    chart(
        st,
        reliability_chart(curve, "Deal probabilities: reliability in the backtest"),
        key="fc_reliability",
    )
    download(curve, "forecast_reliability", key="dl_fc_reliability")
