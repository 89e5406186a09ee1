"""The whole stack on real exports and on tiny CRMs: every agent finishes, or says in one
line why it did nothing; none fails. The CRMs are imported by the real importer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from revstack.agents.engine import RunResult, run_agents
from revstack.agents.registry import specs
from revstack.contracts import load_definitions
from revstack.data.ingest import ingest
from revstack.data.warehouse import Warehouse, release_all
from tests.conftest import REAL_EXPORTS, ROOT

HUBSPOT = ROOT / "tests" / "fixtures" / "hubspot"
_ACCOUNTS = (
    "account,sector,year_established,revenue,employees,office_location,subsidiary_of\n"
    "Acme,software,1999,10.5,100,United States,\n"
    "Beta,retail,2001,5,50,Kenya,\n"
)
_TEAM = "sales_agent,manager,regional_office\nAnn Lee,Bob Ray,East\nCid Mo,Bob Ray,East\n"
_PIPELINE = (
    "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"
)
# Tiny CRMs in maven's format: none of them has an activity.
TINY = {
    "one_won_deal": "W1,Ann Lee,GTX,Acme,Won,2024-01-10,2024-03-01,1000\n",
    "one_open_deal": "O1,Ann Lee,GTX,Acme,Engaging,2024-01-10,,\n",
    "no_closed_deal": "".join(
        f"O{i},{'Ann Lee' if i % 2 else 'Cid Mo'},GTX,{'Acme' if i % 3 else 'Beta'},"
        f"{'Engaging' if i % 2 else 'Prospecting'},2024-0{1 + i % 8}-1{i % 9},,\n"
        for i in range(12)
    ),
}


def _tiny(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "accounts.csv").write_text(_ACCOUNTS)
    (folder / "sales_teams.csv").write_text(_TEAM)
    (folder / "sales_pipeline.csv").write_text(_PIPELINE + TINY[name])
    return folder


def _export(name: str, shared: Path, tmp_path: Path) -> tuple[str, Path]:
    if name in TINY:
        return "maven", _tiny(tmp_path, name)
    if name == "hubspot_fixture":
        return "hubspot", HUBSPOT
    return ("salesforce" if name == "salesforce_sample" else "maven"), shared / name


def _ran(built: Path) -> dict:
    """What the session's `revstack run --json` on a real export said (tests/conftest.py)."""
    return json.loads(built.with_suffix(".json").read_text())


@pytest.mark.parametrize(
    "name", ["salesforce_sample", "maven_crm", "hubspot_fixture", *TINY], ids=str
)
@pytest.mark.slow
def test_every_agent_finishes_or_says_why_on_real_and_tiny_crms(
    name: str, shared_data: Path, real_export_run, tmp_path: Path
) -> None:
    path, definitions = tmp_path / "stack.duckdb", load_definitions()
    if name in REAL_EXPORTS:
        # imported with `revstack ingest` and run with `revstack run` once per session
        built = real_export_run(name)
        shutil.copy(built, path)
        wh = Warehouse(path)
        results = [RunResult(**r) for r in json.loads(_ran(built)["stdout"])]
    else:
        fmt, folder = _export(name, shared_data, tmp_path)
        wh = Warehouse(path)
        ingest(wh, fmt, folder)
        # as `revstack run` does: every agent with pending events, in dependency order
        results = run_agents(wh, specs(), definitions=definitions)
    # and each one forced, so that one without an event (deal prep: no meeting) runs too
    for spec in specs():
        results += run_agents(wh, specs(), only=spec.name, definitions=definitions)
    release_all()
    assert {r.agent for r in results} == {s.name for s in specs()}
    failed = [(r.agent, r.message) for r in results if r.status == "failed"]
    assert failed == [], failed
    for r in results:
        assert r.status in ("succeeded", "skipped") and "\n" not in r.message, r
        assert r.status == "succeeded" or r.message, r  # a skip says why
    forecast = [r for r in results if r.agent == "forecast" and r.run_id]
    assert forecast
    if name in ("salesforce_sample", "one_won_deal", "one_open_deal"):  # < 90 days of history
        assert all(r.message.startswith("nothing to forecast: ") for r in forecast), forecast


@pytest.mark.slow
def test_revstack_run_on_the_salesforce_sample_exits_zero(real_export_run) -> None:
    # `revstack ingest salesforce` and `revstack run --json`, in processes of their own,
    # made once per session for this test and the two above and the dashboard's
    ran = _ran(real_export_run("salesforce_sample"))
    assert ran["exit"] == 0, ran["stdout"] + ran["stderr"]
    results = {r["agent"]: r for r in json.loads(ran["stdout"])}
    assert set(results) == {s.name for s in specs()}
    assert all(r["status"] != "failed" for r in results.values()), results
    assert "nothing to forecast: the CRM's history runs 19 days" in results["forecast"]["message"]
