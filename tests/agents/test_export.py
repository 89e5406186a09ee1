"""Approved changes leave as files a CRM imports, under the CRM's own column names."""

from __future__ import annotations

import csv
from pathlib import Path

from revstack.agents.engine import decide, export_changes, parse_value, record_schedule, run_agents
from revstack.data.warehouse import Warehouse
from tests.agents.test_runs import FillIndustry, _spec


def test_export_holds_the_net_effect_with_salesforce_and_hubspot_names(
    run_wh: Warehouse, tmp_path: Path
) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])  # applies a1.industry (tier 1)
    with run_wh.connect() as con:
        [(pid, record)] = con.execute(
            "SELECT proposal_id, record_id FROM ops.proposals WHERE action_type = 'fill_employees' AND record_id = 'a2' AND status = 'pending'"
        ).fetchall()
    decide(run_wh, pid, approve=True, by="rev", value=parse_value("250"))
    sf = export_changes(run_wh, "salesforce", tmp_path / "sf")
    rows = {r["Id"]: r for r in csv.DictReader((tmp_path / "sf" / "Account_update.csv").open())}
    assert sf == {"Account_update.csv": 2}
    assert rows["a1"]["Industry"] == "Software"
    assert rows["a2"]["NumberOfEmployees"] == "250"
    export_changes(run_wh, "hubspot", tmp_path / "hs")
    header = next(csv.reader((tmp_path / "hs" / "companies_update.csv").open()))
    assert header[0] == "Record ID" and {"Industry", "Number of Employees"} <= set(header)


def test_schedule_events_wake_scheduled_agents(run_wh: Warehouse) -> None:
    spec = _spec("filler", FillIndustry)
    scheduled = type(spec)(**{**spec.__dict__, "triggers": ("schedule",)})
    [idle] = run_agents(run_wh, [scheduled])
    assert idle.status == "skipped"
    record_schedule(run_wh)
    [ran] = run_agents(run_wh, [scheduled])
    assert ran.status == "succeeded" and ran.events == 1


def test_export_neutralises_formula_text_and_keeps_numbers_numbers(
    run_wh: Warehouse, tmp_path: Path
) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    with run_wh.connect() as con:
        pending = dict(
            con.execute(
                "SELECT record_id || '.' || field, proposal_id FROM ops.proposals "
                "WHERE status = 'pending' AND record_id IN ('a2', 'a4')"
            ).fetchall()
        )
    payload = "=cmd|' /C calc'!A0"
    decide(run_wh, pending["a4.industry"], approve=True, by="rev", value=parse_value(payload))
    decide(run_wh, pending["a2.employees"], approve=True, by="rev", value=parse_value("-5"))
    export_changes(run_wh, "salesforce", tmp_path / "sf")
    with (tmp_path / "sf" / "Account_update.csv").open(newline="") as f:
        rows = {r["Id"]: r for r in csv.DictReader(f)}
    assert rows["a4"]["Industry"] == "'" + payload
    assert rows["a1"]["Industry"] == "Software"
    assert rows["a2"]["NumberOfEmployees"] == "-5"  # a number, not text to neutralise
