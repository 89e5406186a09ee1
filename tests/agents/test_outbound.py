"""Outbound on the generated small company: each guardrail blocks its planted bad case,
drafts are tier-3 tasks, no code path sends, and approving only records a decision."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import (
    EngineError,
    add_person,
    approve_draft,
    edit_draft,
    export_drafts,
    load_outcomes,
    run_agents,
    set_policy,
)
from revstack.agents.outbound import GUARDRAILS, MAX_PER_ACCOUNT, Outbound
from revstack.agents.registry import specs
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics import outbound as outbound_metrics

ROOT = Path(__file__).resolve().parents[2]
NETWORK = {
    "smtplib",
    "socket",
    "ssl",
    "urllib",
    "http",
    "requests",
    "httpx",
    "aiohttp",
    "email",
    "subprocess",
    "revstack.agents._llm",
}


def _copy(src: Warehouse, dst: Path) -> Warehouse:
    release_all()
    shutil.copy(src.path, dst)
    return Warehouse(dst)


def _spec(factory=Outbound, policy: pl.DataFrame | None = None):
    spec = next(s for s in specs() if s.name == "outbound")
    return dataclasses.replace(
        spec, factory=factory, policy=spec.policy if policy is None else policy
    )


def _run(wh: Warehouse, **kw: object):
    [result] = run_agents(wh, [_spec(**kw)], only="outbound")
    assert result.status == "succeeded", result.message
    return result


def _q(wh: Warehouse, sql: str, params: object = None) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, sql, params)


@pytest.fixture(scope="module")
def clean(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A first run on the unchanged company: who gets drafts when nothing is planted."""
    wh = _copy(small_company, tmp_path_factory.mktemp("outbound") / "clean.duckdb")
    add_person(wh, "ana", "admin", by="ana")
    _run(wh)
    release_all()
    return wh


def _drafts(wh: Warehouse) -> pl.DataFrame:
    return _q(wh, "SELECT * FROM ops.drafts ORDER BY draft_id")


def test_drafts_are_tier_three_tasks_grounded_in_rows(clean: Warehouse) -> None:
    d = _drafts(clean)
    assert len(d) > 50 and set(d["sequence_step"]) >= {1, 2}
    p = _q(clean, "SELECT * FROM ops.proposals WHERE agent = 'outbound'")
    assert len(p) == len(d) and (p["tier"] == 3).all() and (p["status"] == "task").all()
    for row in d.head(60).iter_rows(named=True):
        for f in json.loads(row["sources"]):
            key, value = next(iter(f["key"].items()))
            stored = _q(
                clean,
                f'SELECT "{f["field"]}"::VARCHAR AS v FROM {f["table"]} WHERE {key} = $k',
                {"k": value},
            )
            assert len(stored) == 1 and str(stored["v"][0]).startswith(str(f["value"])[:19]), f
        assert (
            "{" not in row["body"]
            and row["email"] in _q(clean, "SELECT email FROM crm.contacts")["email"].to_list()
        )


def test_each_guardrail_blocks_its_planted_case(
    clean: Warehouse, small_company: Warehouse, tmp_path: Path
) -> None:
    first = (
        _drafts(clean)
        .filter(pl.col("sequence_step") == 1)
        .sort("contact_id")["contact_id"]
        .to_list()
    )
    assert len(first) >= 6
    a, b, c, d, e, f = first[:6]
    wh = _copy(small_company, tmp_path / "planted.duckdb")  # the company before any run
    with wh.connect() as con:
        con.execute("UPDATE crm.contacts SET first_name = NULL WHERE contact_id = $c", {"c": a})
        con.execute("UPDATE crm.contacts SET do_not_contact = TRUE WHERE contact_id = $c", {"c": b})
        con.execute(
            "UPDATE crm.contacts SET email = 'not-an-email' WHERE contact_id = $c", {"c": d}
        )
        con.execute("UPDATE crm.contacts SET email_bounced = TRUE WHERE contact_id = $c", {"c": e})
        # another record of c's person (same email) who opted out; and a second record of f
        con.execute(
            "INSERT INTO crm.contacts SELECT * REPLACE ('X' || contact_id AS contact_id, TRUE AS email_opt_out, "
            "NULL AS account_id) FROM crm.contacts WHERE contact_id = $c",
            {"c": c},
        )
        # ('0...' sorts first, so the copy is tried before the original)
        con.execute(
            "INSERT INTO crm.contacts SELECT * REPLACE ('0' || contact_id AS contact_id) "
            "FROM crm.contacts WHERE contact_id = $c",
            {"c": f},
        )
    _run(wh)
    blocks = _q(wh, "SELECT contact_id, guardrail, detail FROM ops.draft_blocks")
    got = {(r["contact_id"], r["guardrail"]) for r in blocks.iter_rows(named=True)}
    assert (a, "placeholder") in got
    assert (b, "do_not_contact") in got
    assert (c, "do_not_contact") in got
    assert (d, "bad_email") in got and (e, "bad_email") in got
    assert (f, "duplicate") in got
    queued = set(_drafts(wh)["contact_id"])
    assert not {a, b, c, d, e} & queued
    assert f"0{f}" in queued and f not in queued  # one draft for the person, not two
    detail = blocks.filter((pl.col("contact_id") == c) & (pl.col("guardrail") == "do_not_contact"))[
        "detail"
    ][0]
    assert detail == f"another record of this person: X{c} is marked opted out of email"


def test_a_rewrite_that_adds_a_fact_is_blocked(small_company: Warehouse, tmp_path: Path) -> None:
    wh = _copy(small_company, tmp_path / "rewrite.duckdb")

    def invents(texts):
        return [texts[0], texts[1] + "\n\nP.S. Loved your keynote at Dreamforce 2025."]

    result = _run(wh, factory=lambda: Outbound(rewriter=invents))
    assert result.counts.get("task", 0) == 0 and _drafts(wh).is_empty()
    blocks = _q(
        wh, "SELECT guardrail, detail FROM ops.draft_blocks WHERE guardrail = 'untraceable'"
    )
    assert len(blocks) > 50 and blocks["detail"].str.starts_with("rewrite:").all()


def test_a_rerun_drafts_nobody_twice(clean: Warehouse, tmp_path: Path) -> None:
    wh = _copy(clean, tmp_path / "rerun.duckdb")
    before = _drafts(wh)
    _run(wh)  # people held back by the per-sender cap last time may get their turn now
    after = _drafts(wh)
    assert after.select("recipient", "sequence", "sequence_step").is_unique().all()
    assert after.select("contact_id", "sequence", "sequence_step").is_unique().all()
    dup = _q(wh, "SELECT contact_id FROM ops.draft_blocks WHERE guardrail = 'duplicate'")
    assert set(before["contact_id"]) <= set(dup["contact_id"])
    assert after.group_by("account_id").len()["len"].max() <= MAX_PER_ACCOUNT


# -- never sent ------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_outbound_code_can_send() -> None:
    files = [
        *(ROOT / "agents" / "outbound").glob("*.py"),
        ROOT / "agents" / "engine" / "_drafts.py",
        ROOT / "revstack" / "_outbound_cmds.py",
    ]
    for path in files:
        bad = {n for n in _imports(path) if n.split(".")[0] in NETWORK or n in NETWORK}
        assert not bad, f"{path.name} imports {bad}"
        text = path.read_text()
        assert not any(w in text for w in ("smtplib", "sendmail", "urlopen", "requests.post")), path
    # and importing them pulls in nothing that could send mail or speak HTTP
    probe = (
        "import sys, agents.outbound, agents.engine._drafts, revstack._outbound_cmds; "
        "print(sorted(m for m in ('smtplib', 'http.client', 'urllib.request', 'revstack.agents._llm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_a_run_opens_no_connection(
    small_company: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network is off in this test")

    wh = _copy(small_company, tmp_path / "offline.duckdb")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    result = _run(wh)
    assert result.counts["task"] > 50 and attempts == []


def _crm_digest(wh: Warehouse) -> str:
    parts = [
        str(_q(wh, f"SELECT * FROM crm.{t} ORDER BY ALL").hash_rows().sum())
        for t in ("accounts", "contacts", "opportunities", "activities")
    ]
    return hashlib.md5("|".join(parts).encode()).hexdigest()


def test_approving_a_draft_only_records_it_and_the_export_needs_a_person(
    clean: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(clean, tmp_path / "approve.duckdb")
    crm_before = _crm_digest(wh)
    d = _drafts(wh)
    one, two, three = d["draft_id"][:3]
    edit_draft(wh, one, by="ana", body="Hi,\n\nA shorter note.\n\nBest")
    approve_draft(wh, one, by="ana")
    approve_draft(wh, two, by="ana")
    approve_draft(wh, three, by="ana", approve=False, note="not this quarter")
    with pytest.raises(EngineError, match="only an undecided draft"):
        edit_draft(wh, one, by="ana", body="too late")
    assert _crm_digest(wh) == crm_before  # the engine wrote nothing to the CRM
    assert _drafts(wh).equals(d)  # nor to the drafts: the edit is its own row
    out = tmp_path / "seq.csv"
    assert export_drafts(wh, out) == 2
    rows = pl.read_csv(out)
    assert set(rows["External ID"]) == {one, two}
    assert rows.filter(pl.col("External ID") == one)["Body"][0] == "Hi,\n\nA shorter note.\n\nBest"
    with wh.connect() as con:
        m = outbound_metrics.report(con, None)
    assert m["decisions"]["approved"] == 2 and m["decisions"]["rejected"] == 1
    assert m["decisions"]["edited"] == 1 and m["decisions"]["approved_edited"] == 1
    assert m["replies"]["reply_rate"] is None  # nothing reported back yet
    report = tmp_path / "report.csv"
    report.write_text(
        f"External ID,Event,Occurred At\n{one},sent,2026-10-02T09:00\n{two},sent,2026-10-02T09:00\n"
        f"{one},replied,2026-10-03T10:00\n"
    )
    assert load_outcomes(wh, report) == 3
    with wh.connect() as con:
        assert outbound_metrics.replies(con)["reply_rate"] == 0.5


def test_tier_three_holds_whatever_the_configuration(
    small_company: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(small_company, tmp_path / "config.duckdb")
    add_person(wh, "ana", "admin", by="ana")
    with pytest.raises(EngineError, match="tier 3"):
        set_policy(
            wh,
            agent="outbound",
            action_type="draft_email",
            tier=1,
            by="ana",
            reason="go faster",
            contract_tier=3,
        )
    with wh.connect() as con:  # a policy row slipped in by hand changes nothing either
        con.execute(
            "INSERT INTO ops.policy VALUES ('P-x', 'outbound', 'draft_email', 1, 0.0, 'ana', now(), 'x', TRUE)"
        )
    result = _run(wh)
    assert result.counts["task"] > 50 and result.counts.get("applied", 0) == 0
    # even a contract edited to tier 1 only records drafts: none is exported without a person
    wh = _copy(small_company, tmp_path / "loose.duckdb")
    result = _run(wh, policy=_spec().policy.with_columns(tier=pl.lit(1)))
    assert result.counts["applied"] > 50
    assert export_drafts(wh, tmp_path / "none.csv") == 0


def test_metrics_know_every_guardrail(clean: Warehouse) -> None:
    with clean.connect() as con:
        m = outbound_metrics.report(con, None)
    assert m["drafts"]["drafts"] == len(_drafts(clean))
    blocks = _q(clean, "SELECT guardrail, count(*) AS n FROM ops.draft_blocks GROUP BY ALL")
    assert {g: m["blocked"][g] for g in GUARDRAILS if m["blocked"][g]} == dict(blocks.iter_rows())


PAYLOAD = "=cmd|' /C calc'!A0"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def test_no_draft_starts_with_a_value_that_would_run_as_a_formula(
    clean: Warehouse, small_company: Warehouse, tmp_path: Path
) -> None:
    expansion = _drafts(clean).filter(
        (pl.col("sequence") == "expansion") & (pl.col("sequence_step") == 1)
    )
    assert len(expansion) and expansion["subject"][0].endswith(" and what comes next")
    account, contact = expansion.select("account_id", "contact_id").row(0)
    wh = _copy(small_company, tmp_path / "formula.duckdb")  # the company before any run
    with wh.connect() as con:
        con.execute(
            "UPDATE crm.accounts SET name = $n WHERE account_id = $a", {"n": PAYLOAD, "a": account}
        )
    _run(wh)
    drafts = _drafts(wh)
    for text in drafts["subject"].to_list() + drafts["body"].to_list():
        assert not text.startswith(FORMULA_START), text
    assert contact not in set(drafts["contact_id"])
    blocks = _q(
        wh, "SELECT guardrail, detail FROM ops.draft_blocks WHERE contact_id = $c", {"c": contact}
    )
    assert (
        dict(blocks.iter_rows())["formula"]
        == "the subject would start with '=', which a spreadsheet runs as a formula"
    )


def test_the_sequencer_export_neutralises_formula_cells(clean: Warehouse, tmp_path: Path) -> None:
    wh = _copy(clean, tmp_path / "export.duckdb")
    one = _drafts(wh).filter(pl.col("sequence_step") == 1).row(0, named=True)
    approve_draft(wh, one["draft_id"], by="ana")
    with wh.connect() as con:  # values someone typed into the CRM after the draft was made
        con.execute(
            "UPDATE crm.accounts SET name = $n WHERE account_id = $a",
            {"n": PAYLOAD, "a": one["account_id"]},
        )
        con.execute(
            "UPDATE crm.contacts SET title = '@VP Sales' WHERE contact_id = $c",
            {"c": one["contact_id"]},
        )
    out = tmp_path / "seq.csv"
    assert export_drafts(wh, out) == 1
    [row] = pl.read_csv(out, infer_schema=False).to_dicts()
    assert row["Company"] == "'" + PAYLOAD and row["Title"] == "'@VP Sales"
    assert row["Sequence Step"] == "1" and row["External ID"] == one["draft_id"]


def test_drafts_to_people_truth_says_had_left_are_counted_and_marked_leavers_get_none(
    clean: Warehouse, tmp_path: Path
) -> None:
    with clean.connect() as con:
        stale = outbound_metrics.stale_recipients(con)
    assert stale is not None and stale["drafts"] == len(_drafts(clean))
    # a leaver the CRM marks (inactive or bounced) is stopped by the guardrails
    assert stale["to_leavers_marked"] == 0
    # plant a silent departure, a day before the data, on a drafted person nobody left
    wh = _copy(clean, tmp_path / "planted.duckdb")
    gone = set(_q(wh, "SELECT contact_id FROM truth.contact_changes")["contact_id"])
    pick = _drafts(wh).filter(~pl.col("contact_id").is_in(list(gone))).row(0, named=True)
    with wh.connect() as con:
        con.execute(
            "INSERT INTO truth.contact_changes VALUES ($c, 'is_active', $at, 'true', 'false', FALSE)",
            {"c": pick["contact_id"], "at": pick["data_as_of"] - dt.timedelta(days=1)},
        )
        planted = outbound_metrics.stale_recipients(con)
    release_all()
    assert planted["to_leavers"] == stale["to_leavers"] + 1
    assert planted["to_leavers_silent"] == stale["to_leavers_silent"] + 1
