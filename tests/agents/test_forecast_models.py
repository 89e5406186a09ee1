"""The forecast's stored deal models (migration 014) on the small company cut at
2024-03-05: a run in a new process (the in-process memo cleared) reads every model back
instead of fitting and forecasts what the fitting run did, to the digit; a correction
to the training data refits the models that saw it; a stored model that fails its
checks is refitted, not walked."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from revstack.agents.forecast._model import Trees
from revstack.data.warehouse import Warehouse, release_all
from tests.agents._forecast_runs import run_forecast, stored_rows
from tests.agents._weeks import cut

AT = dt.datetime(2024, 3, 5, 8)
# Fewer draws: the models' reuse does not depend on them. A bag of two, so members are
# stored and read back in their order.
_PARAMS = {"draws": 200, "live_draws": 400, "bag": 2}
_SAME = ("forecasts", "forecast_drivers", "forecast_reliability")
_MODELS = ("forecast_models", "forecast_model_trees")
_CACHE = ("forecast_cache", "forecast_cache_snapshots", "forecast_cache_segments")


def _run(wh: Warehouse) -> dict:
    return run_forecast(wh, _PARAMS, new_process=True)


def _rows(wh: Warehouse, run_id: str) -> dict[str, pl.DataFrame]:
    return stored_rows(wh, run_id, (*_SAME, "forecast_backtest", *_MODELS))


def _without_cache(path: Path, tmp_path: Path) -> Warehouse:
    """A copy with the backtest cache emptied: the next run replays every snapshot, so
    every refit's model is asked for."""
    release_all()
    shutil.copy(path, tmp_path / "copy.duckdb")
    wh = Warehouse(tmp_path / "copy.duckdb")
    with wh.connect() as con:
        for t in _CACHE:
            con.execute(f"DELETE FROM ops.{t}")
    release_all()
    return wh


@pytest.fixture(scope="module")
def first(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The company at 2024-03-05 after a run that fitted every model and stored them."""
    wh = cut(small_company.path, tmp_path_factory.mktemp("models") / "first.duckdb", AT)
    run = _run(wh)
    return {"wh": wh, "run": run, "rows": _rows(wh, run["run_id"])}


def _agent_rows(rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return rows["forecast_backtest"].filter(pl.col("method") == "agent")


@pytest.mark.slow
def test_a_new_process_reads_the_models_back_and_forecasts_the_same(
    first: dict, tmp_path: Path
) -> None:
    models = first["run"]["models"]
    assert models["fitted"] >= 3 and models["stored"] == 0, models  # the first run fitted
    wh = _without_cache(first["wh"].path, tmp_path)
    again = _run(wh)
    assert again["cache"]["full_replay"], again["cache"]
    # Every refit read back, none fitted: same training rows, same key.
    assert again["models"] == {
        "fitted": 0,
        "stored": models["fitted"],
        "memo": 0,
        "unreadable": [],
    }
    a, b = first["rows"], _rows(wh, again["run_id"])
    for t in (*_SAME, *_MODELS):
        assert len(a[t]) and a[t].equals(b[t]), t
    assert _agent_rows(a).equals(_agent_rows(b))
    assert again["fits"] == first["run"]["fits"]
    assert again["deal_calibration"] == first["run"]["deal_calibration"]


@pytest.mark.slow
def test_a_run_the_cache_answers_reads_one_model_and_keeps_them_all(
    first: dict, tmp_path: Path
) -> None:
    release_all()
    shutil.copy(first["wh"].path, tmp_path / "copy.duckdb")
    wh = Warehouse(tmp_path / "copy.duckdb")
    again = _run(wh)
    assert not again["cache"]["full_replay"], again["cache"]
    # Only the blocks with a snapshot still open need a model; those the cache answered
    # need none ...
    m = again["models"]
    assert m["fitted"] == 0 and 1 <= m["stored"] < first["run"]["models"]["fitted"], m
    # ... and their models are kept for a later full replay, row for row.
    a, b = first["rows"], _rows(wh, again["run_id"])
    for t in _MODELS:
        assert a[t].equals(b[t]), t


@pytest.mark.slow
def test_a_correction_to_training_data_refits_the_models_that_saw_it(
    first: dict, tmp_path: Path
) -> None:
    wh = _without_cache(first["wh"].path, tmp_path)
    with wh.connect() as con:
        # A won deal's amount, corrected in a period that closed after the first refit
        # day: the refits after it train on it, the first one does not.
        con.execute(
            """UPDATE crm.opportunity_history SET amount = amount * 2
            WHERE history_id = (SELECT max(history_id) FROM crm.opportunity_history
                                WHERE changed_at < '2023-12-01' AND amount > 0)"""
        )
    release_all()
    again = _run(wh)
    m = again["models"]
    assert m["fitted"] >= 1 and m["stored"] >= 1, m
    assert m["fitted"] + m["stored"] == first["run"]["models"]["fitted"]


@pytest.mark.slow
def test_a_stored_tree_that_would_not_end_is_refitted_not_walked(
    first: dict, tmp_path: Path
) -> None:
    wh = _without_cache(first["wh"].path, tmp_path)
    with wh.connect() as con:
        # The root's children point back at the root: a walk would never reach a leaf.
        con.execute(
            """UPDATE ops.forecast_model_trees
            SET node_left = list_transform(node_left, lambda x: 0::UINTEGER)
            WHERE tree = 0 AND member = 1
              AND model_key = (SELECT min(model_key) FROM ops.forecast_model_trees)"""
        )
    release_all()
    again = _run(wh)
    m = again["models"]
    assert m["fitted"] == 1 and len(m["unreadable"]) == 1, m
    assert "later nodes" in m["unreadable"][0]
    # The refit is the model that was stored: the forecast is the same.
    a, b = first["rows"], _rows(wh, again["run_id"])
    for t in _SAME:
        assert a[t].equals(b[t]), t


def test_the_trees_as_numbers_predict_what_scikit_learn_predicts() -> None:
    """``Trees`` walks the classifier's own node tables: with a categorical column (seen,
    unseen and missing categories) and missing numbers, every probability is the same."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 5))
    x[:, 2] = rng.integers(0, 6, len(x))
    y = (x[:, 0] + (x[:, 2] == 3) + rng.normal(size=len(x)) > 0.4).astype(int)
    x[rng.random(x.shape) < 0.1] = np.nan
    hgb = HistGradientBoostingClassifier(max_iter=40, categorical_features=[2], random_state=0).fit(
        x, y
    )
    test = rng.normal(size=(2000, 5))
    test[:, 2] = rng.integers(-1, 9, len(test))  # -1, 6, 7 and 8 were never seen
    test[rng.random(test.shape) < 0.1] = np.nan
    assert np.array_equal(Trees.of(hgb).predict_proba(test), hgb.predict_proba(test)[:, 1])


def test_the_key_digests_what_the_fit_reads() -> None:
    """A column the fit does not read (an owner's position in today's users), a booked
    amount on a row that is not won, a last-bit difference in a feature read through
    float32, and a contact departure leave the key as it was; a change to anything else
    the fit reads changes it."""
    from revstack.agents.forecast._stored import model_key

    rows = pl.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "as_of": [dt.datetime(2024, 1, 1)] * 3,
            "amount": [1000.0, 2500.0, 400.0],
            "days_in_stage": [3.0, 10.0, 40.0],
            "commit_bias": [0.913592417646705, 1.0, 0.8],
            "champion_left": [False, True, False],
            "flag_champion": [False, True, False],
            "risk_flags": pl.Series([0, 2, 1], dtype=pl.Int8),
            "owner_idx": [0, 1, 2],
            "won": pl.Series([1, 0, 0], dtype=pl.Int8),
            "won_amount": [900.0, None, None],
        }
    )
    day = dt.date(2024, 4, 1)

    def key(df: pl.DataFrame) -> str:
        return model_key(df, day, bag=3, seed=0)

    base = key(rows)
    same = [
        rows.with_columns(owner_idx=pl.Series([1, 2, 3])),
        rows.with_columns(commit_bias=pl.Series([0.9135924176467051, 1.0, 0.8])),
        rows.with_columns(
            champion_left=pl.Series([False, False, False]),
            flag_champion=pl.Series([False, False, False]),
            risk_flags=pl.Series([0, 1, 1], dtype=pl.Int8),
        ),
        # A deal won after its row's period: the booked amount shows on a row not won.
        rows.with_columns(won_amount=pl.Series([900.0, 2500.0, None])),
        rows.reverse(),  # the rows as a set
    ]
    assert all(key(df) == base for df in same)
    changed = [
        rows.with_columns(amount=pl.Series([1000.0, 2500.0, 401.0])),
        rows.with_columns(days_in_stage=pl.Series([3.0, 10.0, 41.0])),
        rows.with_columns(risk_flags=pl.Series([0, 2, 2], dtype=pl.Int8)),
        rows.with_columns(won_amount=pl.Series([950.0, None, None])),
        rows.head(2),
    ]
    assert all(key(df) != base for df in changed)
    assert model_key(rows, day, bag=2, seed=0) != base
    assert model_key(rows, dt.date(2024, 10, 1), bag=3, seed=0) != base
