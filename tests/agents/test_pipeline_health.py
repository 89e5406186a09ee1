"""The pipeline health agent on the small generated company: every signal fires on the
deals planted with its risk and on none of the healthy controls, flags carry their
evidence rows, and nothing after the run's moment reaches the model or the rules."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import Context, run_agents
from revstack.agents.pipeline_health import PipelineHealth
from revstack.agents.registry import specs
from revstack.contracts import load_all
from revstack.data.warehouse import Warehouse, frame, release_all, scalar
from tests.agents._contexts import agent_context

AS_OF = dt.datetime(2026, 10, 1)
# deal -> what is planted: days since created, days in stage, pushes, close date in N days,
# first / current amount, answers (days ago, contact), roles, champion gone N days ago.
_HEALTHY = dict(
    created=40,
    in_stage=10,
    pushes=0,
    close_in=40,
    first=50_000.0,
    now=50_000.0,
    answers=[(2, 0), (3, 1), (4, 2)],
    roles=("economic_buyer", "champion", "technical_buyer"),
    gone=None,
)
PLANTED = {
    "gone_quiet": dict(_HEALTHY, created=100, answers=[(60, 0), (61, 1), (62, 2)]),
    "close_date_slipped": dict(_HEALTHY, in_stage=20, pushes=4),
    "champion_departed": dict(_HEALTHY, gone=5),
    "low_multithreading": dict(
        _HEALTHY, answers=[(2, 0), (3, 0)], roles=("technical_buyer", "champion", "user")
    ),
    "stage_age_outlier": dict(_HEALTHY, created=420, in_stage=400),
    "close_date_passed": dict(_HEALTHY, close_in=-10),
    "amount_cut": dict(_HEALTHY, first=100_000.0, now=50_000.0),
    "phantom": dict(
        _HEALTHY, created=200, in_stage=150, close_in=-90, answers=[(100, 0), (101, 1), (102, 2)]
    ),
}
CONTROLS = ["P-healthy-1", "P-healthy-2", "P-healthy-3"]


def _plant(con, deal: str, p: dict, owner: str, account: str) -> None:
    day = dt.timedelta(days=1)
    t0, t1 = AS_OF - p["created"] * day, AS_OF - p["in_stage"] * day
    close = (AS_OF + p["close_in"] * day).date()
    first_close = close - dt.timedelta(days=10 * p["pushes"])
    rows = [(t0, "prospecting", p["first"], first_close), (t1, "proposal", p["first"], first_close)]
    rows += [
        (t1 + (i + 1) * day, "proposal", p["first"], first_close + dt.timedelta(days=10 * (i + 1)))
        for i in range(p["pushes"])
    ]
    rows.append((t1 + (p["pushes"] + 1) * day, "proposal", p["now"], close))
    for i, (t, stage, amount, c) in enumerate(rows):
        con.execute(
            "INSERT INTO crm.opportunity_history (history_id, opportunity_id, changed_at, stage, "
            "amount, close_date, forecast_category, probability, changed_by, source) "
            "VALUES ($h, $o, $t, $s, $a, $c, 'best_case', 0.4, $u, 'test')",
            {"h": f"{deal}-h{i}", "o": deal, "t": t, "s": stage, "a": amount, "c": c, "u": owner},
        )
    con.execute(
        "INSERT INTO crm.opportunities (opportunity_id, account_id, owner_id, name, stage, amount, "
        "close_date, forecast_category, probability, is_closed, is_won, created_at, source) "
        "VALUES ($o, $acc, $u, $o, 'proposal', $a, $c, 'best_case', 0.4, false, false, $t, 'test')",
        {"o": deal, "acc": account, "u": owner, "a": p["now"], "c": close, "t": t0},
    )
    for k, role in enumerate(p["roles"]):
        gone = role == "champion" and p["gone"] is not None
        con.execute(
            "INSERT INTO crm.contacts (contact_id, account_id, last_name, is_active, email_bounced, "
            "updated_at, source) VALUES ($c, $acc, 'Planted', $active, false, $upd, 'test')",
            {
                "c": f"{deal}-c{k}",
                "acc": account,
                "active": not gone,
                "upd": AS_OF - (p["gone"] if gone else 300) * day,
            },
        )
        con.execute(
            "INSERT INTO crm.opportunity_contacts (opportunity_id, contact_id, role, is_primary, "
            "added_at, source) VALUES ($o, $c, $r, $first, $t, 'test')",
            {"o": deal, "c": f"{deal}-c{k}", "r": role, "first": k == 0, "t": t0},
        )
    touches = [(d, k, "two_way") for d, k in p["answers"]] + [(1, 0, "outbound")]
    for i, (d, k, direction) in enumerate(touches):
        con.execute(
            "INSERT INTO crm.activities (activity_id, activity_type, direction, status, occurred_at, "
            "account_id, contact_id, opportunity_id, owner_id, source) "
            "VALUES ($id, 'call', $dir, 'completed', $t, $acc, $c, $o, $u, 'test')",
            {
                "id": f"{deal}-a{i}",
                "dir": direction,
                "t": AS_OF - d * day - dt.timedelta(hours=1),
                "acc": account,
                "c": f"{deal}-c{k}",
                "o": deal,
                "u": owner,
            },
        )


@pytest.fixture(scope="module")
def planted(small_company: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    release_all()
    path = Path(tmp_path_factory.mktemp("planted")) / "planted.duckdb"
    shutil.copy(small_company.path, path)
    wh = Warehouse(path)
    with wh.transaction() as con:
        owner = scalar(con, "SELECT min(user_id) FROM crm.users WHERE role = 'rep' AND is_active")
        account = scalar(con, "SELECT min(account_id) FROM crm.accounts")
        for signal, p in PLANTED.items():
            _plant(con, f"P-{signal}", p, owner, account)
        for deal in CONTROLS:
            _plant(con, deal, _HEALTHY, owner, account)
    [result] = run_agents(wh, specs(), only="pipeline_health", definitions=load_all().definitions)
    assert result.status == "succeeded", result.message
    release_all()
    return wh


def _flags(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(con, "SELECT * FROM ops.risk_flags")


@pytest.mark.slow
def test_each_signal_fires_on_its_planted_deal_and_never_on_healthy_controls(
    planted: Warehouse,
) -> None:
    flags = _flags(planted)
    fired = flags.group_by("opportunity_id").agg(pl.col("signal")).rows()
    by_deal = {o: set(s) for o, s in fired}
    for signal in PLANTED:
        assert signal in by_deal.get(f"P-{signal}", set()), signal
    for deal in CONTROLS:
        assert by_deal.get(deal, set()) - {"model"} == set(), deal
    # the generated deals are flagged too, not only the planted ones
    assert flags.filter(~pl.col("opportunity_id").str.starts_with("P-"))["signal"].n_unique() >= 6


def test_flags_carry_reasons_and_their_evidence_rows(planted: Warehouse) -> None:
    flags = _flags(planted).filter(pl.col("opportunity_id").str.starts_with("P-"))
    ev = {
        (o, s): json.loads(e)
        for o, s, e in flags.select("opportunity_id", "signal", "evidence").rows()
    }
    pushes = ev[("P-close_date_slipped", "close_date_slipped")]["pushes"]
    assert [p["history_id"] for p in pushes] == [f"P-close_date_slipped-h{i}" for i in (2, 3, 4, 5)]
    assert all(p["new_close_date"] > p["old_close_date"] for p in pushes)
    roles = ev[("P-champion_departed", "champion_departed")]["buying_roles"]
    assert [r["is_active"] for r in roles if r["role"] == "champion"] == [False]
    quiet = ev[("P-gone_quiet", "gone_quiet")]
    assert quiet["last_answer"][0]["activity_id"] == "P-gone_quiet-a0"
    assert quiet["figures"]["days_since_two_way"] == 61  # day boundaries, as definitions count
    reason = flags.filter(opportunity_id="P-gone_quiet", signal="gone_quiet")["reason"].item()
    assert reason.startswith("no answer from the buyer for 61 days")
    assert flags["reason"].is_not_null().all() and (flags["flagged_at"] == AS_OF).all()


def test_the_agent_runs_in_shadow_and_proposes_one_flag_per_flagged_deal(
    planted: Warehouse,
) -> None:
    with planted.connect() as con:
        p = frame(con, "SELECT * FROM ops.proposals WHERE agent = 'pipeline_health'")
        flagged = scalar(con, "SELECT count(DISTINCT opportunity_id) FROM ops.risk_flags")
        scores = frame(con, "SELECT * FROM ops.risk_scores")
        open_deals = scalar(con, "SELECT count(*) FROM crm.opportunities WHERE NOT is_closed")
    assert (p["status"] == "shadow").all() and p["shadow"].all()
    assert len(p.filter(action_type="flag_risk")) == flagged
    moves = p.filter(action_type="move_to_at_risk")
    assert (moves["tier"] == 2).all() and (moves["field"] == "forecast_category").all()
    assert len(scores) == open_deals and scores["risk"].is_between(0, 1).all()


def _ctx(wh: Warehouse, as_of: dt.datetime) -> Context:
    return agent_context(wh, "pipeline_health", as_of=as_of)


@pytest.mark.slow
def test_the_model_and_rules_cannot_see_anything_after_the_moment(
    small_company: Warehouse, tmp_path: Path
) -> None:
    moment = dt.datetime(2025, 6, 2)
    release_all()
    cut = Warehouse(tmp_path / "cut.duckdb")
    shutil.copy(small_company.path, cut.path)
    with cut.transaction() as con:  # the world as it stood at the moment, for these tables
        con.execute("DELETE FROM crm.opportunity_history WHERE changed_at > $t", {"t": moment})
        con.execute("DELETE FROM crm.activities WHERE occurred_at > $t", {"t": moment})
        con.execute("DELETE FROM crm.opportunity_contacts WHERE added_at > $t", {"t": moment})
    full = PipelineHealth().run(_ctx(small_company, moment))
    past = PipelineHealth().run(_ctx(cut, moment))
    assert full.metadata["model"]["trained"] and full.metadata["model"]["n_train"] > 1000
    for table in ("ops.risk_scores", "ops.risk_flags"):
        a, b = full.outputs[table], past.outputs[table]
        assert len(a) > 50
        assert a.sort("opportunity_id", *(["signal"] if "signal" in a.columns else [])).equals(
            b.sort("opportunity_id", *(["signal"] if "signal" in b.columns else []))
        ), table


def test_evidence_gathered_per_signal_is_what_gathering_everything_gives(
    planted: Warehouse,
) -> None:
    """Each kind of evidence is gathered only for the deals whose signals show it: every
    document equals the one made when every flagged deal carries every signal (all kinds
    gathered for all of them), and the one the run stored."""
    from revstack.agents.features import TABLES, deal_states, frames_connection
    from revstack.agents.pipeline_health._evidence import evidence_for

    stored = _flags(planted).sort("opportunity_id", "signal")
    ctx = _ctx(planted, AS_OF)
    frames = {t: ctx.table(t) for t in TABLES}
    con = frames_connection(frames)
    try:
        now = deal_states(con, [AS_OF], definitions=ctx.definitions, open_only=True)
    finally:
        con.close()
    release_all()
    flags = stored.select(as_of="flagged_at", opportunity_id="opportunity_id", signal="signal")
    every = (
        flags.select("as_of", "opportunity_id")
        .unique()
        .join(pl.DataFrame({"signal": sorted(set(PLANTED) | {"model"})}), how="cross")
        .sort("opportunity_id", "signal")
    )
    inputs = (
        frames["crm.opportunity_history"],
        frames["crm.activities"],
        frames["crm.opportunity_contacts"],
        frames["crm.contacts"],
    )
    gathered = flags.with_columns(evidence=pl.Series(evidence_for(flags, now, *inputs)))
    everything = every.with_columns(evidence=pl.Series(evidence_for(every, now, *inputs)))
    assert set(flags["signal"]) >= set(PLANTED)  # every kind of evidence is shown somewhere
    assert gathered.equals(
        flags.join(everything, on=["as_of", "opportunity_id", "signal"], how="left")
    )
    assert gathered["evidence"].equals(stored["evidence"])


def test_training_rows_from_the_warehouse_are_those_of_the_whole_states(
    small_company: Warehouse,
) -> None:
    """The fit draws its sample from states built from the history alone, then builds the
    activity and buying-role figures only for the deals it reads (the sample's, today's,
    the won deals'): the sample's rows, their order and labels, today's states and the
    benchmarks are those of every deal's whole states held as a frame (the labels read
    the states' own ``is_won``, so leaving it out changed them)."""
    import numpy as np

    from revstack.agents.features import TABLES, deal_states, frames_connection, weekly_moments
    from revstack.agents.pipeline_health import _agent, closed_outcomes
    from revstack.agents.pipeline_health._risk_model import outcome_labels
    from revstack.agents.pipeline_health._signals import learn_benchmarks

    ctx = _ctx(small_company, AS_OF)
    d = ctx.definitions
    past = weekly_moments(dt.date(2024, 6, 3), dt.date(2026, 9, 28))
    frames = {t: ctx.table(t) for t in TABLES}
    con = frames_connection(frames)
    try:
        whole = deal_states(con, [*past, AS_OF], definitions=d, open_only=True)
    finally:
        con.close()
    final = closed_outcomes(frames, AS_OF, d)
    history = whole.filter(pl.col("as_of") < AS_OF)
    expected = history.join(outcome_labels(history, final), on=["as_of", "opportunity_id"])
    n = len(expected) // 2  # a sample, as the run draws one past _MAX_TRAIN rows
    rng = np.random.default_rng(3)
    expected = expected[np.sort(rng.choice(len(expected), n, replace=False))]
    assert n > 1000 and expected["label"].any() and not expected["label"].all()
    won = final.filter("is_won")["opportunity_id"]
    bench = learn_benchmarks(history, won, d)

    old = _agent._MAX_TRAIN
    _agent._MAX_TRAIN = n
    try:
        train, y, untrained, got_bench, now = _agent._refit_states(ctx, past, AS_OF, final, 3, d)
    finally:
        _agent._MAX_TRAIN = old
    assert untrained is None
    assert now.equals(whole.filter(pl.col("as_of") == AS_OF))
    assert train.select(expected.columns).equals(expected)
    assert (y == expected["label"].to_numpy()).all()
    assert got_bench == bench and bench.won_deals > 100
    # the activity figures differ between deals, so a row from the wrong deal would show
    assert train["days_since_two_way"].n_unique() > 50


def test_a_deal_won_in_its_quarter_within_the_horizon_is_no_risk() -> None:
    from revstack.agents.pipeline_health._risk_model import outcome_labels

    m0 = dt.datetime(2026, 7, 6)
    m1 = m0 + dt.timedelta(days=28)
    quarter_end = dt.date(2026, 9, 25)
    # Open rows carry the states' own is_won (False on every open deal), as
    # deal_states(..., open_only=True) gives them.
    states = pl.DataFrame(
        {
            "as_of": [m0, m0, m0, m1],
            "opportunity_id": ["won", "lost", "open", "open"],
            "close_date": [quarter_end] * 4,
            "is_won": [False] * 4,
        }
    )
    closed_at = m0 + dt.timedelta(days=7)
    final = pl.DataFrame(
        {
            "opportunity_id": ["won", "lost", "open"],
            "is_closed": [True, True, False],
            "is_won": [True, False, False],
            "stage_entered_at": [closed_at, closed_at, None],
            "close_date": [closed_at.date(), closed_at.date(), quarter_end],
        }
    )
    labels = dict(
        outcome_labels(states, final)
        .filter(pl.col("as_of") == m0)
        .select("opportunity_id", "label")
        .iter_rows()
    )
    assert labels == {"won": False, "lost": True, "open": False}
