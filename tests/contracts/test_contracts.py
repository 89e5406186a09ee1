"""Definitions and contracts: the shipped files check clean; each kind of breakage is named."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.contracts import (
    check_all,
    default_dir,
    load_all,
    load_definitions,
    required_fields_sql,
    stage_violations_sql,
)
from revstack.data.errors import ContractError
from revstack.data.warehouse import Warehouse, frame


def test_shipped_files_load_and_check_clean(wh: Warehouse) -> None:
    bundle = load_all()
    assert set(bundle.contracts) == {
        "crm_hygiene",
        "pipeline_health",
        "deal_prep",
        "forecast",
        "outbound",
    }
    assert bundle.definitions.open_stages[0] == "prospecting"
    with wh.connect() as con:
        assert check_all(con) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "contracts"
    shutil.copytree(default_dir(), target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


BROKEN = [
    (
        "agents/crm_hygiene.yaml",
        "    industry: {tier: 1, min_confidence: 0.9}",
        "    industry: {tierr: 1, min_confidence: 0.9}",
        "writes.crm.accounts.industry",
        "unknown field 'tierr'",
    ),
    (
        "agents/crm_hygiene.yaml",
        "    industry: {tier: 1, min_confidence: 0.9}",
        "    industry: {tier: 4, min_confidence: 0.9}",
        "writes.crm.accounts.industry.tier",
        "tier must be 1, 2 or 3, got 4",
    ),
    (
        "agents/crm_hygiene.yaml",
        "    industry: {tier: 1, min_confidence: 0.9}",
        "    industry: {tier: 1, min_confidence: 1.2}",
        "writes.crm.accounts.industry.min_confidence",
        "min_confidence must be within 0..1, got 1.2",
    ),
    (
        "agents/forecast.yaml",
        '  crm.forecast_submissions: "*"',
        '  crm.forecast_subs: "*"',
        "reads.crm.forecast_subs",
        "unknown table crm.forecast_subs",
    ),
    (
        "agents/pipeline_health.yaml",
        "[contact_id, account_id, title,",
        "[contact_id, account_id, job_title,",
        "reads.crm.contacts",
        "no column 'job_title'",
    ),
    (
        "agents/crm_hygiene.yaml",
        "    website: {tier: 2, min_confidence: 0.0}",
        "    logo_url: {tier: 2, min_confidence: 0.0}",
        "writes.crm.accounts.logo_url",
        "no column crm.accounts.logo_url",
    ),
    (
        "agents/outbound.yaml",
        '  ref.enrichment: "*"',
        '  truth.deal_outcomes: "*"',
        "reads.truth.deal_outcomes",
        "ground truth",
    ),
    (
        "agents/crm_hygiene.yaml",
        "depends_on: []",
        "depends_on: [forecast]",
        "depends_on",
        "dependency cycle",
    ),
    (
        "agents/deal_prep.yaml",
        "triggers: [meeting_booked, schedule]",
        "triggers: [meeting_booked, schedule",
        "line",
        "not valid YAML",
    ),
    (
        "definitions.yaml",
        '      - {field: close_date, op: is_set}\n      - {metric: engaged_contacts, op: ">=", value: 1}',
        '      - {field: closing_date, op: is_set}\n      - {metric: engaged_contacts, op: ">=", value: 1}',
        "stages[2].entry_criteria[2].field",
        "no column 'closing_date'",
    ),
    (
        "agents/outbound.yaml",
        "    tier: 3\n    about: contacts",
        "    tier: 3\n    about: contacts\n    auto_execute: true",
        "actions[0]",
        "never executed automatically",
    ),
    (
        "agents/forecast.yaml",
        "outputs: [ops.forecasts,",
        "outputs: [ops.proposals,",
        "outputs[0]",
        "not the engine's own",
    ),
    (
        "agents/forecast.yaml",
        "outputs: [ops.forecasts,",
        "outputs: [crm.opportunities,",
        "outputs[0]",
        "outputs go to ops tables",
    ),
    (
        "agents/forecast.yaml",
        "replaces: [ops.forecast_cache,",
        "replaces: [ops.forecasts_cache,",
        "replaces[0]",
        "not declared under outputs",
    ),
    (
        "agents/deal_prep.yaml",
        "outputs: [ops.briefings]",
        "outputs: [ops.briefs]",
        "outputs[0]",
        "unknown table ops.briefs",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "key_path", "problem"), BROKEN, ids=[b[4][:30] for b in BROKEN]
)
@pytest.mark.slow
def test_each_breakage_names_file_key_path_and_problem(
    wh: Warehouse, copy: Path, file, old, new, key_path, problem
) -> None:
    _edit(copy / file, old, new)
    with wh.connect() as con:
        problems = check_all(con, copy)
    assert problems, "the broken copy passed the check"
    hit = [
        p
        for p in problems
        if p.file.endswith(file) and p.key_path.startswith(key_path) and problem in p.problem
    ]
    assert hit, f"no problem names {file} {key_path} {problem!r}: {problems}"


def test_loading_a_broken_definitions_file_raises_contract_error(copy: Path) -> None:
    _edit(copy / "definitions.yaml", "probability: 0.05", "probability: 5")
    with pytest.raises(ContractError, match=r"definitions.yaml: stages\[0\].probability"):
        load_definitions(copy / "definitions.yaml")


_DEALS = """
INSERT INTO crm.opportunities (opportunity_id, account_id, name, stage, amount, close_date,
    forecast_category, is_closed, is_won, created_at, source) VALUES
  ('o1', 'a1', 'fine proposal', 'proposal', 1000, DATE '2026-12-01', 'best_case', false, false, TIMESTAMP '2026-09-01', 't'),
  ('o2', 'a1', 'no buyer', 'proposal', 1000, DATE '2026-12-01', 'best_case', false, false, TIMESTAMP '2026-09-01', 't'),
  ('o3', NULL, 'no account, no amount', 'qualification', NULL, NULL, 'pipeline', false, false, TIMESTAMP '2026-09-01', 't'),
  ('o4', 'a1', 'closed ones are not checked', 'negotiation', NULL, NULL, 'commit', true, false, TIMESTAMP '2026-09-01', 't');
INSERT INTO crm.opportunity_contacts (opportunity_id, contact_id, role, source) VALUES
  ('o1', 'c1', 'economic_buyer', 't'), ('o1', 'c2', 'champion', 't'), ('o2', 'c3', 'champion', 't');
INSERT INTO crm.activities (activity_id, activity_type, direction, status, occurred_at, contact_id, opportunity_id, source) VALUES
  ('x1', 'meeting', 'two_way', 'completed', TIMESTAMP '2026-09-10', 'c1', 'o1', 't'),
  ('x2', 'email', 'inbound', 'completed', TIMESTAMP '2026-09-11', 'c2', 'o1', 't'),
  ('x3', 'email', 'outbound', 'completed', TIMESTAMP '2026-09-12', 'c3', 'o2', 't'),
  ('x4', 'meeting', 'two_way', 'completed', TIMESTAMP '2026-11-10', 'c3', 'o2', 't');
INSERT INTO crm.accounts (account_id, name, website, industry, employees, country, owner_id, source) VALUES
  ('a1', 'Acme', 'acme.com', 'Software', 10, 'US', 'u1', 't'),
  ('a2', 'Blank', '  ', NULL, 5, 'US', 'u1', 't');
"""


def test_stage_criteria_and_required_fields_select_exactly_the_bad_rows(wh: Warehouse) -> None:
    d = load_definitions()
    with wh.connect() as con:
        con.execute(_DEALS)
        v = frame(con, stage_violations_sql(d), {"as_of": "2026-10-01"})
        missing = frame(con, required_fields_sql(d, "accounts")).sort("record_id", "field")
    got = sorted(v.select("opportunity_id", "criterion", "actual").iter_rows())
    # o2: one engaged contact by as_of (x4 is after it; x3 is outbound), and no economic buyer
    assert got == [
        ("o2", "engaged_contacts >= 2", "0"),
        ("o2", "role economic_buyer present", "champion"),
        ("o3", "account_id is set", "missing"),
        ("o3", "amount > 0", "missing"),
    ]
    assert missing.rows() == [("a2", "industry"), ("a2", "website")]
    assert v.filter(pl.col("opportunity_id") == "o1").is_empty()
