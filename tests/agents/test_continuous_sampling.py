"""Graduation that keeps measuring: a share of a graduated action still goes to a
reviewer, and a wrong one demotes the action, logged with its reason (CSP-1)."""

from __future__ import annotations

import json

import polars as pl

from revstack.agents.engine import (
    CONTINUOUS_SHARE,
    active_policy,
    add_person,
    decide,
    open_batches,
    run_agents,
    set_policy,
    verify,
)
from revstack.data.warehouse import Warehouse, frame
from tests.agents._workload import SPEC, seed_accounts


def _setup(wh: Warehouse, accounts: int) -> str:
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    seed_accounts(wh, accounts)
    return set_policy(
        wh,
        agent="bumper",
        action_type="set_industry",
        tier=1,
        by="ana",
        reason="graduated on its batches' evidence",
    )


def _proposals(wh: Warehouse, action: str) -> pl.DataFrame:
    with wh.connect() as con:
        return frame(
            con,
            "SELECT p.proposal_id, p.idempotency_key, p.status, p.tier, p.tier_reason, "
            "c.policy_id FROM ops.proposals p LEFT JOIN ops.continuous_samples c "
            "USING (proposal_id) WHERE p.action_type = $a ORDER BY p.proposal_id",
            {"a": action},
        )


def test_a_fixed_share_of_a_graduated_action_is_still_reviewed(wh: Warehouse) -> None:
    graduation = _setup(wh, 3000)
    run_agents(wh, [SPEC], only="bumper")
    industry = _proposals(wh, "set_industry")
    # The draw is the key's first 32 bits: recompute it apart from the engine.
    chosen = industry["idempotency_key"].map_elements(
        lambda k: int(k[:8], 16) / 2**32 < CONTINUOUS_SHARE, return_dtype=pl.Boolean
    )
    assert (industry["status"] == "pending").to_list() == chosen.to_list()
    sampled = industry.filter(pl.col("status") == "pending")
    # 3000 draws at 2%: 60 expected, and 99.9% of draws fall within 60 +- 24
    assert 36 <= len(sampled) <= 84
    assert (sampled["policy_id"] == graduation).all() and (sampled["tier"] == 2).all()
    assert sampled["tier_reason"].str.contains("continuous sampling").all()
    assert set(industry["status"]) == {"applied", "pending"}
    # an action that is tier 1 in its contract is not sampled
    assert set(_proposals(wh, "set_employees")["status"]) == {"applied"}
    # nor are the samples ever batched: each is reviewed on its own
    assert open_batches(wh, by="rev").is_empty()


def test_a_wrong_sample_demotes_the_action_and_says_why(wh: Warehouse) -> None:
    graduation = _setup(wh, 3000)
    run_agents(wh, [SPEC], only="bumper")
    first, second, *_ = _proposals(wh, "set_industry").filter(pl.col("status") == "pending")[
        "proposal_id"
    ]
    decide(wh, first, approve=True, by="rev")  # a right one changes nothing
    with wh.connect() as con:
        [policy] = active_policy(con).filter(pl.col("action_type") == "set_industry").to_dicts()
    assert policy["tier"] == 1 and policy["changed_by"] == "ana"

    decide(wh, second, approve=False, by="rev", note="industry guessed, not looked up")
    with wh.connect() as con:
        [policy] = active_policy(con).filter(pl.col("action_type") == "set_industry").to_dicts()
        [logged] = frame(
            con,
            "SELECT actor, actor_kind, detail FROM ops.audit_log "
            "WHERE action = 'policy' AND actor = 'engine'",
        ).to_dicts()
        assert verify(con).ok
    assert policy["tier"] == 2 and policy["changed_by"] == "engine"
    assert second in policy["reason"] and "industry guessed" in policy["reason"]
    detail = json.loads(logged["detail"])
    assert detail["demotes"] == graduation and detail["proposal_id"] == second
    assert logged["actor_kind"] == "system"

    # from now on every proposal of the action waits for a person
    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, employees, source) "
            "SELECT 'B' || i, 'New ' || i, i, 'test' FROM range(500) t(i)"
        )
    run_agents(wh, [SPEC], only="bumper")
    with wh.connect() as con:
        fresh = frame(
            con,
            "SELECT status, tier, count(*) n FROM ops.proposals WHERE action_type = 'set_industry' "
            "AND record_id LIKE 'B%' GROUP BY ALL",
        )
    assert fresh.to_dicts() == [{"status": "pending", "tier": 2, "n": 500}]


def test_a_sample_decided_after_a_person_changed_the_policy_demotes_nothing(
    wh: Warehouse,
) -> None:
    _setup(wh, 3000)
    run_agents(wh, [SPEC], only="bumper")
    [pid, *_] = _proposals(wh, "set_industry").filter(pl.col("status") == "pending")["proposal_id"]
    set_policy(
        wh,
        agent="bumper",
        action_type="set_industry",
        tier=1,
        min_confidence=0.9,
        by="ana",
        reason="raised the bar",
    )
    decide(wh, pid, approve=False, by="rev", note="wrong")
    with wh.connect() as con:
        [policy] = active_policy(con).filter(pl.col("action_type") == "set_industry").to_dicts()
    assert policy["changed_by"] == "ana" and policy["min_confidence"] == 0.9
