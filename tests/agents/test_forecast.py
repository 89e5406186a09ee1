"""The forecast agent on the generated small company (one engine run, shared) and on the
real maven_crm export: what it stores, that it cannot see the future, that its ranges
are ordered and add up, and how well calibrated it is against what really happened."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from revstack.agents.engine import Context
from revstack.agents.forecast import load, run_forecast, to_outputs
from revstack.cli import main
from revstack.contracts import load_all
from revstack.data.ingest import ingest
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse, frame, release_all
from revstack.metrics.forecast_store import backtest, live_forecasts, reliability_curve


def _inputs(wh: Warehouse):
    bundle = load_all()
    with wh.connect() as con:
        as_of = data_as_of(con)
    ctx = Context(
        wh,
        agent="forecast",
        reads=bundle.contracts["forecast"].reads,
        as_of=as_of,
        definitions=bundle.definitions,
    )
    return load(ctx)


@pytest.mark.slow
def test_a_run_stores_ranges_drivers_and_its_backtest(forecast_company: Warehouse) -> None:
    with forecast_company.connect() as con:
        live = live_forecasts(con)
        bt = backtest(con)
        drivers = frame(con, "SELECT * FROM ops.forecast_drivers")
        as_of = data_as_of(con)
    assert set(live["period_kind"]) == {"month", "quarter"}
    assert set(live["segment_kind"]) == {"company", "region", "team", "rep"}
    assert set(live["snapshot_date"]) == {as_of.date()}
    assert set(bt["method"]) == {
        "agent",
        "rep_commit",
        "rep_commit_crm_fill",
        "rep_commit_submitted",
        "stage_weighted_crm",
        "stage_weighted_history",
        "seasonal_naive",
    }
    # Every period of the backtest is over and scored against its actual.
    assert bt.filter(pl.col("segment_kind") == "company")["actual"].null_count() == 0
    # The filled commit is the calls plus what stands in for reps who have not called:
    # never below the calls, at every snapshot that has any.
    company = bt.filter(pl.col("segment_kind") == "company")
    at = ["period_kind", "period_start", "snapshot_at"]
    calls = company.filter(method="rep_commit_submitted").select(*at, called="p50")
    both = company.filter(method="rep_commit").join(calls, on=at)
    assert len(both) and (both["p50"] >= both["called"] - 1e-6).all()
    assert len(drivers) and drivers["variance_share"].max() <= 1.0
    assert set(drivers["period_kind"]) == {"month", "quarter"}


# Each rep's latest call for a period at or before a moment, summed, and how many reps had
# made one: counted from the submissions themselves, not by the forecast's code.
_CALLS = """
SELECT period_kind, sum(commit_amount)::DOUBLE AS called, count(*) AS callers
FROM (
    SELECT s.period_type AS period_kind, s.commit_amount
    FROM crm.forecast_submissions s
    JOIN (SELECT * FROM (VALUES ('month', $month), ('quarter', $quarter)) t(kind, start)) p
      ON s.period_type = p.kind AND s.period_start = p.start
    WHERE s.submitted_at <= $at
    QUALIFY row_number() OVER (PARTITION BY s.period_type, s.user_id ORDER BY s.submitted_at DESC) = 1
)
GROUP BY period_kind
"""


def _assert_calls_told_apart(wh: Warehouse, live: pl.DataFrame) -> int:
    """The live company rows' calls and callers against the submissions; returns callers."""
    company = live.filter(segment_kind="company")
    assert len(company) == 2
    starts = dict(company.select("period_kind", "period_start").iter_rows())
    with wh.connect() as con:
        truth = frame(
            con,
            _CALLS,
            {
                "month": starts["month"],
                "quarter": starts["quarter"],
                "at": company["snapshot_at"][0],
            },
        )
    seen = 0
    for row in company.iter_rows(named=True):
        t = truth.filter(period_kind=row["period_kind"])
        called, callers = (t["called"][0], t["callers"][0]) if len(t) else (0.0, 0)
        assert row["rep_commit_calls"] == pytest.approx(called, rel=1e-9, abs=1e-6)
        assert row["reps_called"] == callers and row["reps"] > 0 and callers <= row["reps"]
        # The filled commit is the calls plus a stand-in for each rep who has not called.
        assert row["rep_commit"] >= row["rep_commit_calls"] - 1e-6
        if callers < row["reps"]:
            assert row["rep_commit"] > row["rep_commit_calls"]
        seen += callers
    return seen


@pytest.mark.slow
def test_the_live_rep_commit_on_a_period_s_first_day_is_all_stand_in(
    forecast_company: Warehouse,
) -> None:
    with forecast_company.connect() as con:
        live = live_forecasts(con)
    # The small company's data ends as both periods start: nobody has called yet.
    assert _assert_calls_told_apart(forecast_company, live) == 0


@pytest.mark.slow
def test_the_live_rep_commit_says_how_much_of_it_is_calls(small_company: Warehouse) -> None:
    # Day 19 of a month and day 50 of a quarter: some reps have called, some not.
    inp = dataclasses.replace(_inputs(small_company), as_of=dt.datetime(2025, 8, 20, 17))
    fc = run_forecast(
        inp, eval_from=dt.date(2025, 5, 1), refit_months=12, draws=100, live_draws=200
    )
    live = to_outputs(fc)["ops.forecasts"]
    assert _assert_calls_told_apart(small_company, live) > 0


@pytest.mark.slow
def test_ranges_are_ordered_and_segments_add_up(forecast_company: Warehouse) -> None:
    with forecast_company.connect() as con:
        live = live_forecasts(con)
        bt = backtest(con).filter(pl.col("method") == "agent")
    for df in (live, bt):
        assert (df["p10"] <= df["p50"]).all() and (df["p50"] <= df["p90"]).all()
    cols = ["expected", "won_to_date", "pipeline_expected", "new_expected"]
    for kind in ("month", "quarter"):
        part = live.filter(period_kind=kind)
        company = part.filter(segment_kind="company").select(cols).row(0)
        for seg in ("region", "team", "rep"):
            sums = part.filter(segment_kind=seg).select(pl.col(cols).sum()).row(0)
            assert sums == pytest.approx(company, rel=1e-9)
        # A segment's range sits inside the company's, and P90s add up to more than the total's P90.
        seg_p90 = part.filter(segment_kind="team")["p90"].sum()
        assert seg_p90 >= part.filter(segment_kind="company")["p90"][0]
    per = bt.group_by("period_kind", "period_start", "period_offset", "segment_kind").agg(
        pl.col("expected").sum()
    )
    wide = per.pivot(
        "segment_kind", index=["period_kind", "period_start", "period_offset"], values="expected"
    )
    assert np.allclose(wide["company"], wide["region"], rtol=1e-9)
    assert np.allclose(wide["company"], wide["team"], rtol=1e-9)


@pytest.mark.slow
def test_deal_probabilities_are_calibrated_on_generated_data(forecast_company: Warehouse) -> None:
    with forecast_company.connect() as con:
        curve = reliability_curve(con)
    assert len(curve)
    dense = curve.filter(pl.col("deals") >= 300)
    assert len(dense) >= 3
    # Out of sample, in every well-filled bin, the share won is within 3 points of the
    # prediction or within three binomial standard errors of it, and never 12 points
    # off. A deal is scored at up to three snapshot points of a period, so a bin holds
    # about a third as many independent outcomes as rows. (On mid every bin over 1,000
    # predictions is within 4.1 points; the small company's 2,000 deals are noisier.)
    n_eff = dense["deals"] / 3
    se = (dense["predicted"] * (1 - dense["predicted"]) / n_eff).sqrt()
    gap = (dense["predicted"] - dense["observed"]).abs()
    assert ((gap <= 0.03) | (gap <= 3 * se)).all() and gap.max() <= 0.12, dense
    overall = (curve["predicted"] * curve["deals"]).sum() / curve["deals"].sum()
    observed = (curve["observed"] * curve["deals"]).sum() / curve["deals"].sum()
    assert overall == pytest.approx(observed, abs=0.02)


@pytest.mark.slow
def test_range_coverage_on_generated_data_is_in_the_band(forecast_company: Warehouse) -> None:
    """P10-P90 should hold about 80% of outcomes. The small company has ~100 company
    snapshots, so the band is the 95% binomial spread around 80% at that size."""
    with forecast_company.connect() as con:
        bt = backtest(con).filter(
            (pl.col("method") == "agent") & (pl.col("segment_kind") == "company")
        )
    inside = ((bt["actual"] >= bt["p10"]) & (bt["actual"] <= bt["p90"])).mean()
    n = len(bt)
    half = 1.96 * np.sqrt(0.8 * 0.2 / n)
    assert n >= 80
    assert 0.8 - half - 0.05 <= inside <= 0.8 + half + 0.05


@pytest.mark.slow
def test_team_ranges_are_calibrated_on_team_outcomes(forecast_company: Warehouse) -> None:
    """Teams are read at levels learned from teams' own past PITs: read at the company's,
    mid's team ranges were far too wide (97% of team-months inside P10-P90), and a team
    that never wins (the catch-all of users without one) was handed new business and sat
    under its range every time. Team outcomes of one snapshot move together, so the band
    counts each snapshot once, not each team."""
    with forecast_company.connect() as con:
        bt = backtest(con).filter(
            (pl.col("method") == "agent") & (pl.col("segment_kind") == "team")
        )
    for kind in ("month", "quarter"):
        part = bt.filter(period_kind=kind)
        inside = ((part["actual"] >= part["p10"]) & (part["actual"] <= part["p90"])).mean()
        snapshots = part.select("period_start", "period_offset").n_unique()
        half = 1.96 * np.sqrt(0.8 * 0.2 / snapshots)
        assert snapshots >= 30 and len(part) >= 2 * snapshots, kind
        assert 0.8 - half <= inside <= 0.8 + half, (kind, inside, snapshots)
    assert (bt["segment"] != "(none)").all()  # nobody without a team wins anything here


def _with_future(inp, moment: dt.datetime):
    """The same CRM plus records stamped after ``moment``: a deal open then is won huge,
    a new deal is created and won, activity and a submission arrive."""
    from revstack.agents.forecast._inputs import holding_activities

    inp = holding_activities(inp)  # changed frames: the warehouse does not hold them
    h = inp.history
    open_then = (
        h.filter(pl.col("changed_at") <= moment)
        .sort("changed_at")
        .group_by("opportunity_id")
        .last()
    )
    victim = open_then.filter(~pl.col("stage").is_in(["closed_won", "closed_lost"]))[
        "opportunity_id"
    ][0]
    later = moment + dt.timedelta(days=3)
    extra = pl.DataFrame(
        {
            "history_id": ["X1", "X2", "X3"],
            "opportunity_id": [victim, "NEW1", "NEW1"],
            "changed_at": [later, later, later + dt.timedelta(days=5)],
            "stage": ["closed_won", "negotiation", "closed_won"],
            "amount": [9e7, 5e6, 5e6],
            "close_date": [later.date(), later.date(), later.date()],
            "forecast_category": ["closed", "commit", "closed"],
            "probability": [1.0, 0.7, 1.0],
            "changed_by": [h["changed_by"][0]] * 3,
        }
    ).cast(dict(h.schema))
    tables = dict(inp.feature_tables)
    tables["crm.opportunity_history"] = pl.concat([h, extra])
    acts = tables["crm.activities"]
    tables["crm.activities"] = pl.concat(
        [
            acts,
            acts.head(50).with_columns(
                occurred_at=pl.lit(later).cast(acts.schema["occurred_at"]),
                opportunity_id=pl.lit(victim),
            ),
        ]
    )
    deals = pl.concat([inp.deals, inp.deals.head(1).with_columns(opportunity_id=pl.lit("NEW1"))])
    subs = pl.concat(
        [
            inp.submissions,
            inp.submissions.tail(1).with_columns(
                submitted_at=pl.lit(later).cast(pl.Datetime("us")), commit_amount=pl.lit(1e9)
            ),
        ]
    )
    return type(inp)(
        tables["crm.opportunity_history"],
        deals,
        inp.users,
        subs,
        tables,
        False,
        inp.definitions,
        inp.as_of,
    )


def _same(a: pl.DataFrame, b: pl.DataFrame, keys: list[str], values: list[str]) -> None:
    a, b = a.sort(keys), b.sort(keys)
    assert a.select(keys).equals(b.select(keys))
    for v in values:  # sums may differ in the last bit with the order polars adds them in
        assert np.allclose(a[v].to_numpy(), b[v].to_numpy(), rtol=1e-9, equal_nan=True), v


@pytest.mark.slow
def test_a_future_record_changes_nothing_about_a_past_snapshot(small_company: Warehouse) -> None:
    inp = _inputs(small_company)
    moment = dt.datetime(2025, 7, 1, 12)
    kw = {"eval_from": dt.date(2025, 4, 1), "until": moment, "refit_months": 12, "draws": 300}
    before = run_forecast(inp, **kw)
    after = run_forecast(_with_future(inp, moment), **kw)
    assert before.agent["moment"].max() == moment and len(before.agent) > 20
    # Everything a snapshot says (not the actual it is later scored against) is unchanged.
    snap = ["period_kind", "period_start", "offset", "segment_kind", "segment"]
    _same(
        before.agent,
        after.agent,
        snap,
        ["p10", "p50", "p90", "expected", "won_to_date", "pipeline_expected", "new_expected"],
    )
    _same(before.baselines, after.baselines, [*snap, "method"], ["value"])
    _same(
        before.deals,
        after.deals,
        ["period_kind", "period_start", "offset", "opportunity_id"],
        ["p", "value"],
    )

    # ... while the future records are really there: July is scored against the huge win.
    def july(fc) -> float:
        return fc.agent.filter(
            segment_kind="company", period_kind="month", period_start=dt.date(2025, 7, 1)
        )["actual"][0]

    assert july(after) - july(before) >= 9e7


def _shuffled(inp, seed: int):
    """The same CRM with every table's rows in another order."""
    from revstack.agents.forecast._inputs import holding_activities

    inp = holding_activities(inp)  # the states from the shuffled frames
    rng = np.random.default_rng(seed)

    def shuffle(df: pl.DataFrame) -> pl.DataFrame:
        return df[rng.permutation(len(df))]

    tables = {name: shuffle(df) for name, df in inp.feature_tables.items()}
    history = tables["crm.opportunity_history"]
    return dataclasses.replace(
        inp,
        history=history,
        deals=shuffle(inp.deals),
        users=shuffle(inp.users),
        submissions=shuffle(inp.submissions),
        feature_tables=tables,
    )


@pytest.mark.slow
def test_the_forecast_does_not_depend_on_row_order(small_company: Warehouse) -> None:
    """A warehouse scan promises no row order. The sample a model fits on, its
    early-stopping split and the draw each deal gets all go by position, so the agent
    fixes the order itself; before it did, CI saw a past P10 move 24% between two runs."""
    inp = _inputs(small_company)
    kw = {
        "eval_from": dt.date(2025, 4, 1),
        "until": dt.datetime(2025, 7, 1, 12),
        "refit_months": 12,
        "draws": 300,
    }
    a, b = run_forecast(inp, **kw), run_forecast(_shuffled(inp, 5), **kw)
    snap = ["period_kind", "period_start", "offset", "segment_kind", "segment"]
    _same(
        a.agent,
        b.agent,
        snap,
        ["p10", "p50", "p90", "expected", "pipeline_expected", "new_expected"],
    )
    _same(
        a.deals,
        b.deals,
        ["period_kind", "period_start", "offset", "opportunity_id"],
        ["p", "value"],
    )


@pytest.mark.slow
def test_cli_backtest_on_maven_a_crm_without_history(
    tmp_path: Path, shared_data: Path, capsys
) -> None:
    db = tmp_path / "maven.duckdb"
    ingest(Warehouse(db), "maven", shared_data / "maven_crm")
    release_all()
    inp = _inputs(Warehouse(db))
    assert inp.rebuilt_history and inp.submissions.is_empty()
    code = main(
        [
            "forecast",
            "backtest",
            "--db",
            str(db),
            "--json",
            "--from",
            "2017-04-01",
            "--refit-months",
            "3",
            "--draws",
            "300",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["actuals"] == "crm (closed won)" and out["history_rebuilt"]
    month = next(r for r in out["company"] if r["period_kind"] == "month" and r["offset"] == "all")
    assert month["periods"] == 8  # April to November 2017; December ends after the data's as-of
    # Maven records no forecast calls: no rep-commit baseline; the others are there.
    assert set(month["baselines"]) == {
        "stage_weighted_crm",
        "stage_weighted_history",
        "seasonal_naive",
    }
    assert 0 <= month["range"]["coverage"] <= 1 and month["agent"]["mape"] is not None
    # Against each baseline, the MAPE ratio over the eight months, with its interval.
    assert set(month["mape_ratio"]) == set(month["baselines"])
    for method, r in month["mape_ratio"].items():
        assert r["periods"] == 8 and r["low"] <= r["ratio"] <= r["high"]
        assert r["ratio"] == pytest.approx(
            month["agent"]["mape"] / month["baselines"][method]["mape"]
        )
    assert set(out["deals"]) == {"month", "quarter"}


def test_cli_backtest_on_an_empty_warehouse_is_a_one_line_error(wh: Warehouse, capsys) -> None:
    assert main(["forecast", "backtest", "--db", str(wh.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to backtest" in err[0]


@pytest.mark.slow
def test_a_live_snapshot_between_fixed_points_learns_from_the_point_before(
    small_company: Warehouse,
) -> None:
    # Data ending on day 19 of a month and day 50 of a quarter: neither is a fixed point.
    inp = dataclasses.replace(_inputs(small_company), as_of=dt.datetime(2025, 8, 20, 17))
    fc = run_forecast(
        inp, eval_from=dt.date(2025, 1, 1), refit_months=12, draws=200, live_draws=400
    )
    live = {m["period_kind"]: m for m in fc.params["live"]}
    assert (live["month"]["offset"], live["quarter"]["offset"]) == (19, 50)
    # The combination learned from past periods (month day 14 of the same month of quarter
    # since January: Feb and May; quarter day 28: Q1 and Q2), not from nothing.
    assert live["month"]["periods"] == 2 and live["quarter"]["periods"] == 2
    company = fc.agent.filter(pl.col("live") & (pl.col("segment_kind") == "company"))
    # New business comes from the same day of past periods: real money, not an empty series' $1.
    new = dict(company.select("period_kind", "new_expected").iter_rows())
    assert new["quarter"] > 1000, new
    assert company["p10"].is_finite().all() and company["p90"].is_finite().all()


def test_each_past_period_is_in_a_new_business_series_once(small_company: Warehouse) -> None:
    from revstack.agents.forecast._backtest import prepare

    # Data ending on a fixed point (day 0 of a month and a quarter), and between points.
    for as_of in (dt.datetime(2025, 7, 1, 0), dt.datetime(2025, 8, 20, 17)):
        pre = prepare(dataclasses.replace(_inputs(small_company), as_of=as_of))
        new = pre["new"]
        assert new.select(
            pl.struct("period_kind", "period_start", "offset").is_unique().all()
        ).item(), as_of
        live = (as_of.date() - dt.date(2025, 7, 1)).days
        past = new.filter((pl.col("period_kind") == "quarter") & (pl.col("offset") == live))
        assert len(past) >= 8  # every earlier quarter of the history, at the live offset


@pytest.mark.slow
def test_a_bag_of_deal_models_is_their_mean_and_moves_less_with_the_seed(
    small_company: Warehouse,
) -> None:
    from revstack.agents.forecast._backtest import prepare
    from revstack.agents.forecast._model import BaggedWinModel, WinModel

    rows = prepare(_inputs(small_company))["rows"]
    cut = dt.date(2025, 1, 1)
    train, test = (
        rows.filter(pl.col("period_end") <= cut),
        rows.filter(pl.col("period_start") >= cut),
    )
    assert len(train) > 5_000 and len(test) > 1_000
    bags = [BaggedWinModel(bag=3, random_state=s, workers=2).fit(train) for s in (0, 1)]
    members = np.mean([m.predict_proba(test) for m in bags[0].members], axis=0)
    assert np.array_equal(bags[0].predict_proba(test), members)
    # Fits run side by side in threads give what one after the other gives, to the bit.
    one_by_one = BaggedWinModel(bag=3, random_state=0, workers=1).fit(train)
    assert np.array_equal(one_by_one.predict_proba(test), bags[0].predict_proba(test))
    # Two bags' tree fits queued on one pool, as a backtest queues the next refits' fits
    # while it scores a block: the same models.
    with ThreadPoolExecutor(2) as pool:
        waits = [BaggedWinModel(bag=3, random_state=s).submit(train, pool) for s in (0, 1)]
        queued = [wait() for wait in waits]
    for q, b in zip(queued, bags, strict=True):
        assert np.array_equal(q.predict_proba(test), b.predict_proba(test))
    assert len({m.random_state for b in bags for m in b.members}) == 6  # six distinct fits
    singles = [WinModel(random_state=s).fit(train).predict_proba(test) for s in (0, 1)]
    single_gap = np.abs(singles[0] - singles[1]).mean()
    bag_gap = np.abs(bags[0].predict_proba(test) - bags[1].predict_proba(test)).mean()
    assert single_gap > 0  # the seed matters to one fit, else there is nothing to average out
    assert bag_gap < 0.8 * single_gap, (bag_gap, single_gap)


def test_cli_backtest_refuses_a_bag_of_no_models(wh: Warehouse, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["forecast", "backtest", "--db", str(wh.path), "--bag", "0"])
    assert exit_.value.code == 2
    assert "--bag: not a whole number of at least 1: '0'" in capsys.readouterr().err
