"""Real exports load exactly; every kind of bad input is rejected, located, and changes nothing."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from revstack.data.errors import ContractError, InputError
from revstack.data.ingest import ingest
from revstack.data.warehouse import Warehouse, frame
from tests.conftest import ROOT

HUBSPOT = ROOT / "tests" / "fixtures" / "hubspot"
TABLES = [
    "crm.accounts",
    "crm.contacts",
    "crm.opportunities",
    "crm.opportunity_history",
    "crm.users",
    "ops.imports",
    "ops.import_files",
]


def _rows(path: Path) -> int:
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def _snapshot(wh: Warehouse) -> str:
    with wh.connect() as con:
        return hashlib.sha256(
            repr(
                [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES]
            ).encode()
        ).hexdigest()


def test_salesforce_sample_loads_every_record(wh: Warehouse, shared_data: Path) -> None:
    src = shared_data / "salesforce_sample"
    summary = ingest(wh, "salesforce", src)
    assert summary["rows"]["crm.accounts"] == _rows(src / "Account.csv")
    assert summary["rows"]["crm.opportunities"] == _rows(src / "Opportunity.csv")
    assert summary["rows"]["crm.opportunity_history"] == _rows(src / "OpportunityHistory.csv")
    assert summary["not_loaded"] == ["Campaign.csv", "Lead.csv"]
    with wh.connect() as con:
        edge = frame(
            con,
            "SELECT name, website, employees, annual_revenue, source FROM crm.accounts WHERE account_id = '0014600001TvgfWAAR'",
        ).row(0)
        dickenson = frame(
            con,
            "SELECT stage, amount, probability, close_date::VARCHAR, is_closed, account_id FROM crm.opportunities WHERE opportunity_id = '0064600000J5S5TAAV'",
        ).row(0)
        stages = {
            r[0] for r in con.execute("SELECT DISTINCT stage FROM crm.opportunities").fetchall()
        }
        parent = con.execute(
            "SELECT parent_account_id FROM crm.accounts WHERE account_id = '0014600001TvgfWAAR'"
        ).fetchall()[0][0]
    assert edge == ("Edge Communications", "http://edgecomm.com", 1000, 139_000_000.0, "salesforce")
    assert dickenson == ("qualification", 15000, 0.10, "2018-08-22", False, "0014600001TvgfZAAR")
    assert stages <= {
        "prospecting",
        "qualification",
        "discovery",
        "proposal",
        "negotiation",
        "closed_won",
        "closed_lost",
    }
    assert parent is None  # Salesforce's 000000000000000AAA means "none"


def test_maven_loads_and_keeps_its_real_defects(wh: Warehouse, shared_data: Path) -> None:
    src = shared_data / "maven_crm"
    summary = ingest(wh, "maven", src)
    assert summary["rows"]["crm.opportunities"] == _rows(src / "sales_pipeline.csv") == 8800
    assert summary["rows"]["crm.accounts"] == 85
    assert str(summary["as_of"]).startswith("2017-12")
    with wh.connect() as con:
        acme = frame(
            con,
            "SELECT industry, annual_revenue, country FROM crm.accounts WHERE account_id = 'acme-corporation'",
        ).row(0)
        no_account = con.execute(
            "SELECT count(*) FROM crm.opportunities WHERE account_id IS NULL AND NOT is_closed"
        ).fetchall()[0][0]
        won = con.execute(
            "SELECT count(*) FROM crm.opportunities WHERE stage = 'closed_won' AND is_won"
        ).fetchall()[0][0]
        managers = con.execute("SELECT count(*) FROM crm.users WHERE role = 'manager'").fetchall()[
            0
        ][0]
        gtxpro = con.execute(
            "SELECT count(*) FROM crm.opportunities WHERE product = 'GTXPro'"
        ).fetchall()[0][0]
    assert acme == (
        "technolgy",
        1_100_040_000.0,
        "United States",
    )  # the typo stays: hygiene finds it
    assert no_account > 1000
    assert won == 4238
    assert managers == 6
    assert gtxpro > 0


def test_hubspot_export_loads(wh: Warehouse) -> None:
    summary = ingest(wh, "hubspot", HUBSPOT)
    assert summary["rows"] == {"crm.accounts": 3, "crm.contacts": 3, "crm.opportunities": 3}
    with wh.connect() as con:
        deal = con.execute(
            "SELECT stage, forecast_category, is_won FROM crm.opportunities WHERE opportunity_id = '7001'"
        ).fetchall()
    assert deal == [("negotiation", "commit", False)]


def test_hubspot_opt_out_is_the_unsubscribe_flag_not_the_marketing_status(wh: Warehouse) -> None:
    # Grace is a marketing contact who never unsubscribed; Linus is a non-marketing contact
    # who unsubscribed from all email. The marketing status is billing, not consent.
    ingest(wh, "hubspot", HUBSPOT)
    with wh.connect() as con:
        got = dict(con.execute("SELECT contact_id, email_opt_out FROM crm.contacts").fetchall())
    assert got == {"501": False, "502": True, "503": False}


def _break(src: Path, file: str, edit) -> None:
    path = src / file
    edit(path)


def _replace(old: str, new: str, count: int = 1):
    def edit(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path.name}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    return edit


def _write_bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def _first_lines(n: int):
    def edit(path: Path) -> None:
        path.write_text(
            "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:n]),
            encoding="utf-8",
        )

    return edit


def _latin1(path: Path) -> None:
    text = path.read_text(encoding="utf-8").replace("Acme Corporation", "Acmé Corporation")
    path.write_bytes(text.encode("latin-1"))


def _semicolons(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")


def _missing_column(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text(
        "\n".join(",".join(line.split(",")[1:]) for line in lines) + "\n", encoding="utf-8"
    )


def _records(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _rewrite(path: Path, records: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(records)


def _set_cell(line: int, column: str, value: str):
    """Put ``value`` into one cell (line as the importer counts: header = 1, -1 = last)."""

    def edit(path: Path) -> None:
        records = _records(path)
        records[line - 1 if line > 0 else line][records[0].index(column)] = value
        _rewrite(path, records)

    return edit


def _cut_row(line: int, keep: int):
    """Cut one record short after ``keep`` fields, as a truncated download would."""

    def edit(path: Path) -> None:
        records = _records(path)
        index = line - 1 if line > 0 else line
        records[index] = records[index][:keep]
        _rewrite(path, records)

    return edit


BAD = [
    # (dataset, format, file, edit, expected file, line, column, message)
    (
        "salesforce_sample",
        "salesforce",
        "Opportunity.csv",
        _cut_row(-1, 9),
        "Opportunity.csv",
        32,
        "Probability",
        "the row has 9 of the header's 40 fields: it ends after 'Amount'",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _cut_row(6, 4),
        "sales_pipeline.csv",
        6,
        "deal_stage",
        "the row has 4 of the header's 8 fields",
    ),
    (
        "maven_crm",
        "maven",
        "accounts.csv",
        _replace("Betasoloin,", "Beta\x00soloin,"),
        "accounts.csv",
        3,
        "account",
        "NUL byte",
    ),
    (
        "salesforce_sample",
        "salesforce",
        "Opportunity.csv",
        _set_cell(2, "Probability", "250"),
        "Opportunity.csv",
        2,
        "Probability",
        "'250' is not a percentage between 0 and 100",
    ),
    *[
        (
            "maven_crm",
            "maven",
            "sales_pipeline.csv",
            _replace(",2017-03-01,1054", f",2017-03-01,{value}"),
            "sales_pipeline.csv",
            2,
            "close_value",
            message,
        )
        for value, message in [
            ("NaN", "cannot read 'NaN' as an amount"),
            ("inf", "cannot read 'inf' as an amount"),
            ("-inf", "cannot read '-inf' as an amount"),
            ("1e20", "amount '1e20' is too large"),
        ]
    ],
    (
        "salesforce_sample",
        "salesforce",
        "Account.csv",
        _set_cell(2, "NumberOfEmployees", "1e12"),
        "Account.csv",
        2,
        "NumberOfEmployees",
        "'1e12' is too large for a whole number",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace(",Cancity,Won,2016-10-20", ",Cancity,,2016-10-20"),
        "sales_pipeline.csv",
        2,
        "deal_stage",
        "stage is empty; every row needs one",
    ),
    (
        "salesforce_sample",
        "salesforce",
        "Account.csv",
        _set_cell(2, "Name", ""),
        "Account.csv",
        2,
        "Name",
        "name is empty; every row needs one",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace(
            "1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,2016-10-20,2017-03-01,1054",
            "1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,2016-10-20,2017-03-01,lots",
        ),
        "sales_pipeline.csv",
        2,
        "close_value",
        "cannot read 'lots'",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace("2016-10-20,2017-03-01,1054", "2016-10-20,2017-31-01,1054"),
        "sales_pipeline.csv",
        2,
        "close_date",
        "cannot read '2017-31-01' as a date",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace(",2017-03-01,1054", ",2017-03-01,-1054"),
        "sales_pipeline.csv",
        2,
        "close_value",
        "negative amount",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace("Z063OYW0,", "1C1I7A6R,"),
        "sales_pipeline.csv",
        3,
        "opportunity_id",
        "duplicate id '1C1I7A6R'",
    ),
    (
        "maven_crm",
        "maven",
        "sales_pipeline.csv",
        _replace(",Won,2016-10-20", ",Wonn,2016-10-20"),
        "sales_pipeline.csv",
        2,
        "deal_stage",
        "unknown stage 'Wonn'",
    ),
    ("maven_crm", "maven", "accounts.csv", _latin1, "accounts.csv", 2, None, "not UTF-8"),
    (
        "maven_crm",
        "maven",
        "sales_teams.csv",
        _semicolons,
        "sales_teams.csv",
        1,
        "sales_agent;manager;regional_office",
        "delimiter",
    ),
    (
        "maven_crm",
        "maven",
        "sales_teams.csv",
        _missing_column,
        "sales_teams.csv",
        1,
        "sales_agent",
        "missing column",
    ),
    ("maven_crm", "maven", "accounts.csv", _write_bytes(b""), "accounts.csv", None, None, "empty"),
    ("maven_crm", "maven", "accounts.csv", _first_lines(1), "accounts.csv", 2, None, "no rows"),
    (
        "maven_crm",
        "maven",
        "accounts.csv",
        lambda p: p.unlink(),
        "accounts.csv",
        None,
        None,
        "missing file",
    ),
    (
        "salesforce_sample",
        "salesforce",
        "Opportunity.csv",
        _replace('"Amount"', '"Amount","Surprise"'),
        "Opportunity.csv",
        1,
        "Surprise",
        "unknown column",
    ),
    (
        "salesforce_sample",
        "salesforce",
        "Account.csv",
        _replace('"139000000"', '"1.3e8x"'),
        "Account.csv",
        2,
        "AnnualRevenue",
        "cannot read '1.3e8x'",
    ),
]


@pytest.mark.parametrize(
    ("dataset", "fmt", "file", "edit", "where", "line", "column", "message"),
    BAD,
    ids=[b[-1] for b in BAD],
)
@pytest.mark.slow
def test_bad_input_is_rejected_located_and_changes_nothing(
    wh: Warehouse,
    shared_data: Path,
    tmp_path: Path,
    dataset,
    fmt,
    file,
    edit,
    where,
    line,
    column,
    message,
) -> None:
    ingest(wh, "hubspot", HUBSPOT)  # something already in the warehouse that must survive untouched
    before = _snapshot(wh)
    src = tmp_path / dataset
    shutil.copytree(shared_data / dataset, src)
    _break(src, file, edit)
    with pytest.raises(InputError) as caught:
        ingest(wh, fmt, src)
    hits = [
        p
        for p in caught.value.problems
        if p.file.endswith(where)
        and message in p.message
        and (line is None or p.line == line)
        and (column is None or p.column == column)
    ]
    assert hits, (
        f"no problem at {where}:{line} [{column}] {message!r} in {caught.value.problems[:5]}"
    )
    assert "nothing was written" in str(caught.value)
    assert _snapshot(wh) == before


def test_every_problem_is_reported_not_just_the_first(
    wh: Warehouse, shared_data: Path, tmp_path: Path
) -> None:
    src = tmp_path / "maven"
    shutil.copytree(shared_data / "maven_crm", src)
    _replace(",2017-03-01,1054", ",2017-03-01,-5")(src / "sales_pipeline.csv")
    _replace(
        "Z063OYW0,Darcel Schlecht,GTXPro,Isdom,Won,2016-10-25",
        "Z063OYW0,Darcel Schlecht,GTXPro,Isdom,Won,yesterday",
    )(src / "sales_pipeline.csv")
    with pytest.raises(InputError) as caught:
        ingest(wh, "maven", src)
    located = {(p.line, p.column) for p in caught.value.problems}
    assert {(2, "close_value"), (3, "engage_date")} <= located


def test_the_same_export_twice_is_refused(wh: Warehouse, shared_data: Path) -> None:
    ingest(wh, "maven", shared_data / "maven_crm")
    before = _snapshot(wh)
    with pytest.raises(InputError, match="already imported"):
        ingest(wh, "maven", shared_data / "maven_crm")
    assert _snapshot(wh) == before


def test_a_newer_export_updates_in_place(wh: Warehouse, tmp_path: Path) -> None:
    ingest(wh, "hubspot", HUBSPOT)
    newer = tmp_path / "hubspot"
    shutil.copytree(HUBSPOT, newer)
    _replace(
        '"7002","Contoso - Analytics","Qualified To Buy","120000"',
        '"7002","Contoso - Analytics","Contract Sent","135000"',
    )(newer / "deals.csv")
    summary = ingest(wh, "hubspot", newer)
    with wh.connect() as con:
        deal = con.execute(
            "SELECT stage, amount, import_id FROM crm.opportunities WHERE opportunity_id = '7002'"
        ).fetchall()
        count = con.execute("SELECT count(*) FROM crm.opportunities").fetchall()[0][0]
    assert deal == [("negotiation", 135000, summary["import_id"])]
    assert count == 3


def test_ids_of_another_system_are_refused(wh: Warehouse, tmp_path: Path) -> None:
    ingest(wh, "hubspot", HUBSPOT)
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "accounts.csv").write_text(
        "account,sector,year_established,revenue,employees,office_location,subsidiary_of\n9001x,software,2000,1.5,10,United States,\n"
    )
    (clash / "sales_teams.csv").write_text(
        "sales_agent,manager,regional_office\nAna Silva,Boss One,West\n"
    )
    (clash / "sales_pipeline.csv").write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n7001,Ana Silva,GTX,9001x,Won,2025-01-01,2025-02-01,10\n"
    )
    with pytest.raises(InputError) as caught:
        ingest(wh, "maven", clash)
    assert any(
        "already belongs to a hubspot record" in p.message and p.line == 2
        for p in caught.value.problems
    )


def test_unknown_format_and_directory_are_named(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="unknown format 'pipedrive'"):
        ingest(wh, "pipedrive", HUBSPOT)
    with pytest.raises(InputError, match="no such directory"):
        ingest(wh, "hubspot", tmp_path / "nope")


@pytest.mark.parametrize("value", ["X", "checked", "Opted Out"])
def test_an_opt_out_nobody_can_read_is_refused_not_taken_as_may_contact(
    wh: Warehouse, shared_data: Path, tmp_path: Path, value: str
) -> None:
    ingest(wh, "hubspot", HUBSPOT)
    before = _snapshot(wh)
    src = tmp_path / "sf"
    shutil.copytree(shared_data / "salesforce_sample", src)
    _set_cell(3, "HasOptedOutOfEmail", value)(src / "Contact.csv")
    with pytest.raises(InputError) as caught:
        ingest(wh, "salesforce", src)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.column) == ("Contact.csv", 3, "HasOptedOutOfEmail")
    assert f"cannot read {value!r} as yes or no" in problem.message
    assert "true/false, yes/no, y/n, 1/0, t/f" in problem.message
    assert _snapshot(wh) == before


def test_opt_outs_read_every_plain_spelling_of_yes_and_no(
    wh: Warehouse, shared_data: Path, tmp_path: Path
) -> None:
    src = tmp_path / "sf"
    shutil.copytree(shared_data / "salesforce_sample", src)
    spelled = {" Yes ": True, "TRUE": True, "y": True, "T": True, "1 ": True}
    spelled |= {"No": False, "false": False, "N": False, " f": False, "0": False}
    contacts = src / "Contact.csv"
    for line, value in enumerate(spelled, start=2):
        _set_cell(line, "HasOptedOutOfEmail", value)(contacts)
        _set_cell(line, "DoNotCall", value)(contacts)
    ids = [r[0] for r in _records(contacts)[1 : 1 + len(spelled)]]
    ingest(wh, "salesforce", src)
    with wh.connect() as con:
        got = dict(
            con.execute(
                "SELECT contact_id, [email_opt_out, do_not_contact] FROM crm.contacts"
            ).fetchall()
        )
    assert [got[i] for i in ids] == [[v, v] for v in spelled.values()]


def test_a_mapping_may_count_unreadable_opt_outs_as_opted_out(
    wh: Warehouse, shared_data: Path, tmp_path: Path
) -> None:
    src = tmp_path / "sf"
    shutil.copytree(shared_data / "salesforce_sample", src)
    _set_cell(2, "HasOptedOutOfEmail", "Opted Out")(src / "Contact.csv")
    _set_cell(3, "DoNotCall", "checked")(src / "Contact.csv")
    ids = [r[0] for r in _records(src / "Contact.csv")[1:4]]
    shipped = yaml.safe_load((ROOT / "data" / "mappings" / "salesforce.yaml").read_text())
    shipped["objects"]["contacts"]["unknown_is_opted_out"] = ["email_opt_out", "do_not_contact"]
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(shipped))
    ingest(wh, "salesforce", src, mapping=mine)
    with wh.connect() as con:
        got = dict(
            con.execute(
                "SELECT contact_id, [email_opt_out, do_not_contact] FROM crm.contacts"
            ).fetchall()
        )
    assert [got[i] for i in ids] == [[True, False], [False, True], [False, False]]
    shipped["objects"]["contacts"]["unknown_is_opted_out"] = ["first_name"]
    mine.write_text(yaml.safe_dump(shipped))
    with pytest.raises(ContractError, match="unknown_is_opted_out names 'first_name'"):
        ingest(wh, "salesforce", src, mapping=mine)


def _status_counts(db: Path) -> dict[str, int]:
    import json

    done = _cli("status", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["tables"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "revstack", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_the_cli_refuses_bad_exports_in_one_line_and_changes_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    db = tmp_path / "cli.duckdb"
    assert _cli("ingest", "hubspot", str(HUBSPOT), "--db", str(db)).returncode == 0
    before = _status_counts(db)
    cases = [
        (
            "salesforce_sample",
            "Contact.csv",
            _set_cell(3, "HasOptedOutOfEmail", "X"),
            "Contact.csv:3 [HasOptedOutOfEmail]: cannot read 'X' as yes or no",
        ),
        (
            "salesforce_sample",
            "Opportunity.csv",
            _cut_row(-1, 9),
            "Opportunity.csv:32 [Probability]: the row has 9 of the header's 40 fields",
        ),
        (
            "maven_crm",
            "sales_pipeline.csv",
            _replace(",2017-03-01,1054", ",2017-03-01,NaN"),
            "sales_pipeline.csv:2 [close_value]: cannot read 'NaN' as an amount",
        ),
    ]
    for dataset, file, edit, expected in cases:
        src = tmp_path / f"{dataset}-{file}"
        shutil.copytree(shared_data / dataset, src)
        edit(src / file)
        fmt = "salesforce" if dataset.startswith("salesforce") else "maven"
        done = _cli("ingest", fmt, str(src), "--db", str(db))
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr.splitlines()[0] and "Traceback" not in done.stderr
        assert _status_counts(db) == before


def test_a_contacts_file_without_its_opt_out_column_is_refused(
    wh: Warehouse, shared_data: Path, tmp_path: Path
) -> None:
    ingest(wh, "hubspot", HUBSPOT)
    before = _snapshot(wh)
    src = tmp_path / "sf"
    shutil.copytree(shared_data / "salesforce_sample", src)
    contacts = pl.read_csv(src / "Contact.csv", infer_schema=False)
    contacts.drop("HasOptedOutOfEmail").write_csv(src / "Contact.csv")
    with pytest.raises(InputError) as caught:
        ingest(wh, "salesforce", src)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (
        "Contact.csv",
        None,
        "HasOptedOutOfEmail",
    )
    assert "who may be emailed cannot be told" in problem.message
    assert _snapshot(wh) == before
