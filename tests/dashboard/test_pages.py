"""Every page renders on an empty and a seeded warehouse; the approval flow writes the CRM."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from agents.engine._run import run_agents
from data.warehouse import Warehouse, release_all
from metrics.engine import action_outcomes
from tests.agents.test_runs import FillIndustry, _spec

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = [
    "pages/stack_health.py",
    "pages/approvals.py",
    "pages/trust_ramp.py",
    "pages/threshold_lab.py",
    "pages/audit.py",
    "pages/data_quality.py",
    "pages/pipeline_risk.py",
    "pages/contracts.py",
]


def _app(wh: Warehouse, monkeypatch: pytest.MonkeyPatch, who: str | None = None) -> AppTest:
    monkeypatch.setenv("REVSTACK_DB", str(wh.path))
    release_all()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    if who is not None:
        at.sidebar.selectbox(key="identity").set_value(who).run()
    return at


@pytest.fixture
def seeded(run_wh: Warehouse) -> Warehouse:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    return run_wh


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_warehouse(wh: Warehouse, monkeypatch, page) -> None:
    at = _app(wh, monkeypatch)
    at.switch_page(page).run()
    assert not at.exception
    assert at.title[0].value


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_a_seeded_warehouse(seeded: Warehouse, monkeypatch, page) -> None:
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page(page).run()
    assert not at.exception


def test_stack_health_numbers_match_the_metrics(seeded: Warehouse, monkeypatch) -> None:
    with seeded.connect() as con:
        outcomes = action_outcomes(con)
    at = _app(seeded, monkeypatch, who="rev")
    shown = {m.label: m.value for m in at.metric}
    assert shown["Proposals"] == str(int(outcomes["proposals"].sum()))
    assert shown["Applied automatically"] == str(int(outcomes["auto_applied"].sum()))


def _crm(wh: Warehouse, account: str, field: str):
    with wh.connect() as con:
        return con.execute(
            f"SELECT {field} FROM crm.accounts WHERE account_id = $a", {"a": account}
        ).fetchall()[0][0]


def _status(wh: Warehouse, pid: str) -> tuple:
    with wh.connect() as con:
        return con.execute(
            "SELECT status, decided_by, decision_note FROM ops.proposals WHERE proposal_id = $p",
            {"p": pid},
        ).fetchall()[0]


def _pending(wh: Warehouse, action: str) -> list[str]:
    with wh.connect() as con:
        return [
            r[0]
            for r in con.execute(
                "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' AND action_type = $a AND run_id <> 'run-t' ORDER BY 1",
                {"a": action},
            ).fetchall()
        ]


def test_approve_edit_and_reject_from_the_page(seeded: Warehouse, monkeypatch) -> None:
    approve_id, edit_id, reject_id, *_ = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("pages/approvals.py").run()
    at.button(key=f"approve_{approve_id}").click().run()
    assert _status(seeded, approve_id)[:2] == ("approved", "rev")

    at.text_input(key=f"edit_{edit_id}").set_value("77").run()
    at.button(key=f"approve_{edit_id}").click().run()
    assert _status(seeded, edit_id)[0] == "edited"

    at.text_input(key=f"note_{reject_id}").set_value("headcount is from 2019").run()
    at.button(key=f"reject_{reject_id}").click().run()
    assert _status(seeded, reject_id) == ("rejected", "rev", "headcount is from 2019")
    assert not at.exception
    with seeded.connect() as con:
        rec = con.execute(
            "SELECT record_id FROM ops.proposals WHERE proposal_id = $p", {"p": edit_id}
        ).fetchall()[0][0]
    assert _crm(seeded, rec, "employees") == 77


def test_a_viewer_cannot_decide(seeded: Warehouse, monkeypatch) -> None:
    [first, *_] = _pending(seeded, "fill_employees")
    at = _app(seeded, monkeypatch, who="vic")
    at.switch_page("pages/approvals.py").run()
    assert at.button(key=f"approve_{first}").disabled
    assert _status(seeded, first)[0] == "pending"


def test_data_quality_page_shows_the_stored_score(seeded: Warehouse, monkeypatch) -> None:
    from contracts import load_definitions
    from metrics.quality import audit

    report = audit(seeded, load_definitions())
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("pages/data_quality.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Data quality score"] == f"{report.score:.1f}"


def test_approvals_counts_the_whole_queue(seeded: Warehouse, monkeypatch) -> None:
    with seeded.connect() as con:
        pending = con.execute(
            "SELECT count(*) FROM ops.proposals WHERE status = 'pending'"
        ).fetchall()[0][0]
    at = _app(seeded, monkeypatch, who="rev")
    at.switch_page("pages/approvals.py").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Waiting for a reviewer (tier 2)"] == str(pending)
