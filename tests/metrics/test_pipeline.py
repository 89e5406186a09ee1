"""Pipeline health measures: golden rows for every figure, and a walk-forward backtest on
the small company whose labels come from truth."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from revstack.contracts import load_definitions
from revstack.data.warehouse import Warehouse
from revstack.metrics.activity import agent_measures
from revstack.metrics.pipeline import signal_quality, store_quality, stored_quality, summarize
from revstack.metrics.pipeline_backtest import NAIVE, Backtest, in_memory_copy, run_backtest

W1, W2 = dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12)


def _golden() -> Backtest:
    # Two managers, two weeks, six deal-weeks; label = slipped or lost within the horizon.
    rows = {
        "as_of": [W1, W1, W1, W1, W2, W2],
        "opportunity_id": ["a", "b", "c", "d", "a", "e"],
        "manager_id": ["m1", "m1", "m1", "m2", "m1", "m2"],
        "amount": [100.0, 200.0, 300.0, 400.0, 100.0, 1000.0],
        "label": [True, False, True, True, True, False],
        "event_at": [
            W2 + dt.timedelta(days=3),
            None,
            W1 + dt.timedelta(days=10),
            W1 + dt.timedelta(days=1),
            W2 + dt.timedelta(days=3),
            None,
        ],
        "already_lost": [False] * 5 + [True],
        "rule": [3.0, 2.0, None, None, 1.0, 5.0],  # severity; null = did not fire
        "model": [0.9, 0.2, 0.6, 0.7, 0.95, 0.1],
        NAIVE: [None] * 6,
    }
    scored = pl.DataFrame(rows).with_columns(pl.col("event_at").cast(pl.Datetime("us")))
    return Backtest(scored, ["rule", "model", NAIVE], {"horizon_days": 28})


def test_golden_rows_for_every_figure() -> None:
    q = {r["signal"]: r for r in signal_quality(_golden(), budget=1).iter_rows(named=True)}
    # live rows: the five not already lost; positives a@W1, c, d, a@W2 (amount 900)
    rule = q["rule"]  # fires on a, b (W1), a (W2)
    assert (rule["flagged"], rule["precision"], rule["recall"]) == (3, 2 / 3, 2 / 4)
    assert rule["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # budget 1: m1 W1 -> a (3.0, positive); m1 W2 -> a (positive); m2 W1: nothing fired
    assert (rule["precision_at_k"], rule["recall_at_k"]) == (1.0, 2 / 4)
    assert rule["dollar_recall"] == pytest.approx(200 / 900)
    assert rule["median_warning_days"] == 10.0  # deal a, event W2+3d, first flag W1
    assert rule["base_rate"] == 4 / 5
    model = q["model"]  # flags at >= 0.5: a, c, d, a -> all four positives
    assert (model["flagged"], model["precision"], model["recall"]) == (4, 1.0, 1.0)
    assert model["pr_auc"] == pytest.approx(1.0)
    assert model["precision_at_k"] == 1.0 and model["recall_at_k"] == 3 / 4  # a, d, a
    assert q[NAIVE]["flagged"] == 0 and q[NAIVE]["precision"] is None
    every = {
        r["signal"]: r
        for r in signal_quality(_golden(), budget=1, live_only=False).iter_rows(named=True)
    }
    assert every["rule"]["flagged"] == 4 and every["rule"]["base_rate"] == 4 / 6


@pytest.fixture(scope="module")
def backtest(small_company: Warehouse) -> Backtest:
    with small_company.connect() as con:
        mem = in_memory_copy(con)
    try:
        return run_backtest(
            mem,
            load_definitions(),
            eval_weeks=8,
            train_weeks=40,
            retrain_weeks=4,
            model_params={"max_iter": 40},
        )
    finally:
        mem.close()


def test_the_backtest_scores_past_weeks_against_truth(
    small_company: Warehouse, backtest: Backtest
) -> None:
    s = backtest.scored
    assert s["as_of"].n_unique() == 8 and len(backtest.setup["models"]) == 2
    assert s["as_of"].max() + dt.timedelta(days=28) <= dt.datetime(2026, 10, 1)
    assert 0.15 < s["label"].mean() < 0.7 and s["already_lost"].any()
    # every label agrees with truth.deal_outcomes for deals lost inside the window
    with small_company.connect() as con:
        out = con.sql("SELECT opportunity_id, outcome, outcome_date FROM truth.deal_outcomes").pl()
    lost = s.join(out, on="opportunity_id").filter(
        (pl.col("outcome") == "lost")
        & (
            pl.col("outcome_date").cast(pl.Datetime("us"))
            <= pl.col("as_of") + dt.timedelta(days=28)
        )
    )
    assert len(lost) > 100 and lost["label"].all()
    q = signal_quality(backtest)
    model = q.filter(signal="model").row(0, named=True)
    assert model["pr_auc"] > model["base_rate"] + 0.1  # the score ranks better than chance
    assert q.filter(pl.col("signal") != NAIVE)["flagged"].min() >= 0


def test_figures_are_stored_for_the_dashboard(
    small_company: Warehouse, backtest: Backtest, tmp_path
) -> None:
    import shutil

    from revstack.data.warehouse import release_all

    release_all()
    wh = Warehouse(tmp_path / "copy.duckdb")
    shutil.copy(small_company.path, wh.path)
    live, every = signal_quality(backtest), signal_quality(backtest, live_only=False)
    with wh.connect() as con:
        before = agent_measures(con, "pipeline_health")
    with wh.transaction() as con:
        store_quality(con, backtest, live, every)
    with wh.connect() as con:
        stored = stored_quality(con)
        page = agent_measures(con, "pipeline_health")
    assert stored.drop("measured_at").equals(live)
    summary = summarize(backtest, live, every)
    assert summary["side_by_side_live"]["model"]["signal"] == "model"
    assert summary["already_lost_still_open"]["rows"] > 0
    # The Agents page reads what was stored rather than replaying every week as it draws.
    assert before is not None and before["available"] is False
    assert "revstack backtest" in before["why"]
    assert page is not None and page["available"] is True
    for key in ("side_by_side_live", "signals_live", "signals_all", "setup", "base_rate_live"):
        assert page[key] == json.loads(json.dumps(summary[key], default=str)), key
