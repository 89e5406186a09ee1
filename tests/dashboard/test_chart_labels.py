"""Names from the data reach charts as text: plotly renders <b>, <i>, <br> and <a href> in
any label, so every chart is escaped on its way to the page (charts.safe_labels)."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from revstack.dashboard.charts import bars, horizontal_bars, lines, outcome_bars, safe_labels
from revstack.dashboard.forecast_charts import driver_bars, segment_ranges

HOSTILE = '<a href="http://evil.example">Team</a> <b>R&amp;D</b><br><i>x</i>'
DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def _texts(node: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (key, text) in a figure's JSON, templates (the chart's own markup) apart."""
    if isinstance(node, str):
        return [(key, node)]
    if isinstance(node, dict):
        return [t for k, v in node.items() if k != "template" for t in _texts(v, k)]
    if isinstance(node, list | tuple):
        return [t for v in node for t in _texts(v, key)]
    if hasattr(node, "tolist"):  # numpy arrays (custom data)
        return _texts(node.tolist(), key)
    return []


def _figures() -> dict[str, go.Figure]:
    week = [dt.date(2026, 1, 5), dt.date(2026, 1, 12)]
    by_team = pl.DataFrame(
        {"week": week * 2, "rate": [0.1, 0.2] * 2, "team": [HOSTILE] * 2 + ["b"] * 2}
    )
    outcomes = pl.DataFrame(
        {"agent": [HOSTILE], "action_type": ["fill"]} | {k: [1] for k in _outcome_kinds()}
    )
    drivers = pl.DataFrame(
        {
            "opportunity_id": [HOSTILE],
            "stage": [HOSTILE],
            "variance_share": [0.5],
            "amount": [1000.0],
            "win_probability": [0.4],
        }
    )
    segments = pl.DataFrame(
        {"segment": [HOSTILE], "p10": [1.0], "p50": [2.0], "p90": [3.0], "rep_commit": [2.0]}
        | {"won_to_date": [1.0]}
    )
    return {
        "lines": lines(by_team, "week", "rate", by="team", title=HOSTILE),
        "bars": bars(by_team, "team", "rate", by="team"),
        "horizontal_bars": horizontal_bars([HOSTILE, "b"], [1.0, 2.0], title="t"),
        "outcome_bars": outcome_bars(outcomes),
        "driver_bars": driver_bars(drivers, "drivers"),
        "segment_ranges": segment_ranges(segments, "segments"),
    }


def _outcome_kinds() -> list[str]:
    from revstack.dashboard.charts import OUTCOME_KINDS

    return OUTCOME_KINDS


def test_a_hostile_name_is_text_in_every_chart_label() -> None:
    for name, fig in _figures().items():
        before = _texts(fig.to_plotly_json())
        assert any("<a href" in t for _, t in before), name  # the name reached the chart
        texts = _texts(safe_labels(fig).to_plotly_json())
        data = [(k, t) for k, t in texts if not k.endswith("template")]
        assert [t for _, t in data if "<" in t or ">" in t] == [], name
        # escaped once, so plotly shows exactly the name (entities read back as characters)
        assert any(html.unescape(t) == HOSTILE or HOSTILE in html.unescape(t) for _, t in data)
        assert any("&lt;a href=" in t and "R&amp;amp;D" in t for _, t in data), name


def test_the_charts_own_markup_and_numbers_are_kept() -> None:
    fig = _figures()["driver_bars"]
    safe = safe_labels(fig)
    assert safe.data[0].hovertemplate == fig.data[0].hovertemplate  # its <br> still breaks
    assert list(safe.data[0].x) == [0.5]
    before, after = fig.to_plotly_json()["data"][0], safe.to_plotly_json()["data"][0]
    assert after["customdata"] == before["customdata"]  # numbers: plotly's typed array
    assert safe.layout.xaxis.tickformat == ".0%"


def test_text_in_object_arrays_is_escaped_too() -> None:
    fig = go.Figure(
        go.Bar(
            x=[1],
            y=np.array([HOSTILE], dtype=object),
            customdata=np.array([[HOSTILE, 2]], dtype=object),
        )
    )
    data = safe_labels(fig).to_plotly_json()["data"][0]
    assert html.unescape(str(data["y"][0])) == HOSTILE and "<" not in str(data["y"][0])
    assert data["customdata"].tolist()[0][1] == 2 and "<" not in data["customdata"][0][0]


def test_every_page_shows_charts_through_the_one_helper() -> None:
    calls = {
        p.relative_to(DASHBOARD).as_posix()
        for p in DASHBOARD.rglob("*.py")
        if re.search(r"\.plotly_chart\(", p.read_text())
    }
    assert calls == {"_state.py"}  # _state.chart: safe_labels, then st.plotly_chart
