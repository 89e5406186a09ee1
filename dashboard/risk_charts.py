"""Plotly figures for the Pipeline risk page (data in, figure out; no reads)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

__all__ = ["signal_bars", "quality_bars"]


def signal_bars(counts: pl.DataFrame) -> go.Figure:
    """Flagged deals per signal (``metrics.risk_flags.signal_counts``)."""
    c = counts.sort("deals")
    fig = go.Figure(
        go.Bar(
            x=c["deals"].to_list(),
            y=c["signal"].to_list(),
            orientation="h",
            customdata=c["amount"].to_list(),
            hovertemplate="%{y}: %{x} deals, $%{customdata:,.0f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Flagged deals per signal",
        height=120 + 30 * len(c),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def quality_bars(quality: pl.DataFrame) -> go.Figure:
    """Precision, recall and precision at the alert budget per signal, with the base rate."""
    q = quality.sort("precision_at_k", nulls_last=False)
    fig = go.Figure()
    for col, name in (
        ("precision", "precision"),
        ("recall", "recall"),
        ("precision_at_k", "precision@k (5 per manager-week)"),
    ):
        fig.add_trace(
            go.Bar(
                x=q[col].fill_null(0).to_list(), y=q["signal"].to_list(), orientation="h", name=name
            )
        )
    if len(q) and q["base_rate"][0] is not None:
        fig.add_vline(
            x=float(q["base_rate"][0]),
            line_dash="dot",
            annotation_text=f"base rate {q['base_rate'][0]:.0%}",
        )
    fig.update_layout(
        title="Backtest: how often each signal was right",
        barmode="group",
        xaxis_tickformat=".0%",
        height=160 + 60 * len(q),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig
