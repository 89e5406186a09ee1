"""Runs end to end: tiers, thresholds, shadow mode, idempotency, blocks, leases, scope."""

from __future__ import annotations

import json

import polars as pl
import pytest

from revstack.agents.engine import (
    POLICY_SCHEMA,
    PROPOSAL_INPUT,
    Agent,
    AgentResult,
    AgentSpec,
    Context,
    empty_proposals,
    run_agents,
    verify,
)
from revstack.data.warehouse import Warehouse, frame

POLICY = pl.DataFrame(
    {
        "action_type": ["fill_industry", "fill_employees", "close_deal", "flag_account"],
        "object_type": ["accounts", "accounts", "accounts", "accounts"],
        "field": ["industry", "employees", "account_type", None],
        "tier": [1, 2, 3, 1],
        "min_confidence": [0.9, 0.5, 0.0, 0.0],
    },
    schema=POLICY_SCHEMA,
)


def _proposal(
    action: str, record: str, field: str | None, old: str | None, new: str | None, conf: float
) -> dict:
    return {
        "action_type": action,
        "object_type": "accounts",
        "record_id": record,
        "field": field,
        "old_value": old,
        "new_value": new,
        "confidence": conf,
        "evidence": '{"source":"test"}',
        "reason": f"{action} for {record}",
    }


class FillIndustry(Agent):
    """Proposes an industry for every account without one, read through the context."""

    name = "filler"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        accounts = ctx.table("crm.accounts", ["account_id", "industry", "employees"])
        rows = []
        for r in accounts.iter_rows(named=True):
            if r["industry"] is None:
                conf = 0.95 if r["account_id"] == "a1" else 0.6
                rows.append(
                    _proposal(
                        "fill_industry", r["account_id"], "industry", "null", '"Software"', conf
                    )
                )
            rows.append(
                _proposal(
                    "fill_employees",
                    r["account_id"],
                    "employees",
                    str(r["employees"]),
                    str(r["employees"] + 1),
                    0.9,
                )
            )
        rows.append(_proposal("close_deal", "a2", "account_type", "null", '"closed"', 0.99))
        rows.append(_proposal("rename", "a2", "name", '"Globex"', '"Globex Corp"', 0.99))
        rows.append(
            _proposal("fill_industry", "a2", "industry", '"Retail"', '"Banking"', 2.0)
        )  # invalid
        return AgentResult(pl.DataFrame(rows), {"looked_at": len(accounts)})


class Peeker(Agent):
    name = "peeker"
    version = "1.0"

    def __init__(self, table: str) -> None:
        self.table = table

    def run(self, ctx: Context) -> AgentResult:
        ctx.table(self.table)
        raise AssertionError("unreachable: the context must refuse")


class Boom(Agent):
    name = "boom"
    version = "0.1"

    def run(self, ctx: Context) -> AgentResult:
        raise RuntimeError("model file missing")


def _spec(name: str, factory, *, mode: str = "live", reads=None, depends_on=()) -> AgentSpec:
    return AgentSpec(
        name=name,
        version="1.0",
        contract_version="1",
        owner="ops@x",
        mode=mode,
        depends_on=tuple(depends_on),
        triggers=("record_created", "record_changed"),
        reads=reads or {"crm.accounts": ["account_id", "industry", "employees"]},
        policy=POLICY,
        factory=factory,
    )


def _proposals(wh: Warehouse) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con, "SELECT * FROM ops.proposals WHERE run_id <> 'run-t' ORDER BY proposal_id"
        )


def _industry(wh: Warehouse) -> dict:
    with wh.connect() as con:
        return dict(con.execute("SELECT account_id, industry FROM crm.accounts").fetchall())


def test_a_run_routes_each_proposal_by_contract_and_confidence(run_wh: Warehouse) -> None:
    [result] = run_agents(run_wh, [_spec("filler", FillIndustry)])
    assert result.status == "succeeded"
    p = _proposals(run_wh)
    by = {(r["action_type"], r["record_id"]): r for r in p.iter_rows(named=True)}
    assert by[("fill_industry", "a1")]["status"] == "applied"  # tier 1, 0.95 >= 0.9
    assert by[("fill_industry", "a4")]["status"] == "pending"  # tier 1 but 0.6 < 0.9 -> tier 2
    assert by[("fill_industry", "a4")]["tier"] == 2
    assert "below the tier-1 threshold" in by[("fill_industry", "a4")]["tier_reason"]
    assert by[("fill_employees", "a2")]["status"] == "pending"  # tier 2 in the contract
    assert by[("close_deal", "a2")]["status"] == "task"  # tier 3: never applied
    assert by[("rename", "a2")]["status"] == "blocked"  # not in the contract
    assert _industry(run_wh)["a1"] == "Software" and _industry(run_wh)["a4"] is None
    assert result.counts["skipped_invalid"] == 1
    with run_wh.connect() as con:
        actions = dict(
            con.execute(
                "SELECT action, count(*) FROM ops.audit_log WHERE run_id = $r GROUP BY 1",
                {"r": result.run_id},
            ).fetchall()
        )
        leases = con.execute(
            "SELECT count(*) FROM ops.field_leases WHERE released_at IS NULL"
        ).fetchall()[0][0]
        assert verify(con).ok
    assert actions == {"read": 1, "apply": 1, "propose": 5, "task": 1, "block": 1, "skip": 1}
    assert leases == 5  # one per pending proposal on a field


def test_rerun_on_unchanged_data_adds_nothing(run_wh: Warehouse) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    before = len(_proposals(run_wh))
    [again] = run_agents(run_wh, [_spec("filler", FillIndustry)], only="filler")
    assert again.status == "succeeded"
    assert len(_proposals(run_wh)) == before


def test_no_pending_events_means_no_run(run_wh: Warehouse) -> None:
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    [idle] = run_agents(run_wh, [_spec("filler", FillIndustry)])
    assert (idle.status, idle.message) == ("skipped", "no pending events")


def test_shadow_mode_proposes_everything_and_touches_nothing(run_wh: Warehouse) -> None:
    before = _industry(run_wh)
    [result] = run_agents(run_wh, [_spec("filler", FillIndustry, mode="shadow")])
    p = _proposals(run_wh)
    assert result.mode == "shadow"
    assert set(p["status"]) == {"shadow", "blocked"}
    assert p.filter(pl.col("status") == "shadow")["shadow"].all()
    assert _industry(run_wh) == before
    with run_wh.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.field_leases").fetchall()[0][0] == 0


def test_a_leased_field_defers_a_second_agent(run_wh: Warehouse) -> None:
    first = _spec("filler", FillIndustry)
    second = AgentSpec(**{**first.__dict__, "name": "filler2", "depends_on": ("filler",)})
    run_agents(run_wh, [first, second])
    p = _proposals(run_wh)
    assert set(p["agent"]) == {"filler", "filler2"}
    # filler holds a4.industry (pending); filler2's same change is deferred, not stored
    assert p.filter(
        (pl.col("agent") == "filler2")
        & (pl.col("record_id") == "a4")
        & (pl.col("field") == "industry")
    ).is_empty()
    with run_wh.connect() as con:
        defers = con.execute(
            "SELECT count(*) FROM ops.audit_log WHERE action = 'defer' AND actor = 'filler2'"
        ).fetchall()[0][0]
    assert defers >= 1


@pytest.mark.parametrize(
    ("table", "reads", "message"),
    [
        ("truth.entities", {"truth.entities": "*"}, "ground truth"),
        ("crm.contacts", {"crm.accounts": "*"}, "does not allow reading crm.contacts"),
    ],
)
def test_reading_outside_the_contract_fails_the_run(
    run_wh: Warehouse, table, reads, message
) -> None:
    [result] = run_agents(run_wh, [_spec("peeker", lambda: Peeker(table), reads=reads)])
    assert result.status == "failed" and message in result.message
    assert _proposals(run_wh).is_empty()


def test_a_failing_agent_is_recorded_and_its_dependents_skipped(run_wh: Warehouse) -> None:
    results = run_agents(
        run_wh, [_spec("boom", Boom), _spec("filler", FillIndustry, depends_on=("boom",))]
    )
    assert [(r.agent, r.status) for r in results] == [("boom", "failed"), ("filler", "skipped")]
    with run_wh.connect() as con:
        run = con.execute("SELECT status, error FROM ops.runs WHERE agent = 'boom'").fetchall()
        pending = con.execute("SELECT count(*) FROM ops.event_consumption").fetchall()[0][0]
    assert run == [("failed", "RuntimeError: model file missing")]
    assert pending == 0  # events stay pending for the next run


def test_a_policy_override_graduates_an_action_but_never_tier_3(run_wh: Warehouse) -> None:
    from revstack.agents.engine import EngineError, set_policy

    with pytest.raises(EngineError, match="needs the admin role"):
        set_policy(
            run_wh, agent="filler", action_type="fill_employees", tier=1, by="rev", reason="r"
        )
    with pytest.raises(EngineError, match="tier 3 in its contract"):
        set_policy(
            run_wh,
            agent="filler",
            action_type="close_deal",
            tier=1,
            by="ana",
            reason="r",
            contract_tier=3,
        )
    set_policy(
        run_wh,
        agent="filler",
        action_type="fill_employees",
        tier=1,
        min_confidence=0.8,
        by="ana",
        reason="98% approved unchanged over 30 days",
    )
    # Even a policy row forced in by hand cannot make tier 3 executable.
    with run_wh.connect() as con:
        con.execute(
            "INSERT INTO ops.policy VALUES ('x', 'filler', 'close_deal', 1, 0.0, 'ana', now(), 'forced', true)"
        )
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    p = _proposals(run_wh)
    emp = p.filter(pl.col("action_type") == "fill_employees")
    assert set(emp["status"]) == {"applied"}
    assert emp["tier_reason"].str.contains("policy override").all()
    assert p.filter(pl.col("action_type") == "close_deal")["status"].to_list() == ["task"]
    with run_wh.connect() as con:
        logged = con.execute(
            "SELECT actor, record_id FROM ops.audit_log WHERE action = 'policy' AND object_type = 'agent_action'"
        ).fetchall()
    assert logged == [("ana", "filler.fill_employees")]


def test_set_mode_puts_an_agent_in_shadow(run_wh: Warehouse) -> None:
    from revstack.agents.engine import set_mode

    set_mode(run_wh, agent="filler", mode="shadow", by="ana")
    [result] = run_agents(run_wh, [_spec("filler", FillIndustry, mode="live")])
    assert result.mode == "shadow"
    assert set(_proposals(run_wh)["status"]) <= {"shadow", "blocked"}


class Consumer(Agent):
    """Acts on an upstream output only after the handoff check."""

    name = "consumer"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        upstream = pl.DataFrame(
            {
                "account_id": ["a1", "a2", None, "a4"],
                "score": ["0.9", "oops", "0.5", "0.2"],
                "confidence": [0.95, 0.9, 0.9, 0.3],
            }
        )
        ok = ctx.validated(
            "upstream.scores",
            upstream,
            {"account_id": pl.String, "score": pl.Float64},
            key="account_id",
            min_confidence=0.5,
        )
        rows = [
            _proposal("flag_account", r["account_id"], None, None, None, 0.9)
            for r in ok.iter_rows(named=True)
        ]
        return AgentResult(pl.DataFrame(rows, schema=PROPOSAL_INPUT) if rows else empty_proposals())


def test_handoff_validation_skips_and_logs_bad_upstream_rows(run_wh: Warehouse) -> None:
    [result] = run_agents(run_wh, [_spec("consumer", Consumer)])
    p = _proposals(run_wh)
    assert p["record_id"].to_list() == ["a1"]  # a2 wrong type, None missing, a4 low confidence
    with run_wh.connect() as con:
        meta = con.execute(
            "SELECT metadata FROM ops.runs WHERE run_id = $r", {"r": result.run_id}
        ).fetchall()[0][0]
    problems = sorted(s["problem"] for s in json.loads(meta)["agent"]["skipped_inputs"])
    assert problems == ["confidence below 0.5", "missing value", "wrong type"]


def test_unrecorded_leaves_out_exactly_the_keys_the_engine_would_drop(run_wh: Warehouse) -> None:
    """After a run, the context names as unrecorded the proposals routing would keep: a
    changed value, another record, another agent's identical proposal; not a repeat, and
    not one rejected (its key is recorded too)."""
    import datetime as dt

    [first] = run_agents(run_wh, [_spec("filler", FillIndustry)])
    assert first.status == "succeeded"
    again = pl.DataFrame(
        [
            _proposal("fill_employees", "a1", "employees", "10", "11", 0.9),
            _proposal("fill_industry", "a4", "industry", "null", '"Software"', 0.6),
            _proposal("fill_industry", "a4", "industry", "null", '"Retail"', 0.6),
            _proposal("fill_industry", "a9", "industry", "null", '"Software"', 0.6),
        ],
        schema=PROPOSAL_INPUT,
    )
    recorded = set(
        _proposals(run_wh)
        .select(pl.concat_str(["action_type", "record_id", "field", "new_value"], separator="|"))
        .to_series()
        .to_list()
    )

    def context(agent: str) -> Context:
        reads = {"crm.accounts": ["account_id"]}
        return Context(run_wh, agent=agent, reads=reads, as_of=dt.datetime(2026, 1, 1))

    left = context("filler").unrecorded(again)
    expected = again.filter(
        ~pl.concat_str(["action_type", "record_id", "field", "new_value"], separator="|").is_in(
            list(recorded)
        )
    )
    assert 0 < len(left) < len(again) and left.equals(expected)
    assert context("someone_else").unrecorded(again).equals(again)  # the key names the agent

    # and what it leaves out is what a run drops: a run of exactly those adds nothing
    class Repeats(Agent):
        name = "filler"
        version = "1.0"

        def run(self, ctx: Context) -> AgentResult:
            return AgentResult(again.join(left, on=again.columns, how="anti"), {})

    before = len(_proposals(run_wh))
    [rerun] = run_agents(run_wh, [_spec("filler", Repeats)], only="filler")
    assert rerun.status == "succeeded" and len(_proposals(run_wh)) == before


def test_a_windowed_read_is_the_whole_table_filtered(small_company: Warehouse) -> None:
    """``since=`` reads the rows at or after a moment: the same rows, in the same order,
    as filtering the whole table, whichever is read first; a column outside the grant
    cannot be the window."""
    import datetime as dt

    from revstack.agents.engine import AccessDenied

    reads = {"crm.activities": ["activity_id", "occurred_at", "subject"]}
    with small_company.connect() as con:
        newest = con.execute("SELECT max(occurred_at) FROM crm.activities").fetchone()[0]
    since = newest - dt.timedelta(days=30)

    def context() -> Context:
        return Context(small_company, agent="reader", reads=reads, as_of=newest)

    windowed = context().table("crm.activities", since=("occurred_at", since))
    first_whole = context()
    whole = first_whole.table("crm.activities")
    expected = whole.filter(pl.col("occurred_at") >= since)
    assert 0 < len(windowed) < len(whole) and windowed.equals(expected)
    # read after the whole table, it is cut from it
    assert first_whole.table("crm.activities", since=("occurred_at", since)).equals(expected)
    ctx = context()
    ctx.table("crm.activities", ["activity_id"], since=("occurred_at", since))
    assert ctx.read_log["crm.activities"] == len(expected)
    with pytest.raises(AccessDenied, match="crm.activities.direction"):
        context().table("crm.activities", since=("direction", since))


def test_a_read_of_some_keys_is_the_whole_table_filtered(small_company: Warehouse) -> None:
    """``any_of=`` reads the rows whose value in one of the columns is among its values:
    the same rows, in the same order, as filtering the whole table, whether read from
    the warehouse, cut from the table already read, or from a run's shared read; an
    empty list matches nothing, and a column outside the grant cannot be a key."""
    import datetime as dt

    from revstack.agents.engine import AccessDenied, SharedReads

    reads = {"crm.activities": ["activity_id", "account_id", "opportunity_id", "subject"]}
    with small_company.connect() as con:
        newest = con.execute("SELECT max(occurred_at) FROM crm.activities").fetchone()[0]
        accounts = [r[0] for r in con.execute("SELECT account_id FROM crm.accounts").fetchall()]
        deals = [
            r[0] for r in con.execute("SELECT opportunity_id FROM crm.opportunities").fetchall()
        ]

    def context(shared: SharedReads | None = None) -> Context:
        return Context(small_company, agent="reader", reads=reads, as_of=newest, shared=shared)

    some = {"account_id": accounts[::7], "opportunity_id": deals[::5]}
    whole = context().table("crm.activities")
    expected = whole.filter(
        pl.col("account_id").is_in(some["account_id"])
        | pl.col("opportunity_id").is_in(some["opportunity_id"])
    )
    assert 0 < len(expected) < len(whole)
    ctx = context()
    got = ctx.table("crm.activities", ["activity_id", "subject"], any_of=some)
    assert got.equals(expected.select("activity_id", "subject"))
    assert ctx.read_log["crm.activities"] == len(expected)  # only these rows were read
    # read after the whole table, it is cut from it; from a shared read, from that
    first_whole = context()
    first_whole.table("crm.activities")
    assert first_whole.table("crm.activities", any_of=some).equals(expected)
    shared = SharedReads.for_run([reads, reads])
    context(shared).table("crm.activities")
    assert shared.held == ["crm.activities"]
    assert context(shared).table("crm.activities", any_of=some).equals(expected)
    # an empty list of values matches nothing
    none = context().table("crm.activities", any_of={"account_id": [], "opportunity_id": []})
    assert none.is_empty() and none.columns == whole.columns
    one = context().table(
        "crm.activities", any_of={"account_id": [], **{"opportunity_id": deals[:3]}}
    )
    assert one.equals(whole.filter(pl.col("opportunity_id").is_in(deals[:3])))
    with pytest.raises(AccessDenied, match="crm.activities.direction"):
        context().table("crm.activities", any_of={"direction": ["inbound"]})
    with pytest.raises(ValueError, match="not both"):
        context().table("crm.activities", since=("subject", dt.datetime(2020, 1, 1)), any_of=some)


class ManyFlags(Agent):
    """Output-only flags with evidence and a reason naming their own row, interleaved with
    invalid rows, repeats of one key and rivals on one record, in no particular order."""

    name = "flagger"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        rows = []
        for i in range(40):
            record = f"r{(i * 17) % 40:02d}"
            row = _proposal("flag_account", record, None, None, '"flag"', 0.5 + i / 100)
            rows.append({**row, "evidence": f'{{"row":{i}}}', "reason": f"row {i}"})
            if i % 9 == 0:  # invalid: evidence that is not JSON
                rows.append({**row, "evidence": "{row", "reason": f"bad {i}"})
            if i % 11 == 0:  # a repeat of the key, less sure: dropped
                rows.append({**row, "confidence": 0.1, "evidence": "{}", "reason": "repeat"})
        return AgentResult(pl.DataFrame(rows, schema=PROPOSAL_INPUT))


def test_stored_proposals_keep_their_own_evidence_and_reason_across_parts(
    run_wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit stores evidence and reasons by position, a part at a time, after bad
    rows and repeats are dropped and the rest sorted by key: each stored proposal still
    carries the ones its own row gave, whatever the size of a part."""
    from revstack.agents.engine import _run  # noqa: TID251 (the part size is private)

    monkeypatch.setattr(_run, "_PART", 7)
    [result] = run_agents(run_wh, [_spec("flagger", ManyFlags)], only="flagger")
    assert result.status == "succeeded"
    assert result.counts["skipped_invalid"] == 5
    p = _proposals(run_wh)
    assert len(p) == 40 and p["record_id"].n_unique() == 40
    for r in p.iter_rows(named=True):
        i = json.loads(r["evidence"])["row"]
        assert r["record_id"] == f"r{(i * 17) % 40:02d}"
        assert r["reason"] == f"row {i}"
        assert r["confidence"] == pytest.approx(0.5 + i / 100)
    # numbered 1..40 in the order of their keys, across the parts
    numbered = p.with_columns(n=pl.col("proposal_id").str.split("-").list.get(1).cast(pl.Int64))
    assert sorted(numbered["n"]) == list(range(1, 41))
    assert numbered.sort("n")["idempotency_key"].is_sorted()
