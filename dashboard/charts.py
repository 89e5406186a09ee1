"""Chart builders: a polars frame in, a plotly figure out. No Streamlit here."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any, cast

import numpy as np
import plotly.graph_objects as go
import polars as pl

__all__ = [
    "lines",
    "bars",
    "outcome_bars",
    "horizontal_bars",
    "time_axis",
    "OUTCOME_KINDS",
    "safe_labels",
]

OUTCOME_KINDS = [
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


WEEK_MS = 7 * 86_400_000


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, dict):
        # a key ending in "template" is the chart's own markup (hovertemplate's <br>) or
        # its theme, never data: data reaches a template through %{x}, escaped here
        return {k: v if k.endswith("template") else _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        return np.array([_escaped(v) for v in value.tolist()], dtype=object)
    return value


def safe_labels(fig: go.Figure) -> go.Figure:
    """``fig`` with every text it holds HTML-escaped (``&``, ``<``, ``>``): trace names,
    categories, text, hover text, custom data, titles, annotations.

    Plotly renders a few tags in any label (``<b>``, ``<i>``, ``<br>``, ``<a href>``), and
    categories come from the data: a team or an account named ``<a href="http://...">``
    would be a link on the chart. Plotly turns the entities back into the characters, so
    a person reads the name as it is. Every chart goes through this on its way to the
    page (``revstack.dashboard._state.chart``); only hover and text templates are left
    as they are, since the chart builders write them, and the values they pull in are
    escaped.
    """
    return go.Figure(_escaped(fig.to_plotly_json()))


def time_axis(fig: go.Figure, values: pl.Series) -> None:
    """Dates as dates: a day-level tick format, and a week either side when there is a
    single point (plotly would otherwise zoom to fractions of a second around it)."""
    if not values.dtype.is_temporal() or values.is_empty():
        return
    daily = values.dt.truncate("1d").equals(values) if values.dtype != pl.Date else True
    fig.update_xaxes(type="date", tickformat="%Y-%m-%d" if daily else "%Y-%m-%d %H:%M")
    # a date or datetime column (polars types a Series' min as any Python value)
    lo, hi = cast(dt.date, values.min()), cast(dt.date, values.max())
    if lo == hi:
        pad = dt.timedelta(days=7 if daily else 1)
        fig.update_xaxes(range=[lo - pad, hi + pad])


def _layout(fig: go.Figure, title: str, *, percent: bool, height: int) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.15},
        yaxis_tickformat=".0%" if percent else None,
    )
    if percent:
        fig.update_yaxes(rangemode="tozero")
    return fig


def lines(
    df: pl.DataFrame,
    x: str,
    y: str,
    *,
    by: str | None = None,
    title: str = "",
    percent: bool = False,
    height: int = 320,
) -> go.Figure:
    """One line per value of ``by`` (or a single line), markers on each point."""
    fig = go.Figure()
    groups = df.partition_by(by, maintain_order=True) if by else [df]
    for part in groups:
        part = part.sort(x)
        fig.add_scatter(
            x=part[x].to_list(),
            y=part[y].to_list(),
            mode="lines+markers",
            name=str(part[by][0]) if by else y.replace("_", " "),
        )
    time_axis(fig, df[x])
    return _layout(fig, title, percent=percent, height=height)


def bars(
    df: pl.DataFrame,
    x: str,
    y: str,
    *,
    by: str | None = None,
    title: str = "",
    height: int = 320,
) -> go.Figure:
    """Stacked bars of ``y`` over ``x``, one colour per value of ``by``."""
    fig = go.Figure()
    groups = df.partition_by(by, maintain_order=True) if by else [df]
    weekly = x == "week" and df[x].dtype.is_temporal()
    for part in groups:
        fig.add_bar(
            x=part[x].to_list(),
            y=part[y].to_list(),
            name=str(part[by][0]) if by else y.replace("_", " "),
            width=WEEK_MS * 0.8 if weekly else None,  # a week's bar, not the whole axis
            offset=0 if weekly else None,  # a week starts on its Monday
        )
    fig.update_layout(barmode="stack")
    time_axis(fig, df[x])
    return _layout(fig, title, percent=False, height=height)


def outcome_bars(outcomes: pl.DataFrame) -> go.Figure:
    """What happened to every proposal of each agent and action type, stacked."""
    labels = (outcomes["agent"] + " · " + outcomes["action_type"]).to_list()
    fig = go.Figure()
    for k in OUTCOME_KINDS:
        fig.add_bar(y=labels, x=outcomes[k].to_list(), name=k.replace("_", " "), orientation="h")
    fig = _layout(
        fig, "What happened to each action type", percent=False, height=230 + 40 * len(labels)
    )
    # Many outcome kinds: the legend gets a band of its own between title and bars.
    fig.update_layout(
        barmode="stack",
        yaxis={"automargin": True},
        title={"y": 0.97, "yanchor": "top"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        margin={"l": 10, "r": 10, "t": 110, "b": 10},
    )
    return fig


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
