"""Chart builders: a polars frame in, a plotly figure out. No Streamlit here."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

__all__ = ["override_trend", "outcome_bars"]


def override_trend(weekly: pl.DataFrame) -> go.Figure:
    fig = go.Figure()
    for agent, part in weekly.group_by("agent", maintain_order=True):
        fig.add_scatter(
            x=part["week"].to_list(),
            y=part["override_rate"].to_list(),
            name=agent[0],
            mode="lines+markers",
        )
    fig.update_layout(
        title="Override rate by week (edited + rejected / reviewed)",
        yaxis_tickformat=".0%",
        height=320,
    )
    return fig


def outcome_bars(outcomes: pl.DataFrame) -> go.Figure:
    kinds = [
        "auto_applied",
        "approved_unchanged",
        "edited",
        "rejected",
        "stale",
        "blocked",
        "pending",
        "tasks",
        "shadow",
    ]
    labels = (outcomes["agent"] + " · " + outcomes["action_type"]).to_list()
    fig = go.Figure()
    for k in kinds:
        fig.add_bar(y=labels, x=outcomes[k].to_list(), name=k.replace("_", " "), orientation="h")
    fig.update_layout(
        barmode="stack", title="What happened to each action type", height=120 + 40 * len(labels)
    )
    return fig
