"""The CLI as a person meets it: one-line errors, exit codes, JSON for scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agents.conftest import engine_wh, run_wh  # noqa: F401 - shared fixtures
from tests.conftest import ROOT, revstack_cli

_run = revstack_cli


@pytest.mark.slow
def test_generate_audit_and_status_speak_json(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    gen = _run("generate", "--scale", "small", "--seed", "2", "--json", "--report", db=db)
    assert gen.returncode == 0, gen.stderr
    summary = json.loads(gen.stdout)
    assert summary["rows"]["crm.opportunities"] == 2000
    realism = summary["realism"]  # --report: the realism table (docs/generator.md)
    assert len(realism) > 20 and all(r["figure"] is not None for r in realism)
    status = json.loads(_run("status", "--json", db=db).stdout)
    assert status["tables"]["crm.opportunities"] == 2000 and status["as_of"].startswith(
        "2026-10-01"
    )
    audit = _run("audit", "--json", db=db)
    assert audit.returncode == 0
    assert json.loads(audit.stdout)["truth"]["duplicate_account"]["detected"] > 0
    agents = json.loads(_run("agents", "--json", db=db).stdout)
    assert {a["agent"] for a in agents} == {
        "crm_hygiene",
        "pipeline_health",
        "deal_prep",
        "forecast",
        "outbound",
    }
    assert _run("people", "add", "ana", "--role", "admin", "--by", "ana", db=db).returncode == 0
    # the hygiene agent alone: its measures are what is read here, and the whole run
    # through the CLI is test_engine_commands_run_end_to_end's (the forecast's full
    # replay is most of a run's time)
    assert _run("run", "--agent", "crm_hygiene", db=db).returncode == 0
    metrics = json.loads(_run("metrics", "--agent", "crm_hygiene", "--json", db=db).stdout)
    actions = {a["action_type"]: a for a in metrics["engine"]["actions"]}
    assert (
        actions["enrich_empty_field"]["proposals"]
        >= actions["enrich_empty_field"]["auto_applied"]
        > 0
    )
    assert metrics["engine"]["runs"][0]["runs"] == 1
    unknown = _run("metrics", "--agent", "nobody", db=db)
    assert unknown.returncode == 2 and "unknown agent 'nobody'" in unknown.stderr


@pytest.mark.slow
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    bad = tmp_path / "export"
    bad.mkdir()
    (bad / "accounts.csv").write_text("")
    result = _run("ingest", "maven", str(bad), db=db)
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("revstack ingest: error: maven import of") and "accounts.csv" in first
    assert "Traceback" not in result.stderr
    again = _run("generate", "--scale", "small", db=db)
    assert again.returncode == 0
    refused = _run("generate", "--scale", "small", db=db)
    assert refused.returncode == 2 and "--replace" in refused.stderr


def test_a_newer_warehouse_is_refused_cleanly(tmp_path: Path) -> None:
    import duckdb

    from revstack.data.warehouse import Warehouse, release_all

    db = tmp_path / "future.duckdb"
    with Warehouse(db).connect():  # status only reads: it no longer makes the file
        pass
    release_all()
    assert _run("status", db=db).returncode == 0
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO ops.schema_version (version, name) VALUES (99, 'future')")
    con.close()
    result = _run("status", db=db)
    assert result.returncode == 1
    assert "schema version 99" in result.stderr and "upgrade revstack" in result.stderr


@pytest.mark.slow
def test_engine_commands_run_end_to_end(_small_run_built: Path, tmp_path: Path) -> None:
    # The small company as `revstack generate`, `revstack people add` and `revstack run
    # --json` left it: the session's one run of all five agents (tests/conftest.py) is
    # made through the command line, and what it printed is kept beside it.
    db = tmp_path / "engine.duckdb"
    shutil.copy(_small_run_built, db)
    results = json.loads(_small_run_built.with_suffix(".json").read_text())
    assert {r["agent"] for r in results} >= {"crm_hygiene", "forecast"}
    hygiene = next(r for r in results if r["agent"] == "crm_hygiene")
    assert hygiene["status"] == "succeeded" and hygiene["counts"]["applied"] > 0
    pending = json.loads(_run("proposals", "--json", db=db).stdout)
    assert pending and {p["status"] for p in pending} == {"pending"}
    verify = _run("log", "verify", db=db)
    assert verify.returncode == 0 and "hash chain intact" in verify.stdout
    export = _run(
        "export-changes", "--format", "salesforce", "--out", str(tmp_path / "out"), "--json", db=db
    )
    assert export.returncode == 0
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    written, writes = con.execute(  # output-only flags are applied too, but write no field
        "SELECT count(DISTINCT record_id) FILTER (WHERE object_type = 'accounts'), count(*) "
        "FROM ops.proposals WHERE status = 'applied' AND field IS NOT NULL"
    ).fetchall()[0]
    con.close()
    assert written > 0 and json.loads(export.stdout)["Account_update.csv"] == written
    dry = _run(
        "rollback",
        "--agent",
        "crm_hygiene",
        "--since",
        "3d",
        "--by",
        "ana",
        "--dry-run",
        "--json",
        db=db,
    )
    assert dry.returncode == 0 and len(json.loads(dry.stdout)["restored"]) == writes
    refused = _run("rollback", "--agent", "crm_hygiene", "--since", "3d", "--by", "nobody", db=db)
    assert refused.returncode == 2 and "not a known person" in refused.stderr
    # What cron runs: --schedule records a schedule event first, and the agent run
    # takes it (one agent here, the cheapest: the run above is the whole stack's)
    tick = _run("run", "--schedule", "--agent", "outbound", "--json", db=db)
    assert tick.returncode == 0, tick.stderr
    [outbound] = json.loads(tick.stdout)
    assert outbound["status"] == "succeeded" and outbound["events"] >= 1
    con = duckdb.connect(str(db), read_only=True)
    taken = con.execute(
        "SELECT c.run_id FROM ops.events e JOIN ops.event_consumption c USING (event_id) "
        "WHERE e.kind = 'schedule' AND c.agent = 'outbound'"
    ).fetchall()
    con.close()
    assert taken == [(outbound["run_id"],)]


@pytest.mark.slow
def test_batches_from_the_command_line(run_wh) -> None:  # noqa: F811 - the fixture
    from revstack.agents.engine import decide, sample_cards
    from revstack.data.warehouse import release_all
    from tests.agents.test_batches import _queue

    _queue(run_wh, 120)
    release_all()
    db = run_wh.path
    opened = _run("batches", "open", "--by", "rev", "--seed", "3", "--json", db=db)
    assert opened.returncode == 0, opened.stderr
    [batch] = json.loads(opened.stdout)
    early = _run("batches", "approve", batch["batch_id"], "--by", "ana", db=db)
    assert early.returncode == 2 and "decided whole" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1
    with run_wh.connect() as con:
        cards = sample_cards(con, batch["batch_id"])["proposal_id"].to_list()
    for pid in cards:
        decide(run_wh, pid, approve=True, by="rev")
    release_all()
    status = json.loads(_run("batches", "--json", db=db).stdout)
    assert status["batches"][0]["meets_bar"] is True
    assert status["clearing"]["by_batches"] == 1  # only the one decision on the rest is left
    done = _run("batches", "approve", batch["batch_id"], "--by", "ana", "--json", db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"approved": 120 - len(cards)}
    with run_wh.connect() as con:  # a map as a run stores it (tests/agents/test_calibration)
        con.execute(
            "INSERT INTO ops.calibrations VALUES ('R000001', 'crm_hygiene', 'enrich_firmographics', "
            "40, 30, -0.5, 0.8, now())"
        )
    release_all()
    trust = json.loads(_run("trust", "--json", db=db).stdout)
    assert set(trust) >= {"suggestions", "graduations", "calibration", "reviewers", "demotions"}
    [fit] = trust["calibration_maps"]
    assert (fit["action_type"], fit["judged"], fit["slope"]) == ("enrich_firmographics", 40, 0.8)
    shown = _run("trust", db=db)
    assert (
        shown.returncode == 0
        and "enrich_firmographics: logit p = -0.50 + 0.80 logit score (40 judged, 30 approved"
        in shown.stdout
    )
    [rev] = trust["reviewers"]  # the sample's decisions, not the batch act's 120 - n
    assert (rev["reviewer"], rev["decisions"]) == ("rev", len(cards))
    undo = _run("rollback", "--batch", batch["batch_id"], "--by", "ana", "--json", db=db)
    assert undo.returncode == 0 and len(json.loads(undo.stdout)["restored"]) == 120 - len(cards)


@pytest.mark.slow
def test_feedback_from_the_command_line(engine_wh) -> None:  # noqa: F811 - the fixture
    from revstack.data.warehouse import release_all

    release_all()
    db = engine_wh.path
    added = _run(
        "feedback",
        "add",
        "forecast",
        "forecast",
        "R1:quarter:2026-10-01",
        "--note",
        "too low",
        "--by",
        "vic",
        db=db,
    )
    assert added.returncode == 0, added.stderr
    fid = added.stdout.split(":")[0]
    nobody = _run(
        "feedback", "add", "oracle", "forecast", "R1", "--note", "x", "--by", "vic", db=db
    )
    assert nobody.returncode == 2 and "no agent 'oracle'" in nobody.stderr
    viewer = _run("feedback", "ack", fid, "--by", "vic", db=db)
    assert viewer.returncode == 2 and len(viewer.stderr.strip().splitlines()) == 1
    done = _run("feedback", "address", fid, "--by", "rev", "--resolution", "refit", db=db)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(_run("feedback", "--json", db=db).stdout)
    assert (row["feedback_id"], row["status"], row["resolution"]) == (fid, "addressed", "refit")


def test_the_dashboard_refuses_the_network_without_sign_in(engine_wh) -> None:  # noqa: F811 - the fixture
    from revstack.data.warehouse import release_all

    release_all()
    network = _run("app", "--address", "0.0.0.0", db=engine_wh.path)
    assert network.returncode == 2 and "serves this machine only" in network.stderr
    stranger = _run("app", "--as", "mallory", db=engine_wh.path)
    assert stranger.returncode == 2 and "--as mallory: not a person" in stranger.stderr


@pytest.mark.slow
def test_a_sigterm_stops_the_dashboard_server_itself(engine_wh) -> None:  # noqa: F811 - the fixture
    import signal
    import socket
    import time
    import urllib.request

    from revstack.data.warehouse import release_all

    release_all()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "revstack",
            "app",
            "--as",
            "ana",
            "--port",
            str(port),
            "--db",
            str(engine_wh.path),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url, timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the dashboard did not come up")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(OSError):  # nothing left serving on the port
        urllib.request.urlopen(url, timeout=2)


def _counts(db: Path) -> dict[str, int]:
    done = _run("status", "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["tables"]


def _one_line_error(done: subprocess.CompletedProcess, message: str) -> bool:
    lines = done.stderr.splitlines()
    return done.returncode == 2 and len(lines) == 1 and message in lines[0]


@pytest.mark.slow
def test_bad_files_and_names_are_one_line_errors_that_change_nothing(
    run_wh,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    from revstack.data.warehouse import release_all

    release_all()
    db = run_wh.path
    report = tmp_path / "report.csv"
    report.write_bytes("External ID,Event,Occurred At\nd1,sent,2026-10-02 café\n".encode("latin-1"))
    feed = tmp_path / "news.csv"
    feed.write_bytes(
        "headline,published_at,domain\nCafé opens,2026-01-01,acme.com\n".encode("latin-1")
    )
    taken = tmp_path / "taken.txt"
    taken.write_text("mine\n")
    before = _counts(db)
    for args, message in [
        (["drafts", "outcomes", str(report)], f"{report}:2: not UTF-8 text"),
        (["news", "load", str(feed)], f"{feed}:2: not UTF-8 text"),
        (
            ["export-changes", "--format", "salesforce", "--out", str(taken)],
            f"{taken} is a file; --out takes a directory",
        ),
        (
            ["policy", "set", "nobody", "fill_industry", "--tier", "2", "--by", "ana"]
            + ["--reason", "r"],
            "no agent 'nobody'; agents: crm_hygiene",
        ),
        (["rollback", "--agent", "nobody", "--since", "3d", "--by", "ana"], "no agent 'nobody'"),
    ]:
        done = _run(*args, db=db)
        assert _one_line_error(done, message), (args, done.returncode, done.stderr)
    assert _counts(db) == before and taken.read_text() == "mine\n"

    src = tmp_path / "orgs.csv"
    src.write_text("id,name\n1,Acme\n2,Acme Inc\n3,Globex\n")
    for out, message in [
        (tmp_path, f"--out {tmp_path} is a directory"),
        (src, f"--out {src} is the input file"),
        (tmp_path / ".." / tmp_path.name / "orgs.csv", "is the input file"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "revstack", "dedupe", str(src), "--id", "id", "--name"]
            + ["name", "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert _one_line_error(done, message), done.stderr
    assert src.read_text() == "id,name\n1,Acme\n2,Acme Inc\n3,Globex\n"

    typo = tmp_path / "typo" / "x.duckdb"
    for args in (["status"], ["proposals"], ["log", "verify"]):
        done = _run(*args, db=typo)
        assert _one_line_error(done, f"{typo}: no such warehouse"), done.stderr
    assert not typo.parent.exists()
