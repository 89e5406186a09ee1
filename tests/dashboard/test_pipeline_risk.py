"""The Pipeline risk page: flags with reasons and evidence, filters, per-signal figures."""

from __future__ import annotations

import datetime as dt

import pytest

from revstack.data.warehouse import Warehouse
from tests.dashboard.test_pages import _app
from tests.risk_fixture import flagged  # noqa: F401 - the fixture

PAGE = "app_pages/pipeline_risk.py"


def _store_quality(wh: Warehouse) -> None:
    with wh.transaction() as con:
        for signal, p, r in (("model", 0.67, 0.66), ("gone_quiet", 0.48, 0.28)):
            con.execute(
                "INSERT INTO ops.risk_backtests (backtest_id, measured_at, population, signal, "
                "flagged, precision, recall, f1, precision_at_k, recall_at_k, pr_auc, base_rate, "
                "dollar_recall, median_warning_days, setup) VALUES (1, $t, 'live', $s, 10, $p, $r, "
                "0.5, $p, 0.03, 0.6, 0.33, 0.5, 20, '{}')",
                {"t": dt.datetime(2026, 10, 2), "s": signal, "p": p, "r": r},
            )


def test_the_page_explains_itself_on_an_empty_warehouse(wh: Warehouse, monkeypatch) -> None:
    at = _app(wh, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Pipeline risk"
    assert any("revstack run --agent pipeline_health" in i.value for i in at.info)
    assert any("revstack backtest" in i.value for i in at.info)


def test_flags_filters_and_signal_quality(flagged: Warehouse, monkeypatch) -> None:  # noqa: F811
    _store_quality(flagged)
    at = _app(flagged, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Flagged deals"] == "36" and shown["Flags"] == "72"
    assert len(at.dataframe[0].value) == 36
    at.multiselect(key="risk_manager").set_value(["Max Manager"]).run()
    assert {m.label: m.value for m in at.metric}["Flagged deals"] == "12"
    assert len(at.dataframe[0].value) == 12
    quality = at.dataframe[1].value
    assert list(quality["signal"]) == ["model", "gone_quiet"]
    assert len(at.get("plotly_chart")) == 2
    assert len(at.get("download_button")) == 2
    assert len(at.expander) == 2  # the chosen deal's two flags, each with its evidence


@pytest.mark.parametrize("signal, deals", [("gone_quiet", 36), ("phantom", 0)])
def test_the_signal_filter(flagged: Warehouse, monkeypatch, signal: str, deals: int) -> None:  # noqa: F811
    at = _app(flagged, monkeypatch)
    at.switch_page(PAGE).run()
    options = at.multiselect(key="risk_signal").options
    if signal not in options:
        assert deals == 0
        return
    at.multiselect(key="risk_signal").set_value([signal]).run()
    assert {m.label: m.value for m in at.metric}["Flagged deals"] == str(deals)
