"""A very large company's backtest on a sample of whole teams (``_sample``): chosen only
above a deal count, and then the past snapshots' rows are the full replay's rows of the
sampled teams' owners, the live snapshots' rows every owner's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from revstack.agents.forecast import _backtest, _sample
from revstack.data.generator import SCALES
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse
from tests.agents._weeks import forecast_inputs


def _users(teams: int, per: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [f"u{t}-{i}" for t in range(teams) for i in range(per)] + ["exec"],
            "team": [f"team {t}" for t in range(teams) for _ in range(per)] + [None],
        }
    )


def _deals(n: int) -> pl.DataFrame:
    return pl.DataFrame({"opportunity_id": [f"d{i}" for i in range(n)]})


def test_only_above_the_threshold_and_whole_teams() -> None:
    users = _users(40, 5)
    assert _sample.owners(_deals(1_000), users, above=1_000, to=100) is None
    picked = _sample.owners(_deals(1_001), users, above=1_000, to=100)
    assert picked is not None
    # a tenth of the deals: four of the forty teams, all five members of each
    teams = {u.split("-")[0] for u in picked}
    assert len(teams) == 4 and len(picked) == 20
    assert picked == _sample.owners(_deals(1_001), users, above=1_000, to=100)  # seeded
    assert picked != _sample.owners(_deals(1_001), users, above=1_000, to=100, seed=1)
    # at least one team, however few deals it should hold
    assert len(_sample.owners(_deals(10**6), users, above=1_000, to=1) or ()) == 5


def test_every_generated_company_below_the_large_one_replays_every_deal() -> None:
    assert max(s.opportunities for n, s in SCALES.items() if n != "large") <= _sample.SAMPLE_ABOVE
    assert SCALES["large"].opportunities > _sample.SAMPLE_ABOVE


@pytest.fixture(scope="module")
def both(small_company: Warehouse) -> dict:
    with small_company.connect() as con:
        as_of = data_as_of(con)
    inp = forecast_inputs(small_company, as_of)
    # the small company has three teams: a sample of a third of its deals is one of them
    size = {"above": 0, "to": len(inp.deals) // 3}
    return {
        "inp": inp,
        "full": _backtest.prepare(inp),
        "sampled": _backtest.prepare(inp, sample_size=size),
        "owners": _sample.owners(inp.deals, inp.users, **size),
    }


_KEYS = ["as_of", "period_kind", "opportunity_id"]
_KEY = ["period_kind", "period_start", "offset"]
# Sums over each rep's earlier calls, whose last bit differs between two runs of the
# same code (docs/forecast.md, Speed).
_SUMS = ("commit_bias", "commit_cover_debiased")


def test_sampled_rows_are_the_full_replays_of_the_sampled_owners(both: dict) -> None:
    inp, full, sampled, owners = both["inp"], both["full"], both["sampled"], both["owners"]
    assert owners and len(owners) < inp.users.height
    assert sampled["sample"] == len(owners)
    ids = pl.Series(sorted(owners), dtype=pl.String).implode()
    live = pl.col("as_of") == inp.as_of
    want = full["rows"].filter(live | pl.col("owner_id").is_in(ids)).sort(_KEYS)
    got = sampled["rows"].sort(_KEYS)
    assert 0 < got.filter(~live).height < full["rows"].filter(~live).height
    assert got.filter(live).height == full["rows"].filter(live).height  # every open deal
    assert got.drop(_SUMS).equals(want.drop(_SUMS))
    for c in _SUMS:
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-12)
    # scored against the sampled owners' wins; the live snapshots' new business every owner's
    assert set(sampled["actuals"]["owner_id"].unique()) <= set(owners)
    assert sampled["actuals_all"].equals(full["actuals"])
    assert sampled["new_live"].sort(pl.all()).equals(full["new"].sort(pl.all()))
    assert sampled["new"]["new"].sum() < full["new"]["new"].sum()


def test_a_sampled_backtest_scores_the_sample_and_forecasts_everyone(both: dict) -> None:
    inp, sampled = both["inp"], both["sampled"]
    fc = _backtest.run_forecast(inp, prepared=sampled, draws=200, live_draws=400, bag=1)
    company = fc.agent.filter(pl.col("segment_kind") == "company")
    past = company.filter(~pl.col("live") & pl.col("actual").is_not_null())
    # past actuals are the sampled teams' wins
    won = sampled["actuals"].group_by("period_kind", "period_start").agg(pl.col("amount").sum())
    j = past.join(won, on=["period_kind", "period_start"], how="left")
    np.testing.assert_allclose(j["actual"].to_numpy(), j["amount"].fill_null(0).to_numpy())
    # the live range is every team's: each team with an open deal expects something
    live_owners = sampled["rows"].filter(pl.col("as_of") == inp.as_of)["owner_id"]
    open_teams = set(
        inp.users.filter(pl.col("user_id").is_in(live_owners.implode()))["team"].drop_nulls()
    )
    assert len(open_teams) > 1
    teams = fc.agent.filter(pl.col("live") & (pl.col("segment_kind") == "team"))
    expects = dict(teams.group_by("segment").agg(pl.col("expected").min()).iter_rows())
    assert all(expects[t] > 0 for t in open_teams)
    # read at levels moved to the whole company's scale (``_sample_range``): one team's
    # simulation is wider for its size than three teams'
    assert fc.params["live"] and all(p["widen_company"] > 1.0 for p in fc.params["live"])


def test_the_shadow_scores_the_whole_company_and_changes_nothing_else(both: dict) -> None:
    """``run_forecast(shadow=)`` (``bench/forecast_accuracy.py --sampled``)."""
    inp, full, sampled = both["inp"], both["full"], both["sampled"]
    kw = {"draws": 200, "live_draws": 400, "bag": 1}
    plain = _backtest.run_forecast(inp, prepared=sampled, **kw)
    fc = _backtest.run_forecast(inp, prepared=sampled, shadow=full, **kw)
    assert plain.shadow is None and fc.shadow is not None
    assert fc.agent.equals(plain.agent)
    company = fc.shadow.filter(pl.col("segment_kind") == "company")
    scored = plain.agent.filter(
        pl.col("actual").is_not_null() & (pl.col("segment_kind") == "company")
    )
    assert company.select(_KEY).sort(pl.all()).equals(scored.select(_KEY).sort(pl.all()))
    won = full["actuals"].group_by("period_kind", "period_start").agg(pl.col("amount").sum())
    j = company.join(won, on=["period_kind", "period_start"], how="left")
    np.testing.assert_allclose(j["actual"].to_numpy(), j["amount"].fill_null(0).to_numpy())
    # the whole company's wins, more than the sample's
    both_ = company.join(scored, on=_KEY, suffix="_sample")
    assert (both_["actual"] >= both_["actual_sample"]).all()
    assert (both_["actual"] > both_["actual_sample"]).mean() > 0.5


@pytest.mark.slow
def test_a_week_later_the_stored_rows_give_the_sampled_replays(
    small_company: Warehouse, tmp_path: Path
) -> None:
    """A weekly run of a sampled company takes the last run's stored rows (the sampled
    deals' at past moments) and builds the rows a sampled full replay builds."""
    from revstack.agents.forecast import _states
    from tests.agents._weeks import cut

    before, after = dt.datetime(2024, 2, 27, 8), dt.datetime(2024, 3, 5, 8)
    first = forecast_inputs(cut(small_company.path, tmp_path / "before.duckdb", before), before)
    size = {"above": 0, "to": len(first.deals) // 3}
    pre = _backtest.prepare(first, sample_size=size)
    kept = _states.Kept(
        first.as_of, _states.guard(first), _states.departed(first, first.as_of), pre["states"]
    )
    later = forecast_inputs(cut(small_company.path, tmp_path / "after.duckdb", after), after)
    weekly = _backtest.prepare(later, kept=kept, sample_size=size)
    replay = _backtest.prepare(later, sample_size=size)
    note = weekly["states_note"]
    assert note["reused_moments"] > 20 and note["computed_moments"] >= 2  # a fixed point crossed
    got, want = weekly["rows"].sort(_KEYS), replay["rows"].sort(_KEYS)
    assert got.drop(_SUMS).equals(want.drop(_SUMS))
    assert weekly["baselines"].sort(pl.all()).equals(replay["baselines"].sort(pl.all()))
