"""The pipeline health agent's stored risk model (migration 017) on the small company: a
run that reads it back flags and scores exactly as a run that rebuilds every past Monday
and refits; a history row planted before the fit, a model past its schedule, or a model
that fails its checks makes the next run refit; rows stamped after the fit do not."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from revstack.agents.engine import AgentResult, run_agents
from revstack.agents.features import deal_states, frames_connection
from revstack.agents.pipeline_health import PipelineHealth, closed_outcomes
from revstack.agents.registry import specs
from revstack.contracts import load_all
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse, frame, release_all, scalar
from tests.agents._contexts import agent_context

pytestmark = pytest.mark.slow  # each case runs the agent on the small company


@pytest.fixture(scope="module")
def stored(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A copy of the small company after one engine run of the agent: the model is stored."""
    release_all()
    path = Path(tmp_path_factory.mktemp("stored")) / "stored.duckdb"
    shutil.copy(small_company.path, path)
    wh = Warehouse(path)
    [result] = run_agents(wh, specs(), only="pipeline_health", definitions=load_all().definitions)
    assert result.status == "succeeded", result.message
    release_all()
    return wh


def _copy(wh: Warehouse, tmp_path: Path) -> Warehouse:
    release_all()
    shutil.copy(wh.path, tmp_path / "copy.duckdb")
    return Warehouse(tmp_path / "copy.duckdb")


def _run(wh: Warehouse, *, as_of: dt.datetime | None = None, **params: Any) -> AgentResult:
    ctx = agent_context(wh, "pipeline_health", as_of=as_of, **params)
    return PipelineHealth().run(ctx)


def _same_output(a: AgentResult, b: AgentResult) -> None:
    for table in ("ops.risk_flags", "ops.risk_scores"):
        assert len(a.outputs[table]) > 50, table
        assert_frame_equal(a.outputs[table], b.outputs[table])
    assert_frame_equal(a.proposals, b.proposals)


def test_a_run_reading_the_model_back_flags_exactly_as_a_full_refit(stored: Warehouse) -> None:
    with stored.connect() as con:
        first_run = scalar(con, "SELECT run_id FROM ops.risk_models")
        trees = scalar(con, "SELECT count(*) FROM ops.risk_model_trees")
    assert first_run is not None and trees == 150
    back = _run(stored)
    full = _run(stored, refit_weeks=0)  # refit every run: the agent before stored models
    assert back.metadata["model"]["source"] == "read back"
    assert back.metadata["model"]["fitted_by_run"] == first_run
    assert back.note.startswith("risk model read back") and first_run in back.note
    assert full.note == ""
    assert full.metadata["model"]["source"] == "fitted"
    assert "refit every 0 weeks" in full.metadata["model"]["refit_because"]
    assert back.metadata["benchmarks"] == full.metadata["benchmarks"]
    _same_output(back, full)
    assert (back.outputs["ops.risk_flags"]["signal"] == "model").sum() > 10


def test_a_row_planted_before_the_fit_makes_the_next_run_refit(
    stored: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(stored, tmp_path)
    with wh.connect() as con:
        as_of = data_as_of(con)
    assert as_of is not None
    deal = "P-late-import"
    later = as_of + dt.timedelta(hours=6)  # stamped after the fit: cannot change it
    with wh.transaction() as con:
        opp = scalar(
            con,
            "SELECT min(opportunity_id) FROM crm.opportunities WHERE NOT is_closed AND "
            "opportunity_id IN (SELECT opportunity_id FROM crm.activities)",
        )
        con.execute(
            "INSERT INTO crm.activities (activity_id, activity_type, direction, status, "
            "occurred_at, opportunity_id, source) VALUES ('A-later', 'call', 'two_way', "
            "'completed', $t, $o, 'test')",
            {"t": later, "o": opp},
        )
    after = _run(wh)
    assert after.metadata["model"]["source"] == "read back"
    with wh.transaction() as con:  # a history row imported late, stamped 40 days back
        con.execute(
            "INSERT INTO crm.opportunity_history (history_id, opportunity_id, changed_at, stage, "
            "amount, close_date, forecast_category, probability, changed_by, source) "
            "SELECT $h, opportunity_id, $t, stage, amount, close_date + 30, forecast_category, "
            "probability, changed_by, 'test' FROM crm.opportunity_history "
            "WHERE opportunity_id = $o AND changed_at <= $t "
            "ORDER BY changed_at DESC, history_id DESC LIMIT 1",
            {"h": deal, "o": opp, "t": as_of - dt.timedelta(days=40)},
        )
    refit = _run(wh)
    why = refit.metadata["model"]["refit_because"]
    assert refit.metadata["model"]["source"] == "fitted" and "history up to its fit" in why
    _same_output(refit, _run(wh, refit_weeks=0))


def test_the_model_is_refitted_on_its_schedule_and_never_used_before_its_fit(
    stored: Warehouse,
) -> None:
    with stored.connect() as con:
        fit_at = scalar(con, "SELECT fit_as_of FROM ops.risk_models")
    week = dt.timedelta(weeks=1)
    assert _run(stored, as_of=fit_at + 3 * week).metadata["model"]["source"] == "read back"
    old = _run(stored, as_of=fit_at + 4 * week).metadata["model"]
    assert old["source"] == "fitted" and "refit every 4 weeks" in old["refit_because"]
    earlier = _run(stored, as_of=fit_at - week).metadata["model"]
    assert earlier["source"] == "fitted" and "after this run's as-of" in earlier["refit_because"]


def test_a_stored_model_that_fails_its_checks_is_refitted(
    stored: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(stored, tmp_path)
    with wh.transaction() as con:  # a split whose child points back at the root: a loop
        con.execute(
            "UPDATE ops.risk_model_trees SET node_left = list_transform(node_left, lambda x: 0) "
            "WHERE tree = 3"
        )
    out = _run(wh)
    assert out.metadata["model"]["source"] == "fitted"
    assert "unreadable" in out.metadata["model"]["refit_because"]


def test_outcomes_from_history_alone_equal_the_full_states(small_company: Warehouse) -> None:
    d = load_all().definitions
    tables = {
        "crm.opportunity_history": "changed_at",
        "crm.activities": "occurred_at",
        "crm.opportunity_contacts": "added_at",
        "crm.contacts": "updated_at",
    }
    with small_company.connect() as con:
        as_of = data_as_of(con)
        frames = {t: frame(con, f"SELECT * FROM {t}") for t in tables}  # names: tables
    release_all()
    assert as_of is not None
    con = frames_connection(frames)
    try:
        full = deal_states(con, as_of, definitions=d)
    finally:
        con.close()
    light = closed_outcomes(frames, as_of, d)
    assert light.filter("is_closed").height > 100 and light.filter("is_won").height > 50
    assert_frame_equal(light, full.select(light.columns))
    assert set(light.columns) >= {"is_closed", "is_won", "stage_entered_at", "close_date"}
    assert pl.Series(light["opportunity_id"]).is_unique().all()


def test_the_history_digest_of_activity_read_in_parts_is_the_digest_of_the_frame(
    small_company: Warehouse,
) -> None:
    """The run reads the activities' row hashes in parts, never the table whole: the
    digest at every cut is the one of the whole frame, and a moved activity changes it."""
    from revstack.agents.features import TABLES
    from revstack.agents.pipeline_health import _stored

    ctx = agent_context(small_company, "pipeline_health")
    frames = {t: ctx.table(t, c) for t, c in TABLES.items()}
    rest = {t: f for t, f in frames.items() if t != "crm.activities"}
    parts = _stored.RowHashes.of(
        ctx.batches("crm.activities", TABLES["crm.activities"], rows=10_000), "crm.activities"
    )
    assert len(parts.hashes) == len(frames["crm.activities"]) > 10_000  # in several parts
    for cut in (dt.datetime(2024, 1, 1), ctx.as_of):
        whole = _stored.inputs_digest(frames, cut)
        assert _stored.inputs_digest(rest, cut, {"crm.activities": parts}) == whole
        assert (
            _stored.inputs_digest(rest, cut, {"crm.activities": _stored.activity_hashes(ctx)})
            == whole
        )
    acts = frames["crm.activities"]
    moved = acts.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("someone-else"))
        .otherwise("contact_id")
        .alias("contact_id")
    )
    other = _stored.RowHashes.of([moved], "crm.activities")
    assert _stored.inputs_digest(
        rest, ctx.as_of, {"crm.activities": other}
    ) != _stored.inputs_digest(frames, ctx.as_of)
