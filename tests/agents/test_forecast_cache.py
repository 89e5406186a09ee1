"""The forecast's backtest cache on "two weeks" of the small company (cut at 2024-02-27
and 2024-03-05: February closes between them and a refit falls due): an incremental
run gives what a full replay gives, a correction before the cache's as-of replays
everything, and a run with nothing new reuses every stored snapshot."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from revstack.agents.forecast._backtest import Reuse
from revstack.agents.forecast._cache import (
    Stored,
    _changed,
    _digest,
    _Hashed,
    _parts_of,
    _whole,
    fingerprint,
)
from revstack.data.warehouse import Warehouse, release_all
from tests.agents._forecast_runs import run_forecast, stored_rows
from tests.agents._weeks import carry_cache, cut
from tests.agents.test_forecast_baselines import tiny_inputs

BEFORE, AFTER = dt.datetime(2024, 2, 27, 8), dt.datetime(2024, 3, 5, 8)
# Fewer draws and one deal model: the cache's exactness does not depend on them.
_PARAMS = {"draws": 200, "live_draws": 400, "bag": 1}
_EXACT = ("forecasts", "forecast_drivers", "forecast_reliability")
_CACHE = (
    "forecast_cache",
    "forecast_cache_snapshots",
    "forecast_cache_segments",
    "forecast_cache_open",
)
# The as-of deal rows a run stores for the next (``_states``).
_STATES = ("forecast_states", "forecast_states_head")


def _run(wh: Warehouse) -> dict:
    return run_forecast(wh, _PARAMS)


def _rows(wh: Warehouse, run_id: str) -> dict[str, pl.DataFrame]:
    return stored_rows(wh, run_id, (*_EXACT, "forecast_backtest", *_CACHE, *_STATES))


@pytest.fixture(scope="module")
def weeks(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first week run once (a full replay that stores the cache), the second week with
    that cache carried in, and the second week run from nothing."""
    tmp = tmp_path_factory.mktemp("weeks")
    before = cut(small_company.path, tmp / "before.duckdb", BEFORE)
    first = _run(before)
    after = cut(small_company.path, tmp / "after.duckdb", AFTER)
    carry_cache(before, after)
    fresh = cut(small_company.path, tmp / "fresh.duckdb", AFTER)
    return {"first": first, "after": after.path, "fresh": fresh, "full": _run(fresh)}


def _copy(path: Path, tmp_path: Path) -> Warehouse:
    release_all()
    shutil.copy(path, tmp_path / "copy.duckdb")
    return Warehouse(tmp_path / "copy.duckdb")


@pytest.mark.slow
def test_an_incremental_run_is_the_full_replay(weeks: dict, tmp_path: Path) -> None:
    assert weeks["first"]["cache"]["full_replay"], weeks["first"]["cache"]
    wh = _copy(weeks["after"], tmp_path)
    incr, full = _run(wh), weeks["full"]
    assert not incr["cache"]["full_replay"], incr["cache"]
    assert incr["cache"]["reused"] > 20 and incr["cache"]["recomputed"] >= 2
    assert full["cache"]["reused"] == 0
    assert incr["cache"]["reused"] + incr["cache"]["recomputed"] == full["cache"]["recomputed"]
    # The as-of rows of the first week's moments were taken, not computed again.
    assert incr["states"]["reused_moments"] > 20 and incr["states"]["computed_moments"] >= 1
    assert full["states"]["reused_moments"] == 0
    a, b = _rows(wh, incr["run_id"]), _rows(weeks["fresh"], full["run_id"])
    # The live forecast, its drivers, the scored deals' reliability, the agent's backtest
    # rows, the cache and the as-of rows the next week reads: to the last digit.
    for t in (*_EXACT, *_CACHE, *_STATES):
        assert len(a[t]) and a[t].equals(b[t]), t
    agent = pl.col("method") == "agent"
    assert a["forecast_backtest"].filter(agent).equals(b["forecast_backtest"].filter(agent))
    # Both recompute the baselines, whose parallel sums vary in the last bit run to run.
    base_a, base_b = (x["forecast_backtest"].filter(~agent) for x in (a, b))
    assert base_a.drop("p50", "p10", "p90", "expected", "crps").equals(
        base_b.drop("p50", "p10", "p90", "expected", "crps")
    )
    assert np.allclose(base_a["p50"], base_b["p50"], rtol=1e-12)
    for key in ("fits", "combination", "deal_calibration", "history_rebuilt"):
        assert incr[key] == full[key], key
    for x, y in zip(incr["backtest"], full["backtest"], strict=True):
        assert (x["period_kind"], x["mape"], x["coverage"]) == (
            y["period_kind"],
            y["mape"],
            y["coverage"],
        )
        assert x["rep_commit_mape"] == pytest.approx(y["rep_commit_mape"], rel=1e-12)


@pytest.mark.slow
def test_a_correction_before_the_cache_as_of_replays_everything(
    weeks: dict, tmp_path: Path
) -> None:
    wh = _copy(weeks["after"], tmp_path)
    with wh.connect() as con:
        con.execute(
            """UPDATE crm.opportunity_history SET amount = amount * 2
            WHERE history_id = (SELECT min(history_id) FROM crm.opportunity_history
                                WHERE changed_at < '2023-06-01' AND amount > 0)"""
        )
    release_all()
    run = _run(wh)
    assert run["cache"]["full_replay"] and run["cache"]["reused"] == 0
    # The reason names the one input that moved, from the parts the cache stored.
    assert run["cache"]["why"].endswith("changed: stage and amount history"), run["cache"]
    assert run["states"]["reused_moments"] == 0


@pytest.mark.slow
def test_a_run_with_nothing_new_reuses_every_stored_snapshot(weeks: dict, tmp_path: Path) -> None:
    wh = _copy(weeks["fresh"].path, tmp_path)
    with wh.connect() as con:
        stored = con.execute("SELECT count(*) FROM ops.forecast_cache_snapshots").fetchall()[0][0]
        still_open = con.execute(
            "SELECT count(*) FROM ops.forecast_backtest WHERE method = 'agent' "
            "AND segment_kind = 'company' AND actual IS NULL"
        ).fetchall()[0][0]
    release_all()
    again = _run(wh)
    cache = again["cache"]
    assert not cache["full_replay"] and cache["reused"] == stored > 20
    # What is left: the snapshots of periods still open, and the live month and quarter.
    assert cache["recomputed"] == still_open + 2
    # Same deals, rows and model: the snapshots of open periods are not drawn again.
    assert still_open > 0 and cache["redrawn"] == 0
    # Only the live moment is computed (the rows of fixed points are stored), and no
    # fixed point is new: the stored rows stand for the next run as they are.
    assert again["states"]["computed_moments"] == 1 and not again["states"]["store"]
    before, after = _rows(weeks["fresh"], weeks["full"]["run_id"]), _rows(wh, again["run_id"])
    for t in (*_EXACT, *_CACHE):
        assert after[t].equals(before[t]), t
    still = _rows(wh, weeks["full"]["run_id"])
    for t in _STATES:
        assert after[t].is_empty() and still[t].equals(before[t]), t


def test_the_forecast_never_unpickles() -> None:
    """A warehouse can come from someone else: reading the cache back must run nothing."""
    root = Path(__file__).resolve().parents[2] / "agents" / "forecast"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "pickle" not in text and "joblib" not in text, path.name


@pytest.mark.slow
def test_a_contact_edited_after_the_last_run_gives_a_full_replays_forecast(
    weeks: dict, tmp_path: Path
) -> None:
    """Every departed contact's record edited after the stored as-of (so no departure
    counts at an earlier moment any more): the run recomputes those deals' as-of rows,
    scores and draws again the still-open snapshots whose deals changed, and gives what
    a run without any stored backtest or rows gives."""
    release_all()
    wh = _copy(weeks["fresh"].path, tmp_path)
    with wh.connect() as con:
        con.execute(
            "UPDATE crm.contacts SET updated_at = $at WHERE NOT is_active OR email_bounced",
            {"at": AFTER + dt.timedelta(hours=1)},
        )
    release_all()
    shutil.copy(wh.path, tmp_path / "replay.duckdb")
    replay = Warehouse(tmp_path / "replay.duckdb")
    with replay.connect() as con:
        for t in (*_CACHE, *_STATES):
            con.execute(f"DELETE FROM ops.{t}")
    release_all()
    incr, full = _run(wh), _run(replay)
    assert not incr["cache"]["full_replay"] and full["cache"]["full_replay"]
    assert incr["states"]["recomputed_deals"] > 0 and incr["cache"]["redrawn"] > 0
    a, b = _rows(wh, incr["run_id"]), _rows(replay, full["run_id"])
    # (Its as-of rows are not stored: no fixed point is new since the stored ones, which
    # the next run takes and recomputes those deals in again; test_forecast_states.py.)
    assert not incr["states"]["store"]
    for t in (*_EXACT, "forecast_cache_open"):
        assert len(a[t]) and a[t].equals(b[t]), t
    agent = pl.col("method") == "agent"
    assert a["forecast_backtest"].filter(agent).equals(b["forecast_backtest"].filter(agent))


def test_a_runs_fingerprints_hash_each_frame_once_and_give_each_cut_its_own() -> None:
    """A run's two fingerprints (the stored as-of's, then its own) share the frames' row
    hashes: each cut digests the rows up to it as a fingerprint of fresh inputs does,
    and inputs with a frame replaced are hashed again."""
    settings = {"agent": "test"}
    cuts = [dt.datetime(2025, 1, 6), dt.datetime(2025, 2, 10), dt.datetime(2025, 3, 1)]
    fresh = [fingerprint(tiny_inputs(), c, settings) for c in cuts]
    assert len(set(fresh)) == 3  # every cut sees other rows
    inp = tiny_inputs()
    assert [fingerprint(inp, c, settings) for c in reversed(cuts)] == fresh[::-1]
    assert {"history", "deals", "users", "submissions"} <= set(inp.hashed)
    # A cut's digest is the digest of the rows a filter keeps, as a frame of their own.
    subs = inp.submissions
    for c in cuts:
        kept = (subs["submitted_at"] <= c).to_numpy()
        assert _Hashed.of(subs).digest(kept) == _digest(subs.filter(pl.col("submitted_at") <= c))
    changed = dataclasses.replace(
        inp, history=inp.history.with_columns(amount=pl.col("amount") * 2)
    )
    assert not changed.hashed
    assert fingerprint(changed, cuts[2], settings) != fresh[2]
    assert fingerprint(inp, cuts[2], settings) == fresh[2]


def test_inputs_without_the_activities_give_the_fingerprint_and_states_of_the_frames(
    small_company: Warehouse,
) -> None:
    """``load`` leaves the activities in the warehouse (their hashes read in parts, the
    deal states computed there): the fingerprints at two cuts and the states at many
    moments, for every deal and for a few, are those of inputs holding them as a frame."""
    from revstack.agents.features import TABLES, weekly_moments
    from revstack.agents.forecast._inputs import compute_states, load
    from tests.agents._contexts import agent_context

    ctx = agent_context(small_company, "forecast")
    inp = load(ctx)
    assert "crm.activities" not in inp.feature_tables and inp.warehouse is ctx
    acts = ctx.table("crm.activities", TABLES["crm.activities"])
    held = dataclasses.replace(
        inp, feature_tables={**inp.feature_tables, "crm.activities": acts}, warehouse=None
    )
    settings = {"agent": "test"}
    for c in (BEFORE, inp.as_of):
        assert fingerprint(inp, c, settings) == fingerprint(held, c, settings)
    moments = weekly_moments(dt.date(2024, 1, 1), dt.date(2024, 3, 4))
    every = compute_states(inp, moments)
    assert len(every) > 500 and every.equals(compute_states(held, moments))
    few = every["opportunity_id"].unique().sort().head(25).to_list()
    assert compute_states(inp, moments, few).equals(compute_states(held, moments, few))
    moved = acts.with_columns(pl.col("occurred_at").shift(1, fill_value=BEFORE))
    changed = dataclasses.replace(
        held, feature_tables={**held.feature_tables, "crm.activities": moved}
    )
    assert fingerprint(changed, inp.as_of, settings) != fingerprint(inp, inp.as_of, settings)


def _hire(wh: Warehouse) -> None:
    """A rep joins an existing team after the cache's as-of, with no deal yet."""
    with wh.connect() as con:
        con.execute(
            """INSERT INTO crm.users BY NAME
            SELECT * REPLACE ('U99999' AS user_id, 'New Hire' AS name,
                              'new.hire@ourco.example' AS email, $at AS created_at)
            FROM crm.users WHERE team IS NOT NULL ORDER BY user_id LIMIT 1""",
            {"at": AFTER - dt.timedelta(days=1)},
        )
    release_all()


@pytest.mark.slow
def test_a_rep_hired_since_the_last_run_replays_nothing_and_moves_no_figure(
    weeks: dict, small_company: Warehouse, tmp_path: Path
) -> None:
    wh = _copy(weeks["after"], tmp_path)
    _hire(wh)
    incr = _run(wh)
    assert not incr["cache"]["full_replay"], incr["cache"]
    assert incr["cache"]["reused"] > 20
    fresh = cut(small_company.path, tmp_path / "fresh.duckdb", AFTER)  # no cache
    _hire(fresh)
    full = _run(fresh)
    assert full["cache"]["reused"] == 0
    a, b = _rows(wh, incr["run_id"]), _rows(fresh, full["run_id"])
    for t in (*_EXACT, *_CACHE, *_STATES):
        assert len(a[t]) and a[t].equals(b[t]), t
    agent = pl.col("method") == "agent"
    assert a["forecast_backtest"].filter(agent).equals(b["forecast_backtest"].filter(agent))


@pytest.mark.slow
def test_a_new_team_replays_everything(weeks: dict, tmp_path: Path) -> None:
    """Per-team records are stored as arrays by team: a new team renumbers them."""
    wh = _copy(weeks["after"], tmp_path)
    _hire(wh)
    with wh.connect() as con:
        con.execute("UPDATE crm.users SET team = 'A new team' WHERE user_id = 'U99999'")
    release_all()
    run = _run(wh)
    assert run["cache"]["full_replay"]
    # The hire is not a part that moved (the new user owns nothing then); the team list is.
    assert run["cache"]["why"].endswith("changed: the list of teams or regions"), run["cache"]


def test_a_cache_without_parts_or_with_bad_ones_gives_the_reason_in_general_words() -> None:
    """A cache stored before migration 025 has no parts, and a warehouse may come from
    someone else: parts that are not a map of strings, or that do not make the stored
    fingerprint, lose only the reason's detail."""
    parts = {"settings": "a", "history": "b", "crm.activities": "c"}
    moved = {**parts, "crm.activities": "d", "users": "e"}
    at = dt.datetime(2024, 3, 1)

    def stored(p: dict[str, str] | None, whole: str) -> Stored:
        return Stored(at, dt.date(2023, 10, 1), whole, Reuse({}, {}, {}), p)

    why = _changed(moved, stored(parts, _whole(parts)))
    assert why.endswith("changed: crm.activities, a user a past snapshot can see"), why
    for bad in (None, {**parts, "history": "x"}):  # none, or not the stored fingerprint's
        why = _changed(moved, stored(bad, _whole(parts)))
        assert "a correction to history" in why and ":" not in why.split("changed")[1], why
    for text in ("", "not json", "[1, 2]", '{"a": 1}', '{"a": "b"}'):
        assert _parts_of(text) == ({"a": "b"} if text == '{"a": "b"}' else None), text


def test_a_role_without_a_date_is_in_the_fingerprint_of_every_cut(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """A buying role with no ``added_at`` counts from its deal's creation
    (``agents.features``), so a snapshot before the cache's as-of sees it: a change to
    one changes what a replay of that snapshot computes, and moves the fingerprint."""
    from revstack.agents.forecast._inputs import compute_states, load
    from tests.agents._contexts import agent_context

    wh = _copy(small_company.path, tmp_path)
    with wh.connect() as con:  # a deal open at BEFORE whose one champion is on it by then
        deal, contact = con.execute(
            """SELECT opportunity_id, any_value(contact_id) FROM crm.opportunity_contacts
            WHERE role = 'champion' AND opportunity_id IN (
                SELECT opportunity_id FROM crm.opportunity_history GROUP BY ALL
                HAVING min(changed_at) < $at AND max(changed_at) > $at)
            GROUP BY ALL HAVING count(*) = 1 AND max(added_at) < $at
            ORDER BY ALL LIMIT 1""",
            {"at": BEFORE},
        ).fetchone()  # type: ignore[misc]
        roles = (
            "UPDATE crm.opportunity_contacts SET {} WHERE opportunity_id = $d AND contact_id = $c"
        )
        con.execute(roles.format("added_at = NULL"), {"d": deal, "c": contact})
    release_all()

    def seen() -> tuple[str, bool]:
        inp = load(agent_context(wh, "forecast"))
        states = compute_states(inp, [BEFORE], [deal])
        return fingerprint(inp, BEFORE, {"agent": "test"}), states["has_champion"][0]

    first, champion = seen()
    with wh.connect() as con:  # the champion's role corrected to an influencer's
        con.execute(roles.format("role = 'influencer'"), {"d": deal, "c": contact})
    release_all()
    second, still = seen()
    assert champion and not still  # the snapshot at BEFORE reads the undated role
    assert second != first
