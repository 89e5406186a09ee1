"""agents.features: deal state as of a moment, exact where the CRM says so, and blind to
everything stamped after the moment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from revstack.agents.features import (
    STATE_SCHEMA,
    TABLES,
    deal_states,
    frames_connection,
    states_query,
    typed,
    weekly_moments,
)
from revstack.data.warehouse import Warehouse, frame, scalar

PAST = dt.datetime(2025, 4, 7)  # 18 months into the small company's four years


def _frames(wh: Warehouse) -> dict[str, pl.DataFrame]:
    with wh.connect() as con:
        return {t: frame(con, f"SELECT {', '.join(c)} FROM {t}") for t, c in TABLES.items()}


def _states(frames: dict[str, pl.DataFrame], moments: object, **kw: object) -> pl.DataFrame:
    con = frames_connection(frames)
    try:
        return deal_states(con, moments, **kw)  # type: ignore[arg-type]
    finally:
        con.close()


def test_the_state_at_the_data_as_of_is_the_crm_itself(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        as_of = scalar(con, "SELECT max(as_of) FROM ops.imports")
        crm = frame(
            con,
            "SELECT opportunity_id, stage, amount::DOUBLE AS amount, close_date, "
            "forecast_category, is_closed, is_won FROM crm.opportunities",
        )
        engaged = frame(
            con,
            """
            SELECT opportunity_id, count(DISTINCT contact_id) AS n FROM crm.activities
            WHERE status = 'completed' AND direction IN ('inbound', 'two_way')
              AND occurred_at <= $t GROUP BY 1""",
            {"t": as_of},
        )
        states = deal_states(con, as_of)
    cols = [
        "opportunity_id",
        "stage",
        "amount",
        "close_date",
        "forecast_category",
        "is_closed",
        "is_won",
    ]
    assert (
        states.select(cols).sort("opportunity_id").equals(crm.select(cols).sort("opportunity_id"))
    )
    got = states.join(engaged, on="opportunity_id", how="left").with_columns(
        pl.col("n").fill_null(0)
    )
    assert (got["engaged_contacts"] == got["n"]).all()
    assert got["engaged_contacts"].max() >= 3


def test_open_only_keeps_the_deals_open_at_each_moment(small_company: Warehouse) -> None:
    moments = weekly_moments(dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    with small_company.connect() as con:
        every = deal_states(con, moments)
        open_ = deal_states(con, moments, open_only=True)
    assert len(moments) == 13 and set(open_["as_of"]) == set(moments)
    assert open_.equals(every.filter(~pl.col("is_closed")))
    assert (open_["created_at"] <= open_["as_of"]).all()


def test_pushes_count_every_close_date_move_in_truth(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        states = deal_states(con, PAST, open_only=True)
        truth = frame(
            con,
            """
            SELECT opportunity_id, count(*) AS n, count(*) FILTER (WHERE out_of_period) AS q
            FROM truth.slips WHERE slipped_at <= $t GROUP BY 1""",
            {"t": PAST},
        )
        blank = frame(
            con,
            "SELECT DISTINCT opportunity_id FROM crm.opportunity_history WHERE close_date IS NULL",
        )
    # A close date left blank in the CRM hides its pushes: those deals are not comparable.
    got = (
        states.join(blank, on="opportunity_id", how="anti")
        .join(truth, on="opportunity_id", how="left")
        .with_columns(pl.col("n", "q").fill_null(0))
    )
    assert len(got) > 100 and got["n"].sum() > 100
    assert (got["close_date_pushes"] == got["n"]).all()
    assert (got["pushes_out_of_quarter"] == got["q"]).all()


def test_a_departed_champion_counts_once_the_crm_knew(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        states = deal_states(
            con, weekly_moments(dt.date(2024, 1, 1), dt.date(2026, 9, 28)), open_only=True
        )
        gone = frame(
            con,
            "SELECT opportunity_id, min(departed_at) AS left_on "
            "FROM truth.champion_departures GROUP BY 1",
        )
    got = states.join(gone, on="opportunity_id", how="left").with_columns(
        really=pl.col("left_on").is_not_null() & (pl.col("left_on") <= pl.col("as_of").dt.date())
    )
    flagged = got.filter("champion_left")
    assert len(flagged) > 20
    assert flagged["really"].all()  # never before the champion left
    # The CRM hears of a departure 3-60 days after it: most are known, not all at once.
    recall = got.filter("really")["champion_left"].mean()
    assert 0.5 < recall < 1.0


def _hand_built() -> dict[str, pl.DataFrame]:
    t = dt.datetime
    history = pl.DataFrame(
        {
            "history_id": ["h1", "h2", "h3", "h4", "h5"],
            "opportunity_id": ["o1"] * 5,
            "changed_at": [
                t(2026, 1, 5),
                t(2026, 2, 1),
                t(2026, 3, 20),
                t(2026, 4, 2),
                t(2026, 5, 1),
            ],
            "stage": ["discovery", "proposal", "proposal", "proposal", "closed_lost"],
            "amount": [100.0, 100.0, 80.0, 80.0, 80.0],
            "close_date": [
                dt.date(2026, 3, 15),
                dt.date(2026, 3, 15),
                dt.date(2026, 3, 31),
                dt.date(2026, 4, 30),
                dt.date(2026, 5, 1),
            ],
            "forecast_category": ["pipeline", "best_case", "best_case", "best_case", "omitted"],
            "probability": [0.2, 0.4, 0.4, 0.4, 0.0],
            "changed_by": ["u1"] * 5,
        }
    )
    acts = pl.DataFrame(
        {
            "opportunity_id": ["o1"] * 6,
            "contact_id": ["c1", "c2", "c1", "c1", "c1", "c2"],
            "direction": ["two_way", "inbound", "outbound", "outbound", "two_way", "two_way"],
            "status": [
                "completed",
                "completed",
                "completed",
                "completed",
                "cancelled",
                "completed",
            ],
            "occurred_at": [
                t(2026, 1, 10),
                t(2026, 2, 10),
                t(2026, 3, 1),
                t(2026, 3, 25),
                t(2026, 3, 26),
                t(2026, 4, 20),
            ],
        }
    )
    roles = pl.DataFrame(
        {
            "opportunity_id": ["o1", "o1"],
            "contact_id": ["c1", "c2"],
            "role": ["champion", "economic_buyer"],
            "added_at": [t(2026, 1, 6), t(2026, 3, 1)],
        }
    )
    contacts = pl.DataFrame(
        {
            "contact_id": ["c1", "c2"],
            "is_active": [False, True],
            "email_bounced": [True, False],
            "updated_at": [t(2026, 3, 28), t(2026, 1, 1)],
        }
    )
    return {
        "crm.opportunity_history": history,
        "crm.activities": acts,
        "crm.opportunity_contacts": roles,
        "crm.contacts": contacts,
    }


def test_a_hand_built_deal_has_exactly_the_state_its_rows_say() -> None:
    frames = _hand_built()
    before, after = dt.datetime(2026, 3, 27), dt.datetime(2026, 4, 10)
    s = _states(frames, [before, after, dt.datetime(2026, 5, 2)])
    one, two, closed = s.rows(named=True)
    assert (one["stage"], one["amount"], one["close_date"]) == (
        "proposal",
        80.0,
        dt.date(2026, 3, 31),
    )
    assert one["close_date_pushes"] == 1 and one["pushes_out_of_quarter"] == 0
    assert two["close_date_pushes"] == 2 and two["pushes_out_of_quarter"] == 1
    assert (one["amount_changes"], one["amount_decreases"], one["amount_ratio"]) == (1, 1, 0.8)
    assert one["days_in_stage"] == 54 and one["stage_entered_at"] == dt.datetime(2026, 2, 1)
    # last answer 2026-02-10 (the cancelled meeting does not count); two chasers since
    assert one["last_two_way_at"] == dt.datetime(2026, 2, 10) and one["days_since_two_way"] == 45
    assert one["outbound_since_two_way"] == 2 and one["outbound_30d"] == 2
    assert one["engaged_contacts"] == 2 and one["engaged_30d"] == 0
    assert one["has_champion"] and one["has_economic_buyer"] and one["contacts_on_deal"] == 2
    # c1 bounced; the CRM record says so from 2026-03-28 on, not before
    assert not one["champion_left"] and two["champion_left"]
    assert one["champion_last_reply_at"] == dt.datetime(2026, 1, 10)
    assert one["days_to_close"] == 4 and two["days_to_close"] == 20
    assert closed["is_closed"] and not closed["is_won"] and closed["close_date_pushes"] == 2
    assert _states(frames, [before], open_only=True).height == 1
    assert _states(frames, [dt.datetime(2026, 5, 2)], open_only=True).is_empty()
    assert _states(frames, [dt.datetime(2026, 1, 1)]).is_empty()  # before the deal existed


def _future_rewritten(frames: dict[str, pl.DataFrame], t: dt.datetime) -> dict[str, pl.DataFrame]:
    """Everything after ``t`` made different: more pushes, a bigger amount and a loss on
    every deal, new answers from a new contact, a new champion on every deal."""
    later = t + dt.timedelta(days=3)
    h = frames["crm.opportunity_history"]
    last = h.sort("changed_at").group_by("opportunity_id").last()
    pushes = last.with_columns(
        history_id=pl.col("history_id") + "-x",
        changed_at=pl.lit(later),
        close_date=pl.lit(dt.date(2031, 1, 1)),
        amount=pl.col("amount") * 3,
        stage=pl.lit("closed_lost"),
    )
    a = frames["crm.activities"]
    answers = (
        a.filter(pl.col("opportunity_id").is_not_null())
        .head(5000)
        .with_columns(
            contact_id=pl.lit("C-new"),
            direction=pl.lit("two_way"),
            status=pl.lit("completed"),
            occurred_at=pl.lit(later),
        )
    )
    r = frames["crm.opportunity_contacts"]
    roles = last.select("opportunity_id").with_columns(
        contact_id=pl.lit("C-new"), role=pl.lit("champion"), added_at=pl.lit(later)
    )
    return {
        **frames,
        "crm.opportunity_history": pl.concat([h, pushes.select(h.columns)], how="vertical_relaxed"),
        "crm.activities": pl.concat([a, answers], how="vertical_relaxed"),
        "crm.opportunity_contacts": pl.concat([r, roles.select(r.columns)], how="vertical_relaxed"),
    }


def _everyone_gone_since(
    frames: dict[str, pl.DataFrame], t: dt.datetime
) -> dict[str, pl.DataFrame]:
    """Every contact record edited after ``t`` to say the person left."""
    contacts = frames["crm.contacts"].with_columns(
        is_active=pl.lit(False),
        email_bounced=pl.lit(True),
        updated_at=pl.max_horizontal("updated_at", pl.lit(t + dt.timedelta(days=3))),
    )
    return {**frames, "crm.contacts": contacts}


@pytest.mark.parametrize("open_only", [True, False])
def test_nothing_after_the_moment_changes_the_state(
    small_company: Warehouse, open_only: bool
) -> None:
    frames = _frames(small_company)
    moments = [PAST, PAST + dt.timedelta(days=7)]
    t = moments[-1]
    now = _states(frames, moments, open_only=open_only)
    cut = {
        **frames,
        "crm.opportunity_history": frames["crm.opportunity_history"].filter(
            pl.col("changed_at") <= t
        ),
        "crm.activities": frames["crm.activities"].filter(pl.col("occurred_at") <= t),
        "crm.opportunity_contacts": frames["crm.opportunity_contacts"].filter(
            pl.col("added_at") <= t
        ),
    }
    assert len(now) > 200 and now["champion_left"].any()
    assert _states(cut, moments, open_only=open_only).equals(now)
    assert _states(_future_rewritten(frames, t), moments, open_only=open_only).equals(now)
    # ... while the same rewrite a week earlier does change it (the test can fail)
    assert not _states(_future_rewritten(frames, PAST), moments, open_only=open_only).equals(now)


def test_a_contact_record_changed_later_can_hide_a_departure_never_invent_one(
    small_company: Warehouse,
) -> None:
    # crm.contacts has no history: a record edited after the moment no longer tells what
    # it said then, so its flags are ignored; a later departure never shows up early.
    frames = _frames(small_company)
    now = _states(frames, PAST, open_only=True)
    gone = _states(_everyone_gone_since(frames, PAST), PAST, open_only=True)
    assert now["champion_left"].sum() > 0 and gone["champion_left"].sum() == 0
    assert gone["economic_buyer_left"].sum() == 0
    rest = [c for c in now.columns if c not in ("champion_left", "economic_buyer_left")]
    assert gone.select(rest).equals(now.select(rest))


def test_missing_inputs_are_named() -> None:
    frames = _hand_built()
    with pytest.raises(KeyError, match="crm.contacts.updated_at"):
        frames_connection({**frames, "crm.contacts": frames["crm.contacts"].drop("updated_at")})
    with pytest.raises(KeyError, match="crm.activities"):
        frames_connection({k: v for k, v in frames.items() if k != "crm.activities"})


def test_weekly_moments_are_midnights_of_one_weekday() -> None:
    got = weekly_moments(dt.date(2026, 9, 2), dt.date(2026, 9, 30), weekday=0)
    assert got == [dt.datetime(2026, 9, d) for d in (7, 14, 21, 28)]


def test_touches_logged_in_the_same_second_all_count_whatever_the_row_order() -> None:
    """A meeting logged with two contacts, and a chaser sent with it, share one timestamp.
    Each deal's counts at a later moment must include all three, in any row order; a
    row_number over the tie once let two runs on one CRM disagree by one."""
    t, at = dt.datetime(2026, 3, 2, 9), dt.datetime(2026, 3, 10)
    deals = [f"o{i:03d}" for i in range(200)]
    history = pl.DataFrame(
        {
            "history_id": [f"h{d}" for d in deals],
            "opportunity_id": deals,
            "changed_at": [dt.datetime(2026, 2, 1)] * 200,
            "stage": ["proposal"] * 200,
            "amount": [100.0] * 200,
            "close_date": [dt.date(2026, 4, 30)] * 200,
            "forecast_category": ["pipeline"] * 200,
            "probability": [0.4] * 200,
            "changed_by": ["u1"] * 200,
        }
    )
    acts = pl.DataFrame(
        {
            "opportunity_id": [d for d in deals for _ in range(3)],
            "contact_id": ["c1", "c2", "c1"] * 200,
            "direction": ["two_way", "inbound", "outbound"] * 200,
            "status": ["completed"] * 600,
            "occurred_at": [t] * 600,
        }
    )
    frames = {
        "crm.opportunity_history": history,
        "crm.activities": acts,
        "crm.opportunity_contacts": _hand_built()["crm.opportunity_contacts"].clear(),
        "crm.contacts": _hand_built()["crm.contacts"].clear(),
    }
    for seed in range(3):
        s = _states(
            {**frames, "crm.activities": acts.sample(fraction=1.0, shuffle=True, seed=seed)}, [at]
        )
        assert s.height == 200
        assert (s["two_way_30d"] == 2).all() and (s["outbound_30d"] == 1).all(), s[
            "two_way_30d"
        ].value_counts()
        assert (s["engaged_contacts"] == 2).all() and (s["engaged_30d"] == 2).all()
        # the chaser went with the answers, not after them: nothing unanswered since
        assert (s["outbound_since_two_way"] == 0).all() and (s["last_two_way_at"] == t).all()


def test_activity_figures_equal_a_count_moment_by_moment(small_company: Warehouse) -> None:
    """The running counts (one table, two ASOF joins per moment) against a plain count of
    each deal's completed touches up to each of 26 Mondays: what an answer is, the last
    30 days, chasing since the last answer, distinct engaged contacts."""
    frames = _frames(small_company)
    moments = weekly_moments(PAST.date(), (PAST + dt.timedelta(weeks=25)).date())
    states = _states(frames, moments)
    acts = frames["crm.activities"].filter(pl.col("status") == "completed")
    answered = pl.col("direction").is_in(["inbound", "two_way"])
    per = (
        states.select("as_of", "opportunity_id")
        .join(acts, on="opportunity_id")
        .filter(pl.col("occurred_at") <= pl.col("as_of"))
    )
    recent = pl.col("occurred_at") > pl.col("as_of") - pl.duration(days=30)
    last_answer = pl.col("occurred_at").filter(answered).max()
    want = per.group_by("as_of", "opportunity_id").agg(
        last_two_way_at=last_answer,
        last_activity_at=pl.col("occurred_at").max(),
        two_way_30d=(answered & recent).sum(),
        outbound_30d=(~answered & recent).sum(),
        outbound_since_two_way=(
            ~answered & (last_answer.is_null() | (pl.col("occurred_at") > last_answer))
        ).sum(),
        engaged_contacts=pl.col("contact_id").filter(answered).drop_nulls().n_unique(),
    )
    cols = [c for c in want.columns if c not in ("as_of", "opportunity_id")]
    got = states.join(want, on=["as_of", "opportunity_id"], how="left", suffix="_want")
    assert len(got) == len(states) > 5_000 and got["last_activity_at_want"].is_not_null().sum()
    for c in cols:
        w = got[f"{c}_want"]
        if got.schema[c] != pl.Datetime("us"):
            w = w.cast(pl.Int64).fill_null(0)
        mismatch = got.filter(pl.col(c).cast(w.dtype).ne_missing(w))
        assert mismatch.is_empty(), (c, mismatch.head(3))
    assert (got["outbound_since_two_way"] > 0).sum() > 1_000
    assert (got["engaged_contacts"] > 1).sum() > 1_000


@pytest.mark.slow
@pytest.mark.parametrize("open_only", [True, False])
def test_one_moment_by_totals_equals_the_running_counts(
    small_company: Warehouse, open_only: bool
) -> None:
    """A single moment is computed from each deal's totals (no window functions over the
    touches): the same states, column for column, as the running counts give for that
    moment among others, at moments across the company's years and at its as-of."""
    frames = _frames(small_company)
    with small_company.connect() as con:
        as_of = scalar(con, "SELECT max(changed_at) FROM crm.opportunity_history")
    moments = [*weekly_moments(PAST.date(), (PAST + dt.timedelta(weeks=60)).date())[::12], as_of]
    together = _states(frames, moments, open_only=open_only)
    for m in moments:
        alone = _states(frames, [m], open_only=open_only)
        assert len(alone) > 100
        assert alone.equals(together.filter(pl.col("as_of") == m)), m


def test_the_warehouse_path_gives_the_frames_path_rows(small_company: Warehouse) -> None:
    """``deal_states_in`` (the SQL in the warehouse, through an agent's context) gives
    the rows ``deal_states`` gives over the same tables read whole into frames: many
    moments, one moment, a subset of deals, the history alone, and the history's
    amount held as a double (as the forecast holds it)."""
    from revstack.agents.features import deal_states_in

    from ._contexts import agent_context

    ctx = agent_context(small_company, "pipeline_health")
    frames = {t: ctx.table(t, c) for t, c in TABLES.items()}
    moments = weekly_moments(dt.date(2025, 1, 6), dt.date(2025, 6, 30))
    d = ctx.definitions
    many = deal_states_in(ctx, moments, definitions=d, open_only=True)
    assert len(many) > 1000 and many["as_of"].n_unique() == len(moments)
    assert many.equals(_states(frames, moments, definitions=d, open_only=True))
    one = deal_states_in(ctx, ctx.as_of, definitions=d)
    assert one.equals(_states(frames, ctx.as_of, definitions=d))
    assert one["engaged_contacts"].sum() > 0 and one["has_champion"].any()

    ids = one.filter(~pl.col("is_closed"))["opportunity_id"].head(40).to_list()
    some = deal_states_in(ctx, moments, definitions=d, open_only=True, deals=ids)
    assert 0 < some["opportunity_id"].n_unique() <= 40
    assert some.equals(many.filter(pl.col("opportunity_id").is_in(ids)))

    # only the rows at given (as_of, deal) pairs: those rows of the whole states, the
    # activity figures included (a pair at another deal's or moment's row would show)
    picked = many.gather_every(7, offset=3)
    query, params, rows = states_query(moments, definitions=d, open_only=True, at_rows=True)
    pairs = {"t": picked["as_of"].to_list(), "ids": picked["opportunity_id"].to_list()}
    with ctx.warehouse(TABLES, rows=rows) as wh:
        wh.keep(
            "at_rows",
            "SELECT unnest($t::TIMESTAMP[]) AS as_of, unnest($ids) AS opportunity_id",
            pairs,
        )
        at = typed(wh.frame(query, params)).select(list(STATE_SCHEMA))
    assert len(picked) > 100 and picked["days_since_two_way"].n_unique() > 20
    assert at.equals(picked)

    cols = ["as_of", "opportunity_id", "stage", "close_date", "is_closed", "stage_entered_at"]
    alone = deal_states_in(ctx, ctx.as_of, definitions=d, history_only=True, columns=cols)
    empty = {t: f.clear() for t, f in frames.items() if t != "crm.opportunity_history"}
    history = frames["crm.opportunity_history"]
    assert alone.equals(
        _states({**empty, "crm.opportunity_history": history}, ctx.as_of).select(cols)
    )
    assert alone.equals(one.select(cols))

    doubled = {
        **frames,
        "crm.opportunity_history": history.with_columns(pl.col("amount").cast(pl.Float64)),
    }
    as_double = deal_states_in(
        ctx, moments, open_only=True, types={"crm.opportunity_history.amount": "DOUBLE"}
    )
    assert as_double.equals(_states(doubled, moments, open_only=True))


def test_states_in_parts_are_the_states_at_once(small_company: Warehouse) -> None:
    """``moments_per_query``: the running figures kept once and the moments taken a few
    at a time give the rows of one query over every moment (uneven last part, a subset
    of deals, and the closed deals too)."""
    from revstack.agents.features import deal_states_in

    from ._contexts import agent_context

    ctx = agent_context(small_company, "forecast")
    d = ctx.definitions
    moments = [*weekly_moments(dt.date(2024, 1, 1), dt.date(2025, 6, 30))[::3], ctx.as_of]
    kw: dict[str, Any] = {"definitions": d, "types": {"crm.opportunity_history.amount": "DOUBLE"}}
    whole = deal_states_in(ctx, moments, open_only=True, **kw)
    parts = deal_states_in(ctx, moments, open_only=True, moments_per_query=5, **kw)
    assert len(moments) % 5 and whole["as_of"].n_unique() == len(moments)
    assert whole["engaged_30d"].sum() > 0 and whole["champion_last_reply_at"].is_not_null().any()
    assert parts.equals(whole)
    ids = whole["opportunity_id"].unique().sort().head(60).to_list()
    some = deal_states_in(ctx, moments, open_only=True, deals=ids, moments_per_query=6, **kw)
    assert some.equals(whole.filter(pl.col("opportunity_id").is_in(ids)))
    every = deal_states_in(ctx, moments[:9], moments_per_query=2, **kw)
    assert every["is_closed"].any()
    assert every.equals(deal_states_in(ctx, moments[:9], **kw))


def test_warehouse_sql_reads_only_what_it_was_given(small_company: Warehouse) -> None:
    """The warehouse path names only the tables it is given, as schema.table, within the
    agent's contract; anything else is refused before it runs."""
    from revstack.agents.engine import AccessDenied

    from ._contexts import agent_context

    ctx = agent_context(small_company, "pipeline_health")
    acts = {"crm.activities": ["opportunity_id", "occurred_at"]}
    n = ctx.warehouse_sql("SELECT count(*) AS n FROM crm.activities", tables=acts)["n"][0]
    assert n == len(ctx.table("crm.activities", ["opportunity_id"]))
    with pytest.raises(AccessDenied, match="not among"):
        ctx.warehouse_sql(
            "SELECT * FROM crm.activities JOIN crm.accounts USING (account_id)", tables=acts
        )
    with pytest.raises(AccessDenied, match="schema.table only"):
        ctx.warehouse_sql('SELECT * FROM "crm"."activities"', tables=acts)
    with pytest.raises(AccessDenied, match="tables only"):
        ctx.warehouse_sql("SELECT * FROM read_csv('x.csv')", tables=acts)
    with pytest.raises(AccessDenied, match="one SELECT"):
        ctx.warehouse_sql("DELETE FROM crm.activities", tables=acts)
    with pytest.raises(AccessDenied, match="truth"):
        ctx.warehouse_sql("SELECT * FROM truth.deals", tables={"truth.deals": ["x"]})
    # a column the query asks for but was not selected does not exist there
    with pytest.raises(Exception, match="subject"):
        ctx.warehouse_sql("SELECT subject FROM crm.activities", tables=acts)
