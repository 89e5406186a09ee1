"""Deal prep on the generated small company: every citation resolves to its row with the
stated value, planted defects are called out, risks come from pipeline health's latest
run, the optional rewriter keeps citations, and nothing leaves the machine by default."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import polars as pl
import pytest

from revstack.agents._llm import OpenAICompatible, grounded, rewriter_from_env
from revstack.agents.deal_prep import DealPrep
from revstack.agents.engine import add_person, run_agents
from revstack.agents.registry import specs
from revstack.cli import main
from revstack.data.errors import InputError
from revstack.data.news import FeedFile, load_news
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics.deal_prep import report, verify_citations

ROOT = Path(__file__).resolve().parents[2]


def _copy(src: Warehouse, dst: Path) -> Warehouse:
    release_all()
    shutil.copy(src.path, dst)
    return Warehouse(dst)


def _spec(factory, **params):
    """The contract's deal prep; by default every upcoming meeting, not the contract's
    horizon: these tests read as many briefings as the company has."""
    spec = next(s for s in specs() if s.name == "deal_prep")
    params = {**spec.params, "horizon_days": 0, **params}
    return dataclasses.replace(spec, factory=factory, params=params)


@pytest.fixture(scope="module")
def briefed(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = _copy(small_company, tmp_path_factory.mktemp("prep") / "prep.duckdb")
    add_person(wh, "ana", "admin", by="ana")
    [result] = run_agents(wh, [_spec(lambda: DealPrep(rewriter=None))], only="deal_prep")
    assert result.status == "succeeded", result.message
    release_all()
    return wh


def _briefings(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, "SELECT * FROM ops.briefings ORDER BY briefing_id")


@pytest.mark.slow
def _items(citations: str) -> list:
    """A stored briefing's items, read back from its citations' JSON."""
    from revstack.agents._cite import Cite, Note, Statement

    return [
        Note(i["section"], i["text"])
        if i.get("note")
        else Statement.of(
            i["section"],
            i["text"],
            [Cite(c["table"], tuple(c["key"].items()), c["field"], c["value"]) for c in i["cites"]],
        )
        for i in json.loads(citations)
    ]


def test_every_upcoming_meeting_is_briefed_and_every_citation_holds(briefed: Warehouse) -> None:
    with briefed.connect() as con:
        measures = report(con, None)
        checked = verify_citations(con)
        meetings = frame(
            con,
            "SELECT activity_id FROM crm.activities WHERE status = 'scheduled' "
            "AND occurred_at > (SELECT max(as_of) FROM ops.imports)",
        )
    assert len(meetings) > 20
    assert measures["coverage"]["coverage"] == 1.0
    assert measures["statements"]["share_cited"] == 1.0
    assert checked["cites"].sum() > 5000
    assert (checked["resolved"] == checked["cites"]).all()
    assert (checked["matched"] == checked["cites"]).all(), checked.filter(
        pl.col("matched") != pl.col("cites")
    )


def _tamper(citations: str) -> str:
    """The same briefing's citations with the first cited value changed."""
    items = json.loads(citations)
    first = next(i for i in items if i.get("cites"))
    first["cites"][0]["value"] = "not what the row holds"
    return json.dumps(items)


def test_the_report_checks_current_briefings_and_not_superseded_ones(
    briefed: Warehouse, tmp_path: Path
) -> None:
    """A briefing its meeting's later one replaced cites values the CRM may have changed
    since; checked against today's rows it would read as a wrong citation. The report
    checks what a rep reads now, and still catches a wrong value there."""
    wh = _copy(briefed, tmp_path / "stale.duckdb")
    b = _briefings(wh).filter(pl.col("meeting_id").is_not_null()).row(0, named=True)
    with wh.connect() as con:
        before = report(con, None)
        con.execute(
            "INSERT INTO ops.briefings SELECT * REPLACE ("
            "'old-' || briefing_id AS briefing_id, generated_at - INTERVAL 7 DAY AS generated_at, "
            "$c::JSON AS citations) FROM ops.briefings WHERE briefing_id = $id",
            {"id": b["briefing_id"], "c": _tamper(b["citations"])},
        )
        superseded = report(con, None)
        every = verify_citations(con)
        con.execute(
            "UPDATE ops.briefings SET citations = $c::JSON WHERE briefing_id = $id",
            {"id": b["briefing_id"], "c": _tamper(b["citations"])},
        )
        tampered = report(con, None)
    assert superseded["citations"]["cites"] == before["citations"]["cites"] > 5000
    assert superseded["citations"]["matched"] == before["citations"]["matched"]
    assert superseded["statements"] == before["statements"]
    assert every["matched"].sum() == every["cites"].sum() - 1  # every stored briefing: it counts
    assert tampered["citations"]["matched"] == before["citations"]["matched"] - 1
    assert before["statements"]["briefings_checked"] == len(_briefings(briefed))


def test_citations_checked_by_hand_against_the_rows(briefed: Warehouse) -> None:
    """Independent of the metric: read 300 cited fields with plain SQL and compare."""
    b = _briefings(briefed)
    cites = [c for doc in b["citations"].to_list() for st in json.loads(doc) for c in st["cites"]]
    sample = [cites[i] for i in range(0, len(cites), max(1, len(cites) // 300))]
    with briefed.connect() as con:
        for c in sample:
            where = " AND ".join(f"{k}::VARCHAR = ?" for k in c["key"])
            rows = con.execute(
                f'SELECT "{c["field"]}" FROM {c["table"]} WHERE {where}', list(c["key"].values())
            ).fetchall()
            assert len(rows) == 1, c
            stored = rows[0][0]
            if isinstance(stored, dt.datetime):
                stored = stored.isoformat(sep=" ")
            elif isinstance(stored, dt.date):
                stored = stored.isoformat()
            elif isinstance(stored, decimal.Decimal):
                stored = float(stored)
            if c["value"] is None:
                assert stored is None or str(stored).strip() == "", c
            elif isinstance(c["value"], float):
                assert stored == pytest.approx(c["value"]), c
            else:
                assert stored == c["value"], c


def test_planted_defects_are_called_out_at_the_top(briefed: Warehouse) -> None:
    b = _briefings(briefed)
    with briefed.connect() as con:
        defects = frame(
            con,
            "SELECT defect_class, object_type, record_id, field FROM truth.defects "
            "WHERE defect_class IN ('missing_required_field', 'duplicate_account')",
        )
    warned = 0
    for row in b.iter_rows(named=True):
        items = json.loads(row["citations"])
        assert items[0]["section"] == "warnings"  # the top of every briefing
        warnings = [i for i in items if i["section"] == "warnings" and not i.get("note")]
        cited = {
            (c["table"], tuple(c["key"].values())[-1], c["field"])
            for w in warnings
            for c in w["cites"]
        }
        planted = defects.filter(
            (
                (pl.col("object_type") == "opportunities")
                & (pl.col("record_id") == row["opportunity_id"])
            )
            | (
                (pl.col("object_type") == "accounts")
                & (pl.col("record_id") == (row["account_id"] or ""))
            )
        )
        for d in planted.iter_rows(named=True):
            table = f"crm.{d['object_type']}"
            if d["defect_class"] == "missing_required_field":
                assert (table, d["record_id"], d["field"]) in cited, (row["briefing_id"], d)
            else:  # a duplicate account record: the name check finds its original by name or site
                assert any(t == table and r == d["record_id"] for t, r, _ in cited), (
                    row["briefing_id"],
                    d,
                )
            warned += 1
        assert row["warnings"] == len(warnings)
    assert warned >= 10  # the small company plants enough for this to mean something


def test_a_rerun_on_the_same_data_stores_nothing_new(briefed: Warehouse) -> None:
    before = len(_briefings(briefed))
    [result] = run_agents(briefed, [_spec(lambda: DealPrep(rewriter=None))], only="deal_prep")
    assert result.status == "succeeded" and result.counts.get("applied", 0) == 0
    assert len(_briefings(briefed)) == before


def _flag(wh: Warehouse, run: str, opp: str, signal: str, reason: str) -> None:
    with wh.connect() as con:
        con.execute(
            "INSERT INTO ops.risk_flags (run_id, opportunity_id, signal, flagged_at, score, reason) "
            "VALUES (?, ?, ?, now(), 0.8, ?)",
            [run, opp, signal, reason],
        )


def test_risks_come_from_the_latest_pipeline_health_run_only(
    briefed: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(briefed, tmp_path / "flags.duckdb")
    opp = _briefings(wh)["opportunity_id"][0]
    _flag(wh, "R000001", opp, "close_date_slipped", "pushed four times (old run)")
    _flag(wh, "R000002", opp, "gone_quiet", "no two-way activity in 40 days")
    [result] = run_agents(
        wh, [_spec(lambda: DealPrep(on_demand=[opp], rewriter=None))], only="deal_prep"
    )
    assert result.status == "succeeded"
    b = _briefings(wh).filter(pl.col("meeting_id").is_null())
    risks = [i for i in json.loads(b["citations"][0]) if i["section"] == "risks"]
    assert [r["text"] for r in risks] == [
        "Gone quiet: no two-way activity in 40 days (risk score 0.80)."
    ]
    assert {c["key"]["run_id"] for c in risks[0]["cites"]} == {"R000002"}
    assert (
        "no two-way activity in 40 days" in b["markdown"][0] and "old run" not in b["markdown"][0]
    )
    # Only the latest run's rows are read (each weekly run adds its flags), and they are
    # the rows filtering every run's to the latest gives.
    from revstack.agents.deal_prep._inputs import _latest_flags
    from tests.agents._contexts import agent_context

    _flag(wh, "R000002", opp, "close_date_slipped", "pushed five times")
    release_all()
    ctx = agent_context(wh, "deal_prep")
    flags, run = _latest_flags(ctx)
    assert run == "R000002" and ctx.read_log["ops.risk_flags"] == 2  # not the old run's
    whole = agent_context(wh, "deal_prep").table("ops.risk_flags")
    assert flags.equals(
        whole.filter(pl.col("run_id") == "R000002").sort("opportunity_id", "signal")
    )


def test_no_flags_yet_is_said_not_invented(briefed: Warehouse) -> None:
    items = json.loads(_briefings(briefed)["citations"][0])
    risks = [i for i in items if i["section"] == "risks"]
    assert len(risks) == 1 and risks[0]["note"] and "not flagged" in risks[0]["text"]


def test_the_identity_map_is_used_when_it_has_rows(briefed: Warehouse, tmp_path: Path) -> None:
    wh = _copy(briefed, tmp_path / "map.duckdb")
    row = _briefings(wh).row(0, named=True)
    with wh.connect() as con:  # an approved merge: the account now maps to A_OTHER's entity
        con.execute(
            "UPDATE foundation.entity_map SET entity_id = 'A_OTHER', confidence = 0.93 "
            "WHERE object_type = 'accounts' AND record_id = ?",
            [row["account_id"]],
        )
        con.execute(
            "INSERT INTO foundation.entity_map VALUES ('accounts', 'A_OTHER', 'A_OTHER', 1.0, 'self', now())"
        )
    [result] = run_agents(
        wh,
        [_spec(lambda: DealPrep(on_demand=[row["opportunity_id"]], rewriter=None))],
        only="deal_prep",
    )
    assert result.status == "succeeded"
    md = _briefings(wh).filter(pl.col("meeting_id").is_null())["markdown"][0]
    assert "identity map puts it in the same entity A_OTHER (confidence 0.93) as A_OTHER" in md
    header = md.split("## Meeting")[0]
    assert not [
        line
        for line in header.splitlines()
        if line.startswith("- Account") and "name check" in line
    ]


def test_a_suspected_duplicate_cites_the_hygiene_runs_cluster(small_run: Path) -> None:
    """After `revstack run`, deal prep states the hygiene run's suspected duplicates; each
    such statement cites the cluster row it read, which holds the stated entity, not the
    identity map (where a record is its own entity until its merge is approved: half of
    these citations did not match when they named the map)."""
    wh = Warehouse(small_run)
    with wh.connect() as con:
        checked = verify_citations(con)
    clusters = checked.filter(pl.col("table") == "ops.identity_clusters")
    assert clusters["cites"].sum() > 0, checked
    assert (checked["matched"] == checked["cites"]).all(), checked.filter(
        pl.col("matched") != pl.col("cites")
    )
    md = "\n".join(_briefings(wh)["markdown"])
    assert "suspects the same entity" in md


def test_only_the_latest_hygiene_runs_clusters_are_read(briefed: Warehouse, tmp_path: Path) -> None:
    """Each hygiene run adds its clusters to ops.identity_clusters; a run of deal prep reads
    the latest run's rows only (not every week's), and they are the rows and order that
    filtering the whole table to its latest run gives; the duplicates found come from it."""
    from revstack.agents.deal_prep._hygiene import find_hygiene
    from tests.agents._contexts import agent_context

    wh = _copy(briefed, tmp_path / "clusters.duckdb")
    with wh.connect() as con:
        a, b, c = frame(con, "SELECT account_id FROM crm.accounts ORDER BY 1 LIMIT 3")[
            "account_id"
        ].to_list()
        con.execute("DELETE FROM ops.identity_clusters")
        rows = [  # the older run put a with b, the latest puts a with c
            ("R000001", "accounts", a, a, 2, 0.91),
            ("R000001", "accounts", b, a, 2, 0.91),
            ("R000002", "accounts", c, a, 2, 0.88),
            ("R000002", "accounts", a, a, 2, 0.88),
            ("R000002", "contacts", "C_X", "C_X", 1, 1.0),
        ]
        con.executemany("INSERT INTO ops.identity_clusters VALUES (?, ?, ?, ?, ?, ?)", rows)
    release_all()
    ctx = agent_context(wh, "deal_prep")
    whole = ctx.table("ops.identity_clusters")
    assert ctx.latest_run("ops.identity_clusters").equals(
        whole.filter(pl.col("run_id") == "R000002")
    )
    ctx = agent_context(wh, "deal_prep")
    h = find_hygiene(
        ctx,
        ctx.definitions,
        accounts=[a],
        contacts=[],
        opportunities=[],
        all_accounts=ctx.table("crm.accounts"),
        all_contacts=ctx.table("crm.contacts"),
    )
    assert ctx.read_log["ops.identity_clusters"] == 3  # the latest run's rows, not all five
    assert [d.other for d in h.duplicates[("accounts", a)]] == [c]


def test_news_from_a_feed_file_is_cited(briefed: Warehouse, tmp_path: Path) -> None:
    wh = _copy(briefed, tmp_path / "news.duckdb")
    with wh.connect() as con:  # the first briefed deal whose account has a website
        row = frame(
            con,
            "SELECT b.opportunity_id, a.website FROM ops.briefings b JOIN crm.accounts a "
            "USING (account_id) WHERE a.website IS NOT NULL ORDER BY b.briefing_id LIMIT 1",
        ).row(0, named=True)
    site = row["website"]
    domain = site.split("//")[-1].removeprefix("www.").split("/")[0].lower()
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps(
            {
                "domain": domain,
                "published_at": "2026-09-20T08:00:00Z",
                "headline": "Example Co opens a new office in Lisbon",
            }
        )
        + "\n"
    )
    assert load_news(wh, FeedFile(feed)) == {"items": 1, "new": 1}
    assert load_news(wh, FeedFile(feed)) == {"items": 1, "new": 0}  # loading again adds nothing
    run_agents(
        wh,
        [_spec(lambda: DealPrep(on_demand=[row["opportunity_id"]], rewriter=None))],
        only="deal_prep",
    )
    b = _briefings(wh).filter(pl.col("meeting_id").is_null())
    news = [i for i in json.loads(b["citations"][0]) if i["section"] == "news"]
    assert news[0]["text"].startswith("2026-09-20: Example Co opens a new office in Lisbon")
    assert news[0]["cites"][0]["table"] == "ref.news" and news[0]["cites"][0]["key"][
        "news_id"
    ].startswith("F")


def test_a_bad_feed_line_is_named(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"domain": "a.com", "published_at": "2026-09-20", "headline": "x"}\n'
        '{"domain": "b.com", "published_at": "last week", "headline": "y"}\n'
    )
    with pytest.raises(InputError, match=r"feed.jsonl:2 \[published_at\]"):
        FeedFile(feed).items()


# -- the optional rewriter ---------------------------------------------------------


def test_no_endpoint_means_no_rewriter_and_no_network(
    briefed: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("REVSTACK_LLM_URL", "REVSTACK_LLM_MODEL", "REVSTACK_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert rewriter_from_env() is None
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    wh = _copy(briefed, tmp_path / "offline.duckdb")
    opp = _briefings(wh)["opportunity_id"][1]
    [result] = run_agents(
        wh, [_spec(lambda: DealPrep(on_demand=[opp]))], only="deal_prep"
    )  # env default
    assert result.status == "succeeded" and attempts == []
    assert _briefings(wh).filter(pl.col("meeting_id").is_null())["prose"][0] == "deterministic"


def test_grounded_refuses_lost_markers_new_numbers_and_new_names() -> None:
    original = "Stage proposal, amount 52,000.00, close date 2026-10-30. [1][2]"
    assert (
        grounded(original, "The deal is in proposal for 52,000.00, closing 2026-10-30. [1][2]")
        is None
    )
    assert (
        grounded(original, "The deal is in proposal for 52,000.00. [1]")
        == "citation markers changed"
    )
    assert "numbers" in grounded(original, "Proposal for 60,000.00, closing 2026-10-30. [1][2]")
    assert "names" in grounded(
        original, "Proposal with Oracle for 52,000.00, closing 2026-10-30. [1][2]"
    )


def test_a_rewrite_keeps_its_citations_or_is_refused(briefed: Warehouse, tmp_path: Path) -> None:
    wh = _copy(briefed, tmp_path / "rewrite.duckdb")
    opp = _briefings(wh)["opportunity_id"][2]

    def polite(texts):
        return ["Note: " + t[0].lower() + t[1:] for t in texts]

    def careless(texts):
        return [t.split(" [")[0] + " (trust me)" for t in texts]

    for name, fn, rewritten in (("polite", polite, True), ("careless", careless, False)):
        fn.name = f"llm:{name}"
        [result] = run_agents(
            wh, [_spec(lambda f=fn: DealPrep(on_demand=[opp], rewriter=f))], only="deal_prep"
        )
        assert result.status == "succeeded"
        b = _briefings(wh).filter(pl.col("prose") == f"llm:{name}")
        items = [i for i in json.loads(b["citations"][0]) if not i.get("note")]
        assert all(i["cites"] for i in items)
        assert all(i["text"].startswith("Note: ") for i in items) is rewritten
        assert not any("trust me" in i["text"] for i in items)
    with wh.connect() as con:
        checked = verify_citations(con)
    assert (checked["matched"] == checked["cites"]).all()


def test_the_openai_compatible_client_speaks_the_protocol_on_loopback() -> None:
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            texts = json.loads(body["messages"][1]["content"])
            answer = {"choices": [{"message": {"content": json.dumps([t.upper() for t in texts])}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = rewriter_from_env(
            {
                "REVSTACK_LLM_URL": f"http://127.0.0.1:{server.server_port}/v1",
                "REVSTACK_LLM_MODEL": "m1",
                "REVSTACK_LLM_API_KEY": "k",
            }
        )
        assert isinstance(client, OpenAICompatible) and client.name == "llm:m1"
        assert list(client(["a [1]", "b [2]"])) == ["A [1]", "B [2]"]
    finally:
        server.shutdown()
    assert seen[0]["path"] == "/v1/chat/completions" and seen[0]["auth"] == "Bearer k"
    assert seen[0]["body"]["model"] == "m1"


# -- on demand, and the opened mark ----------------------------------------------------


def test_brief_on_demand_records_the_open_and_refuses_unknown_deals(
    briefed: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wh = _copy(briefed, tmp_path / "cli.duckdb")
    opp = _briefings(wh)["opportunity_id"][3]
    html = tmp_path / "b.html"
    assert main(["brief", opp, "--by", "ana", "--db", str(wh.path)]) == 0
    assert "## Sources" in capsys.readouterr().out
    assert main(["brief", opp, "--by", "ana", "--html-out", str(html), "--db", str(wh.path)]) == 0
    assert html.read_text().startswith("<!doctype html>")
    with wh.connect() as con:
        opens = frame(
            con,
            "SELECT o.opened_by, b.opportunity_id FROM ops.briefing_opens o JOIN ops.briefings b USING (briefing_id)",
        )
        measures = report(con, None)
    assert opens["opened_by"].to_list() == ["ana", "ana"] and set(opens["opportunity_id"]) == {opp}
    assert measures["utilization"]["opened"] == 1  # the same briefing, opened twice
    assert main(["brief", "O_NOPE", "--db", str(wh.path)]) == 2
    assert "no opportunity 'O_NOPE'" in capsys.readouterr().err


def test_values_from_the_crm_are_text_in_the_markdown(briefed: Warehouse, tmp_path: Path) -> None:
    from html import unescape

    from markdown_it import MarkdownIt

    wh = _copy(briefed, tmp_path / "hostile.duckdb")
    row = _briefings(wh).row(0, named=True)
    deal = "Renew [now](http://evil.example) <img src=x onerror=alert(1)> | a *b* `c` $1 & $2"
    account = "- # <script>alert(1)</script> **AT&T** ~~x~~\n1. second line"
    with wh.connect() as con:
        con.execute(
            "UPDATE crm.opportunities SET name = ? WHERE opportunity_id = ?",
            [deal, row["opportunity_id"]],
        )
        con.execute(
            "UPDATE crm.accounts SET name = ? WHERE account_id = ?", [account, row["account_id"]]
        )
    [result] = run_agents(
        wh,
        [_spec(lambda: DealPrep(on_demand=[row["opportunity_id"]], rewriter=None))],
        only="deal_prep",
    )
    assert result.status == "succeeded"
    md = _briefings(wh).filter(pl.col("meeting_id").is_null())["markdown"][0]
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    for markup in ("<a ", "<img", "<script", "<strong", "<del", "<table"):
        assert markup not in page, markup  # as the renderer sees it: no link, image, tag ...
    # ... and no structure but the briefing's own: headings, notes in italics, one list of
    # sources with the table's name as code
    assert page.count("<h1>") == 1 and page.count("<h2>") == md.count("\n## ")
    assert page.count("<em>") == md.count("\n- *")
    assert (
        page.count("<ol>") == 1
        and page.count("<code>") == md.split("## Sources")[1].count("`") // 2
    )
    text = unescape(page)
    assert f"Briefing: {deal}" in text  # ... and the reader sees the values as they are
    assert account.replace("\n", " ") in text


def test_rendering_with_shared_pieces_is_the_same_text(briefed: Warehouse) -> None:
    """A run renders its briefings from escaped pieces they share; every briefing of the
    company (and one with markup in its values, rendered twice so the pieces are reused)
    reads as it does rendered on its own, with pieces nobody else used."""
    from html import escape

    from revstack.agents._cite import Cite, Note, Statement
    from revstack.agents.deal_prep._render import Pieces, _show, md_text, render

    pieces = Pieces()
    hostile = Statement.of(
        "deal",
        "# Renew [now](http://x) <b>&</b> 1. _a_ A_B",
        [
            Cite("crm.opportunities", (("opportunity_id", "O1"),), "name", "- *x* <i>"),
            Cite("crm.opportunities", (("opportunity_id", "O1"),), "next_step", "_a\n# b_ |x|_"),
            Cite("crm.opportunities", (("opportunity_id", "O1"),), "amount", 12.5),
            # a source line is escaped in parts (its row, each field, each value): values
            # that open markup at a part's edge, or span lines, read as the whole line would
            *[
                Cite("crm.accounts", (("account_id", "A_1 / x"),), f"f{i}_", v)
                for i, v in enumerate(
                    ["_x", "x_", "a\r\nb", "# y", 'say "hi"', "\u2028", "", True, None, 3, 1.0]
                )
            ],
            Cite(
                "crm.opportunity_contacts",
                (("opportunity_id", "O1"), ("contact_id", "C1")),
                "role",
                "1. _b",
            ),
        ],
    )
    briefings = [
        [Note("meeting", "On demand."), hostile, Statement.of("points", "Ask.", hostile.cites)]
    ] * 2
    for row in _briefings(briefed).iter_rows(named=True):
        # the stored citations are json.dumps's text of the items (built from dumped parts)
        assert json.dumps(json.loads(row["citations"])) == row["citations"]
        items = _items(row["citations"])
        briefings += [items, items]
    assert len(briefings) > 20
    shown = 0
    for items in briefings:
        md, page = render("T *1*", "s", items, pieces)
        assert (md, page) == render("T *1*", "s", items)
        # A source line is its escaped pieces joined: the same as escaping the whole line.
        fields: dict = {}
        for it in items:
            for c in getattr(it, "cites", ()):
                fields.setdefault(c.row(), {})[c.field] = c.value
        for n, ((table, key), cited) in enumerate(fields.items(), 1):
            values = "; ".join(f"{f} = {_show(v)}" for f, v in cited.items())
            ident = " / ".join(v for _, v in key)
            assert f"\n{n}. `{table}` {md_text(ident)}: {md_text(values)}\n" in md + "\n"
            line = (
                f"<li id='s{n}'><code>{escape(table)}</code> {escape(ident)}: {escape(values)}</li>"
            )
            assert f"\n{line}\n" in page
            shown += 1
    assert shown > len(briefings)
    assert pieces.values  # the pieces were used (and reused) ...
    assert len(pieces.values) < shown


def test_a_run_written_as_frames_is_each_briefing_written_alone(briefed: Warehouse) -> None:
    """A run writes its briefings' pages and stored citations together as frames
    (``_batch``): each is byte for byte what ``render`` and ``json.dumps`` of its items
    write alone, for every briefing of the company and for hostile ones: CRM values that
    open markup (an account name with a heading, a list marker, a script tag, a line
    break), values equal in Python but written differently (True, 1, 1.0, 0.0, -0.0), a
    row cited again with a new value, an item twice in one briefing, notes only."""
    from revstack.agents._cite import Cite, Note, Statement
    from revstack.agents.deal_prep._batch import Batch
    from revstack.agents.deal_prep._render import render

    account = "- # <script>alert(1)</script> **AT&T** ~~x~~\n1. second line"
    acc = (("account_id", "A_1 / x"),)
    opp = (("opportunity_id", "O1"),)
    hostile = Statement.of(
        "account",
        f"{account} is a customer [now](http://x) <b>&</b> 1. _a_ A_B",
        [
            Cite("crm.accounts", acc, "name", account),
            Cite("crm.opportunities", opp, "next_step", "_a\n# b_ |x|_"),
            *[
                Cite("crm.opportunities", opp, f"f{i}_", v)
                for i, v in enumerate([True, 1, 1.0, 0.0, -0.0, None, "", "1", 2.5e-7, "\u2028"])
            ],
            Cite(
                "crm.opportunity_contacts",
                (("opportunity_id", "O1"), ("contact_id", "C1")),
                "role",
                "1. _b",
            ),
        ],
    )
    again = Statement.of(  # the same row: a field cited again with another value, a new one
        "points",
        "Ask about `it`.",
        [
            Cite("crm.opportunities", opp, "f1_", 2),
            Cite("crm.opportunities", (("opportunity_id", "O2"),), "amount", 0.0),
            Cite("crm.accounts", acc, "name", account),
        ],
    )
    many = Statement.of(  # numbers in runs of one, two and three or more
        "deal",
        "Many.",
        [Cite("crm.activities", (("activity_id", f"X{i}"),), "occurred_at", i) for i in range(9)],
    )
    odd = Statement.of("elsewhere", "Not a section: numbered, not shown.", hostile.cites[:2])
    docs = [
        [Note("meeting", "On demand."), hostile, again, many, hostile, odd],
        [odd, again, Statement.of("deal", "Some.", [many.cites[i] for i in (8, 0, 2, 3, 5)])],
        [Note("warnings", "Nothing to check."), Note("news", "No news.")],
    ]
    for row in _briefings(briefed).iter_rows(named=True):
        docs.append(_items(row["citations"]))
    docs.append(docs[-1])  # the same items again: shared by two briefings
    assert len(docs) > 20
    batch = Batch()
    numbers = [batch.add(items) for items in docs]
    titles = [(f"Briefing: {account} *{n}*", f"{account} · s {n}") for n in range(len(docs))]
    pages = batch.render([(t, s, ns) for (t, s), ns in zip(titles, numbers, strict=True)])
    payloads = batch.payloads(numbers)
    for items, (title, subtitle), page, payload in zip(docs, titles, pages, payloads, strict=True):
        assert page == render(title, subtitle, items)
        assert payload == json.dumps([i.to_dict() for i in items], default=str)
    first = pages[0][0]
    shown = (
        "\\- # \\<script\\>alert(1)\\</script\\> \\*\\*AT\\&T\\*\\* \\~\\~x\\~\\~ 1. second line"
    )
    assert f'\n1. `crm.accounts` A_1 / x: name = "{shown[1:]}"\n' in first  # quoted: no block
    assert f"\n- {shown} is a customer \\[now\\](http://x)" in first
    assert "&lt;script&gt;alert(1)&lt;/script&gt; **AT&amp;T**" in pages[0][1]
    assert "f0\\_ = true; f1\\_ = 1; f2\\_ = 1.0; f3\\_ = 0.0; f4\\_ = " in first
    assert '"field": "f4_", "value": -0.0}' in payloads[0]
    assert "\n- Ask about \\`it\\`. [1][2][4]\n" in first and "\n- Many. [5-13]\n" in first
    assert "<sup><a href='#s5'>[5-13]</a></sup>" in pages[0][1]
    notes = [Note("meeting", "On demand."), Note("news", "No <news> *here*.")]
    alone = Batch()  # a run whose briefings cite nothing
    ns = alone.add(notes)
    assert alone.render([("T", "S", ns)]) == [render("T", "S", notes)]
    assert alone.payloads([ns]) == [json.dumps([i.to_dict() for i in notes], default=str)]


@pytest.mark.slow
def test_a_scheduled_run_briefs_the_meetings_within_its_horizon(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """With the contract's horizon, a run briefs exactly the meetings of the next
    ``horizon_days`` days; coverage counts those, and says the horizon."""
    spec = next(s for s in specs() if s.name == "deal_prep")
    days = spec.params["horizon_days"]
    assert days > 7  # weekly runs: the last run before a meeting falls within it
    wh = _copy(small_company, tmp_path / "h.duckdb")
    run = dataclasses.replace(spec, factory=lambda: DealPrep(rewriter=None))
    [result] = run_agents(wh, [run], only="deal_prep")
    assert result.status == "succeeded", result.message
    with wh.connect() as con:
        upcoming = frame(
            con,
            "SELECT activity_id, occurred_at > (SELECT max(as_of) FROM ops.imports) "
            "+ to_days($d) AS later FROM crm.activities WHERE activity_type = 'meeting' "
            "AND status = 'scheduled' AND opportunity_id IS NOT NULL "
            "AND occurred_at > (SELECT max(as_of) FROM ops.imports)",
            {"d": days},
        )
        briefed = set(frame(con, "SELECT meeting_id FROM ops.briefings")["meeting_id"])
        measures = report(con, None)
    due = set(upcoming.filter(~pl.col("later"))["activity_id"])
    assert due and len(due) < len(upcoming)  # some meetings are later than the horizon
    assert briefed == due
    cov = measures["coverage"]
    assert cov["horizon_days"] == days
    assert cov["upcoming_meetings"] == len(due) and cov["coverage"] == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "A_OTHER and snake_case",
        "_lead and trail_",
        "a__b",
        "x_ y",
        "é_é",
        "1_2",
        "- item",
        "12. item",
        "3) x",
        "#tag",
        " padded ",
        "line\nbreak",
        "sep\u2028arated",
        "rec\x1esep",
        'occurred_at = "2026-09-24 10:00:00"',
        "amount = 12.5",
        "100% of $5",
        "plain text, nothing to escape.",
        "",
    ],
)
def test_markdown_text_skips_only_what_needs_no_escape(text: str) -> None:
    """md_text returns text it would not change without substituting; what it returns is
    the rule applied in full: markup characters and word-edge underscores escaped, line
    breaks as spaces, a block marker at the start escaped."""
    import re

    from revstack.agents.deal_prep._render import md_text

    inline = re.compile(r"([\\`*\[\]<>!&|~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
    full = inline.sub(r"\\\1", " ".join(text.splitlines()).strip())
    full = re.sub(
        r"^([#>+=-])|^(\d+)([.)])", lambda m: "\\" + m[1] if m[1] else m[2] + "\\" + m[3], full
    )
    assert md_text(text) == full


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_leaves_the_garbage_collector_as_it_found_it(
    briefed: Warehouse, enabled: bool
) -> None:
    """Briefings are built with the cyclic collector paused; after the run it is on or
    off as it was before, and the run built briefings (so the pause was entered)."""
    import gc

    from tests.agents._contexts import agent_context

    with briefed.connect() as con:
        [deal] = frame(con, "SELECT min(opportunity_id) AS o FROM crm.opportunities")["o"]
    release_all()
    ctx = agent_context(briefed, "deal_prep")
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        result = DealPrep(on_demand=[deal], rewriter=None).run(ctx)
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
    assert result.metadata["briefings"] == 1  # built (on demand: always)


def test_a_batch_leaves_nothing_for_the_cyclic_collector() -> None:
    """A run builds briefings with the collector paused and turns it back on after; what a
    batch made must go by reference counts when it is dropped, or the first collection
    after the pause walks all of it (its numberings referred to themselves: 180k objects
    on mid's weekly run). Measured in a child process that runs nothing else
    (tests/agents/_batch_garbage.py): here, an earlier test's leftovers could drop cycles
    of their own during the measurement."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.agents._batch_garbage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {}


def test_rows_made_on_lookup_read_as_the_list_of_dicts() -> None:
    """An account's activities are kept as columns and made dicts when looked up
    (``_inputs.Rows``): indexing, slicing (as the activity statement takes its window),
    reversing and length read as the list of row dicts would."""
    from revstack.agents.deal_prep._inputs import Rows

    columns = {"id": ["a", "b", "c", "d", "e", "f"], "n": [1, 2, 3, 4, 5, 6]}
    whole = [dict(zip(columns, v, strict=True)) for v in zip(*columns.values(), strict=True)]
    rows = Rows(columns, 1, 5)  # an account's rows: b to e
    mine = whole[1:5]
    assert len(rows) == 4 and list(rows) == mine and list(reversed(rows)) == mine[::-1]
    assert rows[0] == mine[0] and rows[-1] == mine[-1] and rows[-4] == mine[0]
    for start in range(-6, 7):
        assert list(rows[start:]) == mine[start:]
        assert list(rows[:start]) == mine[:start]
    assert not rows[4:] and not rows[3:1]
    with pytest.raises(IndexError):
        rows[4]
    with pytest.raises(IndexError):
        rows[-5]


def test_an_on_demand_briefing_built_on_older_data_is_not_checked_against_todays_rows(
    briefed: Warehouse, tmp_path: Path
) -> None:
    """Nothing rebuilds an on-demand briefing: after the next import it holds the values
    of the data it was built from, and the deal moving on since is not a wrong citation.
    While it is built from the warehouse's data it is checked, and a wrong value counts."""
    wh = _copy(briefed, tmp_path / "on_demand.duckdb")
    with wh.connect() as con:
        opp = frame(
            con,
            "SELECT opportunity_id FROM crm.opportunities WHERE NOT is_closed "
            "AND opportunity_id NOT IN (SELECT opportunity_id FROM ops.briefings) "
            "ORDER BY opportunity_id LIMIT 1",
        )["opportunity_id"][0]
        fixture = report(con, None)
    [result] = run_agents(
        wh, [_spec(lambda: DealPrep(on_demand=[opp], rewriter=None))], only="deal_prep"
    )
    assert result.status == "succeeded", result.message
    b = _briefings(wh).filter(pl.col("meeting_id").is_null()).row(0, named=True)
    [amount] = [
        c
        for i in json.loads(b["citations"])
        for c in i.get("cites") or []
        if c["table"] == "crm.opportunities" and c["field"] == "amount"
    ][:1]
    with wh.connect() as con:
        fresh = report(con, None)
        # The deal moves on: its amount changes and, later, the next import lands.
        con.execute(
            "UPDATE crm.opportunities SET amount = amount + 1000 WHERE opportunity_id = $id",
            {"id": amount["key"]["opportunity_id"]},
        )
        changed = report(con, None)
        con.execute(
            "INSERT INTO ops.imports SELECT import_id + 1, format, location, "
            "as_of + INTERVAL 1 SECOND, started_at, finished_at, row_counts "
            "FROM ops.imports ORDER BY import_id DESC LIMIT 1"
        )
        later = report(con, None)
        upcoming = int(
            frame(
                con,
                "SELECT count(*) AS n FROM ops.briefings WHERE meeting_at > "
                "(SELECT max(as_of) FROM ops.imports)",
            )["n"][0]
        )
    checked = fixture["statements"]["briefings_checked"]
    assert fresh["statements"]["briefings_checked"] == checked + 1
    assert fresh["citations"]["cites"] > fixture["citations"]["cites"]
    assert fresh["citations"]["matched"] == fresh["citations"]["cites"] - (
        fixture["citations"]["cites"] - fixture["citations"]["matched"]
    )
    assert changed["citations"]["matched"] == fresh["citations"]["matched"] - 1
    assert later["statements"]["briefings_checked"] == upcoming
    assert later["citations"]["cites"] - later["citations"]["matched"] == (
        fixture["citations"]["cites"] - fixture["citations"]["matched"]
    )


def test_a_briefing_for_a_meeting_already_held_is_not_checked(
    briefed: Warehouse, tmp_path: Path
) -> None:
    """Once the data's as-of passes a meeting, its briefing is no longer what a rep reads:
    a value the CRM changed since is not counted against it."""
    wh = _copy(briefed, tmp_path / "held.duckdb")
    b = (
        _briefings(wh)
        .filter(pl.col("meeting_id").is_not_null())
        .sort("meeting_at", "briefing_id")
        .row(0, named=True)
    )
    with wh.connect() as con:
        before = report(con, None)
        con.execute(
            "UPDATE ops.briefings SET citations = $c::JSON WHERE briefing_id = $id",
            {"id": b["briefing_id"], "c": _tamper(b["citations"])},
        )
        tampered = report(con, None)
        # The next import's data describes the moment of that meeting: it is held.
        con.execute(
            "INSERT INTO ops.imports SELECT import_id + 1, format, location, $at, "
            "started_at, finished_at, row_counts "
            "FROM ops.imports ORDER BY import_id DESC LIMIT 1",
            {"at": b["meeting_at"]},
        )
        held = report(con, None)
        still = int(
            frame(
                con,
                "SELECT count(*) AS n FROM ops.briefings WHERE meeting_at > $at",
                {"at": b["meeting_at"]},
            )["n"][0]
        )
    assert tampered["citations"]["matched"] == before["citations"]["matched"] - 1
    assert 0 < still < before["statements"]["briefings_checked"]
    assert held["statements"]["briefings_checked"] == still
    assert held["citations"]["matched"] == held["citations"]["cites"] - (
        before["citations"]["cites"] - before["citations"]["matched"]
    )


def test_the_briefings_frame_is_the_rows_and_lets_go_of_their_text(briefed: Warehouse) -> None:
    """``_frame`` builds the stored frame column by column and empties each text column
    of the rows as it goes: the same frame as all the rows' columns at once."""
    from revstack.agents.deal_prep._agent import _SCHEMA, _frame

    with briefed.connect() as con:
        stored = frame(con, f"SELECT {', '.join(_SCHEMA)} FROM ops.briefings ORDER BY ALL")
    rows = stored.to_dicts()
    assert len(rows) > 10
    at_once = pl.DataFrame({k: [r[k] for r in rows] for k in _SCHEMA}, schema=_SCHEMA)
    built = _frame(rows)
    assert built.schema == at_once.schema
    assert built.equals(at_once, null_equal=True)
    assert built["markdown"].str.len_chars().min() > 0
    assert all(r["markdown"] is None and r["html"] is None for r in rows)
    assert all(r["statements"] is not None for r in rows)  # numbers stay
