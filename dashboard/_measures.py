"""Draw an agent's measures, whatever their shape, so a new agent needs no page code.

An agent's report (``metrics.agents.REPORTS``) returns a dict. Drawn as:
- a number, text or flag -> a metric tile (shares in 0..1 whose name says rate,
  precision, recall, accuracy, share, mape or win as a percentage);
- a list of rows (dicts) -> a table with its CSV download, and a line chart of its
  numeric columns when it has a time column (week, period, month, date, cycle,
  as_of, or any date/datetime column): that is how a measure goes "over time";
- a dict -> a section with its own title, drawn the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import streamlit as st

from revstack.dashboard._state import chart, plain, table
from revstack.dashboard.charts import lines

__all__ = ["show_measures"]

_TIME_NAMES = ("week", "period", "month", "date", "day", "cycle", "as_of", "quarter")
_PERCENT_WORDS = ("rate", "precision", "recall", "accuracy", "share", "mape", "win", "coverage")


def _label(key: str) -> str:
    # a report's keys can be the data's own (a team, a stage): text only
    return plain(key.replace("_", " "))


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        if 0 <= value <= 1 and any(w in key.lower() for w in _PERCENT_WORDS):
            return f"{value:.1%}"
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dt.date | dt.datetime):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _time_column(df: pl.DataFrame) -> str | None:
    for col, dtype in df.schema.items():
        if dtype == pl.Date or dtype == pl.Datetime:
            return col
    return next((c for c in df.columns if c.lower() in _TIME_NAMES), None)


def _rows(key: str, rows: list[dict[str, Any]], path: str) -> None:
    try:
        df = pl.DataFrame(rows, infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        st.json(rows)
        return
    when = _time_column(df)
    numeric = [c for c, t in df.schema.items() if t.is_numeric() and c != when]
    if when is not None and numeric and len(df) > 1:
        long = df.unpivot(index=when, on=numeric, variable_name="measure", value_name="value")
        share = bool(long["value"].drop_nulls().is_between(0, 1).all())
        chart(
            st,
            lines(
                long,
                when,
                "value",
                by="measure",
                title=f"{key.replace('_', ' ')} over time",
                percent=share,
            ),
            key=f"measure_chart_{path}",
        )
    table(df, f"{path}", key=f"measure_table_{path}")


def show_measures(measures: dict[str, Any], *, path: str = "m") -> None:
    """Draw every measure in ``measures`` (nested dicts become titled sections)."""
    scalars = {k: v for k, v in measures.items() if not isinstance(v, dict | list)}
    if scalars:
        cols = st.columns(min(len(scalars), 4))
        for i, (k, v) in enumerate(scalars.items()):
            cols[i % len(cols)].metric(_label(k), _scalar(k, v))
    for k, v in measures.items():
        if isinstance(v, dict):
            st.markdown(f"**{_label(k)}**")
            show_measures(v, path=f"{path}_{k}")
        elif isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            st.markdown(f"**{_label(k)}**")
            _rows(k, v, f"{path}_{k}")
        elif isinstance(v, list):
            st.markdown(f"**{_label(k)}**: " + (plain(", ".join(map(str, v))) or "none"))
