"""The forecast's stored as-of deal rows (``_states``) on "two weeks" of the small company
(cut at 2024-02-27 and 2024-03-05): the rows a run builds from the last run's are the
ones a full replay builds, a contact edited after the stored as-of is recomputed where
it was counted, and what the stored rows cannot account for computes every moment."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.forecast import _inputs, _periods, _states
from revstack.data.warehouse import Warehouse, release_all
from tests.agents._weeks import cut, forecast_inputs

BEFORE, AFTER = dt.datetime(2024, 2, 27, 8), dt.datetime(2024, 3, 5, 8)
_KEY = ["period_kind", "period_start", "offset"]


def _moments(inp: _inputs.Inputs) -> list[dt.datetime]:
    """Every snapshot moment a run at the data's as-of asks about (as ``prepare`` does)."""
    first = inp.history["changed_at"].min()
    assert isinstance(first, dt.datetime)
    snaps = pl.concat(
        [_periods.snapshots(first.date(), inp.as_of), _periods.live_snapshots(inp.as_of)]
    ).unique(_KEY, keep="last")
    return snaps["moment"].unique().sort().to_list()


def _kept(inp: _inputs.Inputs) -> _states.Kept:
    rows, note = _states.states_at(inp, _moments(inp), None)
    assert note["reused_moments"] == 0
    return _states.Kept(inp.as_of, _states.guard(inp), _states.departed(inp, inp.as_of), rows)


@pytest.fixture(scope="module")
def weeks(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The first week's stored rows, and the second week's warehouse."""
    tmp = tmp_path_factory.mktemp("states")
    before = cut(small_company.path, tmp / "before.duckdb", BEFORE)
    after = cut(small_company.path, tmp / "after.duckdb", AFTER)
    return {"kept": _kept(forecast_inputs(before, BEFORE)), "after": after.path}


def _edited(path: Path, tmp_path: Path, *sqls: str) -> _inputs.Inputs:
    release_all()
    shutil.copy(path, tmp_path / "edited.duckdb")
    wh = Warehouse(tmp_path / "edited.duckdb")
    with wh.connect() as con:
        for sql in sqls:
            con.execute(sql, {"before": BEFORE})
    release_all()
    return forecast_inputs(wh, AFTER)


@pytest.mark.slow
def test_the_next_weeks_rows_are_a_full_replays(weeks: dict) -> None:
    inp = forecast_inputs(Warehouse(weeks["after"]), AFTER)
    moments = _moments(inp)
    incr, note = _states.states_at(inp, moments, weeks["kept"])
    full, _ = _states.states_at(inp, moments, None)
    assert incr.equals(full)
    stored = set(weeks["kept"].rows["as_of"].unique().to_list())
    assert note["reused_moments"] == len([m for m in moments if m in stored]) > 20
    assert note["computed_moments"] == len([m for m in moments if m not in stored]) >= 1
    assert note["computed_moments"] + note["reused_moments"] == len(moments)


@pytest.mark.slow
def test_stored_rows_read_in_any_order_give_the_full_replays(weeks: dict) -> None:
    """The stored table is read in any order (``_states.read``): the rows come out sorted
    by moment and deal all the same, with the moments computed this week in place."""
    kept: _states.Kept = weeks["kept"]
    shuffled = _states.Kept(
        kept.as_of, kept.guard, kept.departed, kept.rows.sample(fraction=1.0, shuffle=True, seed=3)
    )
    assert not shuffled.rows.equals(kept.rows)
    inp = forecast_inputs(Warehouse(weeks["after"]), AFTER)
    moments = _moments(inp)
    incr, note = _states.states_at(inp, moments, shuffled)
    full, _ = _states.states_at(inp, moments, None)
    assert note["computed_moments"] >= 1 and note["reused_moments"] > 20
    assert incr.equals(full)


@pytest.mark.slow
def test_a_contact_edited_after_the_stored_as_of_is_recomputed(weeks: dict, tmp_path: Path) -> None:
    """A champion counted as gone at stored moments (inactive or bounced, record unchanged
    since) whose record is edited after the stored as-of counts no more at those moments
    in a full replay: the stored rows must follow."""
    kept: _states.Kept = weeks["kept"]
    gone = kept.rows.filter(pl.col("champion_left")).sort("as_of", "opportunity_id")
    assert len(gone), "the small company has departed champions"
    deal = gone["opportunity_id"][0]
    inp = _edited(
        weeks["after"],
        tmp_path,
        f"""UPDATE crm.contacts SET updated_at = $before + INTERVAL 1 DAY
        WHERE contact_id IN (SELECT contact_id FROM crm.opportunity_contacts
                             WHERE opportunity_id = '{deal}' AND role = 'champion')""",
    )
    moments = _moments(inp)
    incr, note = _states.states_at(inp, moments, kept)
    full, _ = _states.states_at(inp, moments, None)
    assert note["reused_moments"] > 20 and note["recomputed_deals"] >= 1
    assert incr.equals(full)
    stored_at = pl.col("as_of") <= BEFORE
    here = incr.filter((pl.col("opportunity_id") == deal) & stored_at)
    assert len(here) and not here["champion_left"].any()


@pytest.mark.slow
@pytest.mark.parametrize(
    "sql",
    [
        # A departure written in place on a contact in a buying role, its record's date
        # left as it was.
        """UPDATE crm.contacts SET is_active = NOT is_active
        WHERE contact_id = (SELECT min(contact_id) FROM crm.contacts
                            JOIN crm.opportunity_contacts USING (contact_id)
                            WHERE updated_at <= $before AND added_at <= $before)""",
        # A buying role without a date: it counts from the deal's creation.
        """UPDATE crm.opportunity_contacts SET added_at = NULL
        WHERE contact_id = (SELECT min(contact_id) FROM crm.opportunity_contacts
                            WHERE added_at <= $before)""",
    ],
    ids=["contact-edited-in-place", "undated-role"],
)
def test_what_the_stored_rows_cannot_account_for_computes_every_moment(
    weeks: dict, tmp_path: Path, sql: str
) -> None:
    inp = _edited(weeks["after"], tmp_path, sql)
    moments = _moments(inp)
    incr, note = _states.states_at(inp, moments, weeks["kept"])
    assert note["reused_moments"] == 0 and "changed" in note["why"]
    full, _ = _states.states_at(inp, moments, None)
    assert incr.equals(full)


@pytest.mark.slow
def test_a_contact_added_since_with_an_older_record_date_is_no_check_failure(
    weeks: dict, tmp_path: Path
) -> None:
    """A weekly load can bring a contact whose record is dated before the stored as-of
    (the generator's replay does): it can only hold roles added since, so the stored rows
    stand, and the deal it joins is recomputed."""
    kept: _states.Kept = weeks["kept"]
    counts = kept.rows.group_by("opportunity_id").len()
    deal = counts.sort("len", "opportunity_id", descending=[True, False])["opportunity_id"][0]
    inp = _edited(
        weeks["after"],
        tmp_path,
        """INSERT INTO crm.contacts SELECT * REPLACE (
                'C-new' AS contact_id, FALSE AS is_active, $before - INTERVAL 30 DAY AS updated_at)
            FROM crm.contacts LIMIT 1""",
        f"""INSERT INTO crm.opportunity_contacts SELECT * REPLACE (
                '{deal}' AS opportunity_id, 'C-new' AS contact_id, 'champion' AS role,
                $before + INTERVAL 1 DAY AS added_at)
            FROM crm.opportunity_contacts LIMIT 1""",
    )
    moments = _moments(inp)
    incr, note = _states.states_at(inp, moments, kept)
    assert note["reused_moments"] > 20 and note["recomputed_deals"] >= 1, note
    full, _ = _states.states_at(inp, moments, None)
    assert incr.equals(full)
