"""Fixtures for engine tests: a warehouse with people, accounts and pending proposals."""

from __future__ import annotations

import pytest

from revstack.agents.engine import add_person
from revstack.data.warehouse import Warehouse

_ACCOUNTS = """
INSERT INTO crm.accounts (account_id, name, industry, employees, source) VALUES
    ('a1', 'Acme', NULL, 10, 'test'),
    ('a2', 'Globex', 'Retail', 20, 'test'),
    ('a3', 'Initech', '', 30, 'test')
"""
_PROPOSAL = """
INSERT INTO ops.proposals (proposal_id, run_id, agent, action_type, object_type, record_id,
    field, old_value, new_value, confidence, reason, tier, tier_reason, status, shadow,
    idempotency_key, created_at)
VALUES ($id, 'run-t', $agent, 'enrich_firmographics', 'accounts', $record, $field, $old, $new,
    0.8, 'provider says so', $tier, 'test', $status, $shadow, $id, now())
"""


def insert_proposal(
    wh: Warehouse,
    pid: str,
    record: str,
    field: str,
    old: str,
    new: str,
    *,
    tier: int = 2,
    status: str = "pending",
    shadow: bool = False,
    agent: str = "crm_hygiene",
) -> None:
    with wh.connect() as con:
        con.execute(
            _PROPOSAL,
            {
                "id": pid,
                "agent": agent,
                "record": record,
                "field": field,
                "old": old,
                "new": new,
                "tier": tier,
                "status": status,
                "shadow": shadow,
            },
        )


@pytest.fixture
def engine_wh(wh: Warehouse) -> Warehouse:
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    add_person(wh, "vic", "viewer", by="ana")
    with wh.connect() as con:
        con.execute(_ACCOUNTS)
    insert_proposal(wh, "p1", "a1", "industry", "null", '"Software"')
    insert_proposal(wh, "p2", "a2", "industry", '"Retail"', '"Banking"')
    insert_proposal(wh, "p3", "a3", "employees", "30", "35")
    return wh


@pytest.fixture
def run_wh(engine_wh: Warehouse) -> Warehouse:
    with engine_wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, industry, employees, source) VALUES ('a4', 'Hooli', NULL, 40, 'test')"
        )
        con.execute(
            "UPDATE ops.proposals SET status = 'rejected'"
        )  # the fixture's hand-made ones are decided
    return engine_wh
