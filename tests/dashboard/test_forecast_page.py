"""The Forecast page on an empty warehouse and on one the forecast agent has run on."""

from __future__ import annotations

import polars as pl
import pytest

from revstack.data.warehouse import Warehouse, release_all
from revstack.metrics.forecast_store import accuracy_table, combination, live_forecasts
from tests.dashboard.test_pages import _app

PAGE = "app_pages/forecast.py"


def _money(x: float) -> str:  # the page's format
    return f"${x / 1e6:,.2f}M" if abs(x) >= 1e6 else f"${x:,.0f}"


def test_the_forecast_page_explains_itself_on_an_empty_warehouse(
    wh: Warehouse, monkeypatch
) -> None:
    at = _app(wh, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Forecast"
    assert "revstack run --agent forecast" in at.info[0].value


@pytest.mark.slow
def test_the_forecast_page_shows_the_stored_ranges(
    forecast_company: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    with forecast_company.connect() as con:
        live = live_forecasts(con)
        mixes = combination(con)
        table = accuracy_table(con)
    assert set(mixes["period_kind"]) == {"month", "quarter"}
    assert ((mixes["weight"] >= 0) & (mixes["weight"] <= 1) & (mixes["scale"] > 0)).all()
    at = _app(forecast_company, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    for kind in ("quarter", "month"):
        at.radio(key="fc_kind").set_value(kind).run()
        assert not at.exception
        company = live.filter(
            (pl.col("period_kind") == kind) & (pl.col("segment_kind") == "company")
        ).row(0, named=True)
        shown = {m.label: m.value for m in at.metric}
        assert shown["P50"] == _money(company["p50"])
        # How much of the rep commit is anybody's call, and how much stands in for reps who
        # have not called.
        calls = [c.value for c in at.caption if "reps have called" in c.value]
        assert len(calls) == 1
        if company["reps_called"] == company["reps"]:
            assert calls[0].startswith(f"All {company['reps']} reps have called")
        else:
            assert calls[0].startswith(
                f"{company['reps_called']} of {company['reps']} reps have called for this {kind}"
            )
            filled = company["rep_commit"] - company["rep_commit_calls"]
            assert f"their calls come to {_money(company['rep_commit_calls'])}" in calls[0]
            assert f"the other {_money(filled)} of the rep commit" in calls[0]
        assert shown["P10"] == _money(company["p10"])
        # How the centre was made is said, with the run's own figures.
        mix = mixes.filter(period_kind=kind).row(0, named=True)
        said = [c.value for c in at.caption if "range ×" in c.value]
        assert (
            len(said) == 1
            and f"range ×{mix['scale']:.2f}" in said[0]
            and f"{mix['periods']} past {kind}s" in said[0]
        )
        seasonal = [c.value for c in at.caption if "quarter of the year" in c.value]
        if kind == "quarter":  # the small company has scored quarters of every season by its as-of
            assert (
                mix["season"] is not None
                and len(seasonal) == 1
                and f"×{mix['season']:.2f}" in seasonal[0]
            )
        else:
            assert not seasonal
        # The agent against the rep commit over all of the kind's periods, with its interval.
        vs = table.filter(period_kind=kind, offset="all", method="rep_commit").row(0, named=True)
        assert vs["ratio_low"] <= vs["mape_ratio"] <= vs["ratio_high"]
        ratio = [c.value for c in at.caption if "the rep commit's" in c.value]
        assert len(ratio) == 1 and f"{vs['mape_ratio']:.2f}× the rep commit's" in ratio[0]
        assert f"{vs['ratio_low']:.2f}–{vs['ratio_high']:.2f}" in ratio[0]
    at.selectbox(key="fc_segment").set_value("rep").run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert any("forecast_accuracy" in label for label in labels)
    assert any("forecast_drivers" in label for label in labels)


@pytest.mark.slow
def test_the_page_says_when_every_rep_has_called(
    forecast_company: Warehouse, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # The small company's as-of is a period's first day, when nobody has called: plant the
    # other end, a stored quarter in which every rep counted has called.
    import shutil

    release_all()
    shutil.copy(forecast_company.path, tmp_path / "called.duckdb")
    wh = Warehouse(tmp_path / "called.duckdb")
    with wh.transaction() as con:
        con.execute(
            "UPDATE ops.forecasts SET reps_called = reps, rep_commit_calls = rep_commit "
            "WHERE period_kind = 'quarter' AND reps IS NOT NULL"
        )
        [(reps,)] = con.execute(
            "SELECT reps FROM ops.forecasts WHERE period_kind = 'quarter' AND segment_kind = 'company'"
        ).fetchall()
    at = _app(wh, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    calls = [c.value for c in at.caption if "reps have called" in c.value]
    assert calls == [
        f"All {reps} reps have called for this quarter: the rep commit is their calls."
    ]
    at.radio(key="fc_kind").set_value("month").run()  # months were left as stored
    calls = [c.value for c in at.caption if "reps have called" in c.value]
    assert len(calls) == 1 and " stands in for reps who have not called yet" in calls[0]


@pytest.mark.slow
def test_a_forecast_learned_from_a_sample_of_teams_says_how_far_its_ranges_hold(
    forecast_company: Warehouse, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """A large company's backtest scores a sample of teams (docs/forecast.md); the ranges
    learned that way are widened to the whole company's scale and measured on smaller
    shares only, and the page and the metrics say so."""
    import json
    import shutil

    from revstack.metrics.forecast_store import latest_run, report

    release_all()
    at = _app(forecast_company, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception and not at.warning  # a whole-company backtest: nothing to say
    release_all()
    shutil.copy(forecast_company.path, tmp_path / "sampled.duckdb")
    wh = Warehouse(tmp_path / "sampled.duckdb")
    sample = {"seed": 0, "above": 500_000, "to": 100_000, "owners": 263}
    with wh.transaction() as con:
        run = latest_run(con)
        [(raw,)] = con.execute(
            "SELECT metadata FROM ops.runs WHERE run_id = $r", {"r": run}
        ).fetchall()
        meta = json.loads(raw)
        meta["agent"]["backtest_sample"] = sample
        con.execute(
            "UPDATE ops.runs SET metadata = $m WHERE run_id = $r", {"m": json.dumps(meta), "r": run}
        )
    with wh.connect() as con:
        said = report(con, None)
    assert said["backtest_sample"] == sample and "not measured" in said["warning"]
    at = _app(wh, monkeypatch)
    at.switch_page(PAGE).run()
    assert not at.exception
    [warning] = at.warning
    assert "263 owners' teams" in warning.value and "widened" in warning.value
