"""Chart builders for the Forecast page: a polars frame in, a plotly figure out."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

__all__ = [
    "segment_ranges",
    "fan_chart",
    "driver_bars",
    "error_history",
    "accuracy_bars",
    "reliability_chart",
]

_METHOD_COLOURS = {
    "agent": "#1f77b4",
    "rep_commit": "#d62728",
    "rep_commit_crm_fill": "#e377c2",
    "rep_commit_submitted": "#ff9896",
    "stage_weighted_crm": "#9467bd",
    "stage_weighted_history": "#8c564b",
    "seasonal_naive": "#7f7f7f",
}


def segment_ranges(df: pl.DataFrame, title: str) -> go.Figure:
    """P10–P90 bar with the P50 per segment, the rep commit and won so far as markers."""
    d = df.sort("p50")
    y = d["segment"].to_list()
    fig = go.Figure()
    fig.add_bar(
        y=y,
        x=(d["p90"] - d["p10"]).to_list(),
        base=d["p10"].to_list(),
        orientation="h",
        name="P10–P90",
        marker_color="rgba(31,119,180,0.35)",
    )
    fig.add_scatter(
        y=y,
        x=d["p50"].to_list(),
        mode="markers",
        name="P50",
        marker={"color": "#1f77b4", "size": 9},
    )
    fig.add_scatter(
        y=y,
        x=d["rep_commit"].to_list(),
        mode="markers",
        name="rep commit",
        marker={"color": "#d62728", "symbol": "x", "size": 9},
    )
    fig.add_scatter(
        y=y,
        x=d["won_to_date"].to_list(),
        mode="markers",
        name="won so far",
        marker={"color": "#2ca02c", "symbol": "line-ns-open", "size": 12},
    )
    fig.update_layout(
        title=title, height=160 + 26 * len(d), xaxis_title="won revenue", barmode="overlay"
    )
    return fig


def fan_chart(df: pl.DataFrame, title: str) -> go.Figure:
    """The range seen from each snapshot of one period, narrowing toward the actual."""
    x = df["snapshot_at"].to_list()
    fig = go.Figure()
    fig.add_scatter(
        x=x, y=df["p90"].to_list(), mode="lines", line={"width": 0}, name="P90", showlegend=False
    )
    fig.add_scatter(
        x=x,
        y=df["p10"].to_list(),
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        fillcolor="rgba(31,119,180,0.25)",
        name="P10–P90",
    )
    fig.add_scatter(
        x=x, y=df["p50"].to_list(), mode="lines+markers", name="P50", line={"color": "#1f77b4"}
    )
    fig.add_scatter(
        x=x,
        y=df["rep_commit"].to_list(),
        mode="markers",
        name="rep commit",
        marker={"color": "#d62728", "symbol": "x", "size": 10},
    )
    actual = df["actual"].drop_nulls()
    if len(actual):
        fig.add_hline(
            y=float(actual[0]), line_dash="dash", line_color="#2ca02c", annotation_text="actual"
        )
    fig.update_layout(title=title, height=360, xaxis_title="snapshot", yaxis_title="won revenue")
    return fig


def driver_bars(df: pl.DataFrame, title: str) -> go.Figure:
    d = df.sort("variance_share")
    labels = (d["opportunity_id"] + " · " + d["stage"].fill_null("?")).to_list()
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=d["variance_share"].to_list(),
            orientation="h",
            customdata=d.select("amount", "win_probability").to_numpy(),
            hovertemplate="%{y}<br>share %{x:.1%}<br>amount %{customdata[0]:,.0f}"
            "<br>p(win) %{customdata[1]:.0%}<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis_tickformat=".0%", height=140 + 24 * len(d))
    return fig


def error_history(df: pl.DataFrame, title: str) -> go.Figure:
    """Signed percentage error per period for each method (0 = exact)."""
    fig = go.Figure()
    for (method,), part in df.sort("period_start").group_by("method", maintain_order=True):
        fig.add_scatter(
            x=part["period_start"].to_list(),
            y=part["error"].to_list(),
            mode="lines+markers",
            name=method,
            line={"color": _METHOD_COLOURS.get(method)},
        )
    fig.add_hline(y=0, line_color="#444")
    fig.update_layout(title=title, yaxis_tickformat=".0%", height=340)
    return fig


def accuracy_bars(df: pl.DataFrame, metric: str, title: str) -> go.Figure:
    """One bar per method and snapshot point."""
    fig = go.Figure()
    for (method,), part in df.group_by("method", maintain_order=True):
        fig.add_bar(
            x=("day " + part["offset"]).to_list(),
            y=part[metric].to_list(),
            name=method,
            marker_color=_METHOD_COLOURS.get(method),
        )
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", height=320)
    return fig


def reliability_chart(df: pl.DataFrame, title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="perfect"
    )
    for (kind,), part in df.group_by("period_kind", maintain_order=True):
        fig.add_scatter(
            x=part["predicted"].to_list(),
            y=part["observed"].to_list(),
            mode="lines+markers",
            name=kind,
            text=part["deals"].to_list(),
            hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}<br>%{text} predictions",
        )
    fig.update_layout(
        title=title,
        xaxis_title="predicted probability",
        yaxis_title="observed share won",
        height=340,
    )
    return fig
