"""`revstack simulate`: weeks of operation with simulated reviewers, reproducible by seed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from revstack._simulate import REVIEWERS, simulate
from revstack.cli import main
from revstack.data.errors import InputError
from revstack.data.generator import DEFAULT_AS_OF
from revstack.data.warehouse import Warehouse, frame, release_all

WEEKS, SEED, LIVE = 1, 5, 1
AGENTS = ("crm_hygiene", "pipeline_health")
START = dt.datetime.combine(DEFAULT_AS_OF, dt.time()) - dt.timedelta(weeks=WEEKS)


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Any, Warehouse, Any]:
    """The same simulation twice: once through the CLI, once through the library."""
    folder = tmp_path_factory.mktemp("simulate")
    a, b = Warehouse(folder / "a.duckdb"), Warehouse(folder / "b.duckdb")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "simulate",
                *("--weeks", str(WEEKS), "--seed", str(SEED), "--live-week", str(LIVE)),
                *("--agents", ",".join(AGENTS), "--db", str(a.path), "--json"),
            ]
        )
    assert code == 0
    ra = json.loads(out.getvalue())
    rb = simulate(b, weeks=WEEKS, seed=SEED, live_week=LIVE, agents=AGENTS)
    release_all()
    return a, ra, b, rb


def _decisions(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            "SELECT action_type, record_id, field, new_value, status, decided_by, "
            "decision_note, final_value FROM ops.proposals WHERE decided_by IS NOT NULL "
            "ORDER BY ALL",
        )


@pytest.mark.slow
def test_the_same_seed_makes_the_same_weeks(twice) -> None:
    a, ra, b, rb = twice
    da, db = _decisions(a), _decisions(b)
    assert len(da) > 200  # people really decided: samples, batches, tasks
    assert da.equals(db)

    def figures(report: dict) -> list:
        return [{k: v for k, v in w.items() if k != "seconds"} for w in report["weeks"]]

    assert figures(ra) == figures(rb)
    assert ra["reviewers"] == rb["reviewers"]


@pytest.mark.slow
def test_every_week_happens_in_its_week(twice) -> None:
    a, ra, *_ = twice
    assert [w["at"][:10] for w in ra["weeks"]] == [
        (START + dt.timedelta(weeks=i)).date().isoformat() for i in range(WEEKS + 1)
    ]
    with a.connect() as con:
        runs = frame(
            con,
            "SELECT agent, mode, started_at, finished_at, trigger FROM ops.runs ORDER BY started_at",
        )
        decided = frame(con, "SELECT decided_at FROM ops.proposals WHERE decided_by IS NOT NULL")[
            "decided_at"
        ]
        imports = frame(con, "SELECT as_of FROM ops.imports ORDER BY import_id")["as_of"]
    # One import a week after the first look, each describing its week's moment.
    assert imports.to_list() == [START + dt.timedelta(weeks=i) for i in range(WEEKS + 1)]
    # Runs take the seconds they took, in the hour after the week's import.
    weeks = ((runs["started_at"] - START).dt.total_days() // 7).to_list()
    assert sorted(set(weeks)) == list(range(WEEKS + 1))
    assert (runs["finished_at"] > runs["started_at"]).all()
    # Pipeline health is shadow until the week it goes live.
    ph = runs.filter(pl.col("agent") == "pipeline_health")
    assert ph["mode"].to_list() == ["shadow"] * LIVE + ["live"] * (WEEKS + 1 - LIVE)
    # People decide in working days, never before the company's data existed.
    assert decided.min() > START and decided.max() < START + dt.timedelta(weeks=WEEKS + 1)


@pytest.mark.slow
def test_reviewers_agree_with_truth_as_often_as_their_profile_says(twice) -> None:
    _, ra, *_ = twice
    by = {r["name"]: r for r in ra["reviewers"]}
    for profile in REVIEWERS:
        r = by[profile.name]
        assert r["judged"] >= 150
        # Binomial: about 2 standard errors at these counts.
        assert abs(r["agreement_with_truth"] - profile.accuracy) < 0.05, r


@pytest.mark.slow
def test_graduation_precision_keeps_automatic_actions_apart(twice) -> None:
    a, ra, *_ = twice
    assert ra["graduations"], "the week's evidence graduates the merges"
    for g in ra["graduations"]:
        agent, _, action = g["action"].partition(".")
        at = dt.datetime.fromisoformat(g["graduated_at"])
        with a.connect() as con:
            tiers = frame(
                con,
                "SELECT created_at >= $at AS after, tier, count(*) AS n FROM ops.proposals "
                "WHERE agent = $agent AND action_type = $action AND NOT shadow GROUP BY ALL",
                {"at": at, "agent": agent, "action": action},
            )
        automatic_before = tiers.filter(~pl.col("after") & (pl.col("tier") == 1))["n"].sum()
        automatic_after = tiers.filter(pl.col("after") & (pl.col("tier") == 1))["n"].sum()
        # Nothing of the action went through on its own before it graduated; what the
        # report calls automatic is tier 1 after, at most as many as were (truth judges
        # most of them), and the split adds up to the whole.
        assert automatic_before == 0
        auto, reviewed, whole = (
            g["precision_after_automatic"],
            g["precision_after_reviewed"],
            g["precision_after"],
        )
        assert auto is not None and 0 < auto["proposals"] <= automatic_after
        n_reviewed = reviewed["proposals"] if reviewed else 0
        assert auto["proposals"] + n_reviewed == whole["proposals"]
        right = auto["proposals"] * auto["precision"] + (
            n_reviewed * reviewed["precision"] if reviewed else 0
        )
        assert abs(right / whole["proposals"] - whole["precision"]) < 1e-3
        band, under = g["precision_under_review_in_band"], g["precision_under_review"]
        assert band is not None and band["proposals"] <= under["proposals"]


@pytest.mark.slow
def test_batches_cost_fewer_decisions_than_one_card_at_a_time(twice) -> None:
    _, ra, *_ = twice
    acts = sum(w["batch_acts"] for w in ra["weeks"])
    decided_by_acts = sum(w["proposals_in_batch_acts"] for w in ra["weeks"])
    assert acts > 0 and decided_by_acts > acts
    # Second looks, batch acts and graduations counted against the cards they spared.
    assert ra["decisions_one_card_at_a_time"] > ra["human_decisions"]


def test_simulate_refuses_a_warehouse_that_holds_a_company(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    with wh.connect() as con:
        con.execute("INSERT INTO crm.accounts (account_id, name, source) VALUES ('a', 'A', 'x')")
    with pytest.raises(InputError, match="use a new --db"):
        simulate(wh, weeks=1)


def test_simulate_refuses_a_future_it_cannot_have_seen(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh.duckdb")
    with pytest.raises(InputError, match="after today"):
        simulate(wh, weeks=1, as_of=dt.date.today() + dt.timedelta(days=30))
    with pytest.raises(InputError, match="no agent"):
        simulate(wh, weeks=1, agents=("nobody",))
