"""Enrichment providers on the real Fortune 500 file: lookup by domain or name, the
waterfall, loading into ref.enrichment, and what the hygiene agent proposes from it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import run_agents
from revstack.agents.registry import specs
from revstack.data.enrichment import FileProvider, Waterfall, load_enrichment
from revstack.data.errors import InputError
from revstack.data.warehouse import Warehouse, frame

F500 = "fortune500/fortune500.csv"
AS_OF = dt.date(2019, 6, 1)


@pytest.fixture(scope="module")
def fortune(shared_data: Path) -> FileProvider:
    return FileProvider(shared_data / F500, as_of=AS_OF, country="United States")


def test_the_real_file_is_read_with_its_own_column_names(fortune: FileProvider) -> None:
    hit = fortune.lookup(pl.Series(["walmart.com"]), pl.Series(["Exxon Mobil Corporation"])).sort(
        "company_name"
    )
    assert hit["company_name"].to_list() == [
        "Exxon Mobil",
        "Walmart",
    ]  # by domain, and by normalised name
    walmart = hit.filter(pl.col("domain") == "walmart.com").row(0, named=True)
    assert walmart["employees"] == 2_200_000 and walmart["annual_revenue"] == pytest.approx(
        514_405e6
    )
    assert (
        walmart["city"] == "Bentonville"
        and walmart["source"] == "fortune500"
        and walmart["as_of"] == AS_OF
    )


def test_the_waterfall_takes_each_field_from_the_first_provider_that_has_it(
    fortune: FileProvider, tmp_path: Path
) -> None:
    vendor = tmp_path / "vendor.csv"
    vendor.write_text(
        "website,industry,employees,country\nwalmart.com,Retail,,United States\nacme.io,Software,40,Germany\n"
    )
    other = FileProvider(vendor, name="vendor", as_of=AS_OF)
    merged = Waterfall([other, fortune]).lookup(
        pl.Series(["walmart.com", "acme.io"]), pl.Series([], dtype=pl.String)
    )
    w = merged.filter(pl.col("domain") == "walmart.com").row(0, named=True)
    assert (
        w["industry"] == "Retail" and w["employees"] == 2_200_000
    )  # vendor first; its blank falls through
    assert "industry:vendor" in w["source"] and "employees:fortune500" in w["source"]
    assert merged.filter(pl.col("domain") == "acme.io")["employees"].item() == 40


def test_a_file_without_usable_columns_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(
        InputError, match=r"bad.csv.*needs a domain/website or a company name column"
    ):
        FileProvider(bad, as_of=AS_OF)
    with pytest.raises(InputError, match=r"no column 'Sector'"):
        FileProvider(bad, as_of=AS_OF, columns={"industry": "Sector"})


_CRM = """
INSERT INTO crm.accounts (account_id, name, website, industry, employees, source) VALUES
  ('a1', 'Walmart Inc.', 'https://www.walmart.com', NULL, NULL, 'test'),
  ('a2', 'Exxon Mobil Corp', NULL, NULL, 71000, 'test'),
  ('a3', 'Apple', 'apple.com', 'Banking', 132000, 'test'),
  ('a4', 'Unknown Widgets', 'widgets.example', NULL, NULL, 'test')
"""


def test_loading_and_running_hygiene_fills_empty_fields_and_questions_contradictions(
    wh: Warehouse, fortune: FileProvider
) -> None:
    from revstack.agents.engine import add_person

    add_person(wh, "ana", "admin", by="ana")
    with wh.connect() as con:
        con.execute(_CRM)
    summary = load_enrichment(wh, fortune)
    assert summary["stored"] == 3 and summary["accounts"] == 4
    assert load_enrichment(wh, fortune)["stored"] == 3  # loading again replaces, not duplicates
    [result] = run_agents(wh, specs(), only="crm_hygiene")
    assert result.status == "succeeded", result.message
    with wh.connect() as con:
        p = frame(
            con,
            "SELECT * FROM ops.proposals WHERE action_type IN ('enrich_empty_field', 'correct_field')",
        )
    by = {(r["record_id"], r["field"]): r for r in p.iter_rows(named=True)}
    assert json.loads(by[("a1", "industry")]["new_value"]) == "General Merchandisers"
    assert (
        json.loads(by[("a2", "industry")]["new_value"]) == "Petroleum Refining"
    )  # matched by name
    assert json.loads(by[("a2", "industry")]["evidence"])["matched_on"] == "name"
    fix = by[("a3", "industry")]
    assert fix["action_type"] == "correct_field" and fix["tier"] == 2
    ev = json.loads(fix["evidence"])
    assert (
        ev["crm"] == "Banking"
        and ev["provider_value"].startswith("Computers")
        and ev["provider"] == "fortune500"
    )
    assert not any(r == "a4" for r, _ in by)
