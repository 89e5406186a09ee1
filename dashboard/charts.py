"""Chart builders: a polars frame in, a plotly figure out. No Streamlit here."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

__all__ = ["lines", "bars", "outcome_bars", "horizontal_bars", "OUTCOME_KINDS"]

OUTCOME_KINDS = [
    "auto_applied", "approved_unchanged", "edited", "rejected", "stale", "blocked", "pending",
    "tasks", "shadow",
]  # fmt: skip


def _layout(fig: go.Figure, title: str, *, percent: bool, height: int) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.2}, yaxis_tickformat=".0%" if percent else None,
    )  # fmt: skip
    if percent:
        fig.update_yaxes(rangemode="tozero")
    return fig


def lines(
    df: pl.DataFrame, x: str, y: str, *, by: str | None = None, title: str = "",
    percent: bool = False, height: int = 320,
) -> go.Figure:  # fmt: skip
    """One line per value of ``by`` (or a single line), markers on each point."""
    fig = go.Figure()
    groups = df.partition_by(by, maintain_order=True) if by else [df]
    for part in groups:
        part = part.sort(x)
        fig.add_scatter(
            x=part[x].to_list(), y=part[y].to_list(), mode="lines+markers",
            name=str(part[by][0]) if by else y.replace("_", " "),
        )  # fmt: skip
    return _layout(fig, title, percent=percent, height=height)


def bars(
    df: pl.DataFrame, x: str, y: str, *, by: str | None = None, title: str = "",
    height: int = 320,
) -> go.Figure:  # fmt: skip
    """Stacked bars of ``y`` over ``x``, one colour per value of ``by``."""
    fig = go.Figure()
    groups = df.partition_by(by, maintain_order=True) if by else [df]
    for part in groups:
        fig.add_bar(
            x=part[x].to_list(), y=part[y].to_list(),
            name=str(part[by][0]) if by else y.replace("_", " "),
        )  # fmt: skip
    fig.update_layout(barmode="stack")
    return _layout(fig, title, percent=False, height=height)


def outcome_bars(outcomes: pl.DataFrame) -> go.Figure:
    """What happened to every proposal of each agent and action type, stacked."""
    labels = (outcomes["agent"] + " · " + outcomes["action_type"]).to_list()
    fig = go.Figure()
    for k in OUTCOME_KINDS:
        fig.add_bar(y=labels, x=outcomes[k].to_list(), name=k.replace("_", " "), orientation="h")
    fig.update_layout(barmode="stack", yaxis={"automargin": True})
    return _layout(fig, "What happened to each action type", percent=False,
                   height=160 + 40 * len(labels))  # fmt: skip


def horizontal_bars(
    labels: list[str], values: list[float], *, title: str, percent: bool = False
) -> go.Figure:
    """One bar per label, longest list readable (height grows with the labels)."""
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h"))
    fig.update_layout(yaxis={"automargin": True, "autorange": "reversed"})
    fig = _layout(fig, title, percent=False, height=140 + 26 * len(labels))
    if percent:
        fig.update_xaxes(tickformat=".0%")
    return fig
