"""Figures kept across decisions (metrics.remembered) equal a fresh computation."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from revstack._prep_cmds import brief_on_demand
from revstack.agents.engine import decide
from revstack.data.inventory import data_as_of
from revstack.data.news import FeedFile, load_news
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics import deal_prep, hygiene
from revstack.metrics.calibration import calibration_summary, confidence_reliability
from revstack.metrics.remembered import forget, inputs, remembering
from revstack.metrics.reviewers import reviewer_accuracy
from revstack.metrics.verdicts import truth_verdicts
from revstack.metrics.weekly_review import agent_quality

# What the Stack health, Threshold lab and Agents pages show from truth.
FIGURES: dict[str, Callable[[Any], Any]] = {
    "agent_quality": agent_quality,
    "reviewer_accuracy": reviewer_accuracy,
    "reliability": confidence_reliability,
    "reliability_raw": lambda con: confidence_reliability(con, score="raw_confidence"),
    "calibration_summary": calibration_summary,
    "hygiene": hygiene.report,
    "deal_prep": lambda con: deal_prep.report(con, None),
}


def _figures(wh: Warehouse, *, remember: bool) -> dict[str, Any]:
    with wh.connect() as con:
        if not remember:
            return {name: fn(con) for name, fn in FIGURES.items()}
        with remembering():
            return {name: fn(con) for name, fn in FIGURES.items()}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], pl.DataFrame):
            assert a[name].equals(b[name]), name
        else:
            assert a[name] == b[name], name


def _mine(small_run: Path, tmp_path: Path) -> Warehouse:
    """small_run is shared by the session: a file to copy, never to write."""
    path = tmp_path / "small.duckdb"
    shutil.copy(small_run, path)
    return Warehouse(path)


@pytest.mark.slow
def test_figures_after_decisions_equal_a_fresh_computation(small_run: Path, tmp_path: Path) -> None:
    wh = _mine(small_run, tmp_path)
    forget()
    _figures(wh, remember=True)  # keeps truth's part as the page's first render would
    with wh.connect() as con:
        before = inputs(con)
        verdicts = dict(truth_verdicts(con).iter_rows())
        pending = frame(
            con,
            "SELECT proposal_id, action_type FROM ops.proposals WHERE status = 'pending' "
            "ORDER BY proposal_id",
        )
    # decisions on proposals truth judges, right and wrong, and on enrichment values,
    # whose statuses the hygiene measures count
    judged = [p for p in pending["proposal_id"] if p in verdicts][:40]
    enrich = pending.filter(pl.col("action_type").is_in(["enrich_empty_field", "correct_field"]))
    chosen = list(dict.fromkeys(judged + enrich["proposal_id"].head(10).to_list()))
    assert any(verdicts.get(p) is False for p in chosen) and any(verdicts.get(p) for p in chosen)
    for i, pid in enumerate(chosen):
        if i % 3 == 2:
            decide(wh, pid, approve=False, by="rev", note="wrong")
        else:
            decide(wh, pid, approve=True, by="rev")
    with wh.connect() as con:
        assert inputs(con) == before  # a decision leaves what is kept as it was
    kept = _figures(wh, remember=True)
    forget()
    fresh = _figures(wh, remember=False)
    release_all()
    _same(kept, fresh)
    rev = kept["reviewer_accuracy"].filter(pl.col("reviewer") == "rev")
    assert rev["decisions"][0] >= len(chosen)  # the decisions are in the figures


@pytest.mark.slow
def test_a_new_proposal_is_judged_though_verdicts_were_kept(
    small_run: Path, tmp_path: Path
) -> None:
    wh = _mine(small_run, tmp_path)
    forget()
    with wh.connect() as con, remembering():
        first = truth_verdicts(con)
        merge = frame(
            con,
            "SELECT proposal_id FROM ops.proposals WHERE action_type = 'merge_accounts' "
            "ORDER BY proposal_id LIMIT 1",
        )["proposal_id"][0]
        # what a run writes: one more proposal, the same merge under a new id
        con.execute(
            "CREATE TEMP TABLE one AS SELECT * FROM ops.proposals WHERE proposal_id = $p",
            {"p": merge},
        )
        con.execute("UPDATE one SET proposal_id = 'new-merge', idempotency_key = 'new-merge'")
        con.execute("INSERT INTO ops.proposals SELECT * FROM one")
        again = truth_verdicts(con)
    with wh.connect() as con:
        fresh = truth_verdicts(con)
    release_all()
    forget()
    assert "new-merge" not in set(first["proposal_id"])
    assert again.sort("proposal_id").equals(fresh.sort("proposal_id"))
    verdict = dict(fresh.iter_rows())
    assert verdict["new-merge"] == verdict[merge]


def test_nothing_is_kept_unless_remembering(wh: Warehouse) -> None:
    from revstack.metrics import remembered

    forget()
    with wh.connect() as con:
        truth_verdicts(con)
    assert remembered._KEPT == {}
    with wh.connect() as con, remembering():
        truth_verdicts(con)
    assert len(remembered._KEPT) == 1
    forget()


@pytest.mark.slow
def test_deal_preps_citations_are_judged_again_where_a_decision_wrote(
    small_run: Path, tmp_path: Path
) -> None:
    """Approving a correction of a field a current briefing cites changes whether that
    citation matches: the verdicts kept from before the decision are re-read there (and
    only where a decision wrote), and equal a fresh check; a rollback puts them back."""
    from revstack.agents.engine import OBJECTS, rollback

    wh = _mine(small_run, tmp_path)
    forget()
    with wh.connect() as con, remembering():
        before = deal_prep.report(con, None)["citations"]
        _, flat = deal_prep._cites(con, None, current=True)
        pending = frame(
            con,
            "SELECT proposal_id, object_type, record_id, field FROM ops.proposals "
            "WHERE status = 'pending' ORDER BY proposal_id",
        )
    tables = {k: o.table for k, o in OBJECTS.items() if not o.key}
    record = pl.coalesce(
        pl.col("key").str.json_path_match(f"$.{o.pk}") for k, o in OBJECTS.items() if not o.key
    )
    cited = flat.select("cited_table", "field", record=record).unique()
    hits = pending.with_columns(
        cited_table=pl.col("object_type").replace_strict(tables, default=None),
        record=pl.col("record_id"),
    ).join(cited, on=["cited_table", "field", "record"], how="semi")
    assert len(hits), "no pending proposal writes a cited field: the test has nothing to show"
    for pid in hits["proposal_id"]:
        decide(wh, pid, approve=True, by="rev")
    with wh.connect() as con, remembering():
        kept = deal_prep.report(con, None)["citations"]
    forget()
    with wh.connect() as con:
        fresh = deal_prep.report(con, None)["citations"]
    assert kept == fresh
    assert kept["matched"] < before["matched"] and kept["cites"] == before["cites"]
    # Undone, the cited values are the stated ones again.
    for pid in hits["proposal_id"]:
        rollback(wh, proposal=pid, by="ana")
    with wh.connect() as con, remembering():
        undone = deal_prep.report(con, None)["citations"]
    release_all()
    forget()
    assert undone == before


@pytest.mark.slow
def test_deal_preps_citations_are_judged_again_after_news_is_loaded(
    small_run: Path, tmp_path: Path
) -> None:
    """`revstack news load` updates a stored item's summary in place (same id, no import,
    no audit row, no run): a current briefing citing the old summary no longer matches,
    with the verdicts kept from before the load as in a fresh check."""
    wh = _mine(small_run, tmp_path)
    with wh.connect() as con:
        row = frame(
            con,
            "SELECT o.opportunity_id, a.website FROM crm.opportunities o JOIN crm.accounts a "
            "USING (account_id) WHERE a.website IS NOT NULL AND NOT o.is_closed "
            "ORDER BY o.opportunity_id LIMIT 1",
        ).row(0, named=True)
        as_of = data_as_of(con)
    assert as_of is not None
    domain = row["website"].split("//")[-1].removeprefix("www.").split("/")[0].lower()
    feed = tmp_path / "feed.jsonl"
    item = {
        "domain": domain,
        "published_at": (as_of - dt.timedelta(days=5)).isoformat(),
        "headline": "The company opens a new office in Lisbon",
        "summary": "Forty people to start.",
    }
    feed.write_text(json.dumps(item) + "\n")
    assert load_news(wh, FeedFile(feed))["new"] == 1
    assert brief_on_demand(wh, row["opportunity_id"]).status == "succeeded"
    forget()
    with wh.connect() as con, remembering():
        before = deal_prep.report(con, None)["citations"]
    news = [r for r in before["by_table"] if (r["table"], r["field"]) == ("ref.news", "summary")]
    assert news and news[0]["matched"] == news[0]["cites"], before["by_table"]
    # The provider corrects the item: the same headline and time, another summary.
    feed.write_text(json.dumps({**item, "summary": "Four hundred people to start."}) + "\n")
    assert load_news(wh, FeedFile(feed))["new"] == 0
    with wh.connect() as con, remembering():
        kept = deal_prep.report(con, None)["citations"]
    forget()
    with wh.connect() as con:
        fresh = deal_prep.report(con, None)["citations"]
    release_all()
    assert fresh["matched"] < before["matched"] and fresh["cites"] == before["cites"]
    assert kept == fresh
