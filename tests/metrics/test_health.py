"""Stack-health measures: hours automated from documented minutes, uptime, latency."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from revstack.agents.engine import decide, run_agents
from revstack.contracts import load_all
from revstack.data.errors import ContractError
from revstack.data.warehouse import Warehouse
from revstack.metrics.activity import agents_seen, trigger_latency
from revstack.metrics.effort import EFFORT_SCHEMA, load_effort, weekly_hours
from revstack.metrics.health import agent_uptime, last_change, weekly_activity
from tests.agents.test_runs import FillIndustry, _spec

_RUN = """
INSERT INTO ops.runs VALUES ($id, 'clock', '1', '1', 'live', 'events', $status, $start, $end,
    0, 0, 0, 0, 0, $error, NULL)
"""


def test_the_shipped_minutes_name_real_actions_of_real_agents() -> None:
    effort = load_effort(bundle=load_all())
    assert len(effort) == effort.select("agent", "action_type").n_unique()
    assert (effort["manual_minutes"] >= effort["review_minutes"]).all()
    # the one figure with a published source: 20-40 minutes of pre-call research
    prep = effort.filter(pl.col("action_type") == "write_briefing").row(0, named=True)
    assert 20 <= prep["manual_minutes"] <= 40 and "20-40 minutes" in prep["source"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "version: 1\nactions:\n  crm_hygiene:\n    no_such: {manual_minutes: 1, source: x}\n",
            "actions.crm_hygiene.no_such",
        ),
        (
            "version: 1\nactions:\n  nobody:\n    x: {manual_minutes: 1, source: x}\n",
            "actions.nobody",
        ),
        (
            "version: 1\nactions:\n  crm_hygiene:\n    move_stage: {manual_minutes: -1, source: x}\n",
            "actions.crm_hygiene.move_stage.manual_minutes",
        ),
        (
            "version: 1\nactions:\n  crm_hygiene:\n    move_stage: {manual_minutes: 1, review_minutes: 2, source: x}\n",
            "actions.crm_hygiene.move_stage.review_minutes",
        ),
    ],
)
def test_bad_minutes_name_the_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "effort.yaml"
    path.write_text(text)
    with pytest.raises(ContractError) as err:
        load_effort(path, bundle=load_all())
    assert err.value.file == str(path) and err.value.key_path == where


def test_hours_are_volume_times_minutes(run_wh: Warehouse) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    with run_wh.connect() as con:
        pending = con.execute(
            "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' AND agent = 'filler' "
            "AND action_type = 'fill_employees' ORDER BY 1"
        ).fetchall()
    decide(run_wh, pending[0][0], approve=True, by="rev")
    decide(run_wh, pending[1][0], approve=False, by="rev", note="no")
    effort = pl.DataFrame(
        [("filler", "fill_industry", 6.0, 1.0, "t"), ("filler", "fill_employees", 4.0, 1.0, "t")],
        schema=EFFORT_SCHEMA,
        orient="row",
    )
    with run_wh.connect() as con:
        counts = con.execute(
            "SELECT action_type, count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL),"
            " count(*) FILTER (WHERE status IN ('approved', 'edited')),"
            " count(*) FILTER (WHERE status = 'rejected' AND decided_by = 'rev')"
            " FROM ops.proposals WHERE agent = 'filler' GROUP BY 1"
        ).fetchall()
        every = weekly_hours(con, effort)
    hours = every.filter(pl.col("agent") == "filler")
    # the fixture's three hand-made crm_hygiene proposals were rejected: no minutes here
    assert every.filter(pl.col("agent") == "crm_hygiene")["undocumented_actions"].sum() == 3
    minutes = {"fill_industry": (6.0, 1.0), "fill_employees": (4.0, 1.0)}
    expected = (
        sum(
            auto * minutes[a][0] + ok * (minutes[a][0] - minutes[a][1])
            for a, auto, ok, _ in counts
            if a in minutes
        )
        / 60
    )
    reviewing = sum((ok + no) * minutes[a][1] for a, _, ok, no in counts if a in minutes) / 60
    assert expected > 0
    assert hours["hours_automated"].sum() == pytest.approx(expected)
    assert hours["hours_reviewing"].sum() == pytest.approx(reviewing)
    undocumented = sum(auto + ok + no for a, auto, ok, no in counts if a not in minutes)
    assert hours["undocumented_actions"].sum() == undocumented


def test_uptime_is_the_share_of_time_the_latest_run_had_succeeded(wh: Warehouse) -> None:
    t0 = dt.datetime(2026, 1, 1, 9)
    rows = [
        ("r1", "succeeded", t0, None),
        ("r2", "failed", t0 + dt.timedelta(hours=1), "boom"),
        ("r3", "succeeded", t0 + dt.timedelta(hours=3), None),
    ]
    with wh.connect() as con:
        for rid, status, end, error in rows:
            con.execute(
                _RUN,
                {
                    "id": rid,
                    "status": status,
                    "start": end - dt.timedelta(minutes=1),
                    "end": end,
                    "error": error,
                },
            )
        up = agent_uptime(con, now=t0 + dt.timedelta(hours=4)).row(0, named=True)
        stamp = last_change(con)
        assert agents_seen(con) == ["clock"]
    # up 9-10 and 12-13, down 10-12: 2 of 4 hours
    assert up["uptime"] == pytest.approx(0.5)
    assert (up["last_status"], up["last_error"]) == ("succeeded", None)
    with wh.connect() as con:
        con.execute(_RUN, {"id": "r4", "status": "failed", "start": t0, "end": t0, "error": "x"})
        assert last_change(con) != stamp  # a new run is a new fingerprint


def test_latency_runs_from_the_trigger_to_the_write_or_the_decision(run_wh: Warehouse) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    with run_wh.connect() as con:
        [(pid,)] = con.execute(
            "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' AND agent = 'filler' "
            "ORDER BY 1 LIMIT 1"
        ).fetchall()
    decide(run_wh, pid, approve=True, by="rev")
    with run_wh.connect() as con:
        lat = trigger_latency(con)
        trig, finished, decided = con.execute(
            "SELECT (SELECT min(e.occurred_at) FROM ops.event_consumption c JOIN ops.events e "
            "USING (event_id) WHERE c.run_id = p.run_id), r.finished_at, p.decided_at "
            "FROM ops.proposals p JOIN ops.runs r USING (run_id) WHERE p.proposal_id = $p",
            {"p": pid},
        ).fetchall()[0]
        weekly = weekly_activity(con)
    auto = lat.filter(pl.col("automatic")).row(0, named=True)
    person = lat.filter(~pl.col("automatic")).row(0, named=True)
    assert auto["median_seconds"] == pytest.approx((finished - trig).total_seconds(), abs=1e-3)
    assert person["actions"] == 1
    assert person["median_seconds"] == pytest.approx((decided - trig).total_seconds(), abs=1e-3)
    filler = weekly.filter(pl.col("agent") == "filler")
    assert filler["approved_unchanged"].sum() == 1 and filler["agreement"].max() == 1.0


def test_records_touched_counts_the_last_days_of_the_log_not_of_the_wall_clock(
    wh: Warehouse,
) -> None:
    from revstack.agents.engine import AuditEntry, append
    from revstack.metrics.health import records_touched

    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, source) VALUES "
            "('a1', 'A', 't'), ('a2', 'B', 't'), ('a3', 'C', 't'), ('a4', 'D', 't')"
        )
        last = dt.datetime(2026, 7, 1)  # months before any test runs

        def applied(record: str, at: dt.datetime) -> None:
            entry = AuditEntry(
                actor="crm_hygiene",
                actor_kind="agent",
                action="apply",
                object_type="accounts",
                record_id=record,
                field="industry",
            )
            append(con, [entry], at=at)

        applied("a1", last - dt.timedelta(days=40))  # before the log's last 30 days
        applied("a2", last - dt.timedelta(days=10))
        applied("a3", last)
    touched = (
        wh.read(records_touched).filter(pl.col("object_type") == "accounts").row(0, named=True)
    )
    assert (touched["records"], touched["touched_30d"], touched["share"]) == (4, 2, 0.5)
