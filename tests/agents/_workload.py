"""Agents and child-process entry points for the crash and concurrency tests.

Kept in a module (not a test file) so ``spawn``ed children can import them.
"""

from __future__ import annotations

import os
import sys

import polars as pl

from revstack.agents.engine import POLICY_SCHEMA, Agent, AgentResult, AgentSpec, Context, run_agents
from revstack.data.warehouse import Warehouse

POLICY = pl.DataFrame(
    {
        "action_type": ["set_employees", "set_industry"],
        "object_type": ["accounts", "accounts"],
        "field": ["employees", "industry"],
        "tier": [1, 2],
        "min_confidence": [0.5, 0.5],
    },
    schema=POLICY_SCHEMA,
)


class Bumper(Agent):
    """Proposes employees + 1 (tier 1) and an industry (tier 2) for every account."""

    name = "bumper"
    version = "1.0"

    def run(self, ctx: Context) -> AgentResult:
        a = ctx.table("crm.accounts", ["account_id", "employees", "industry"])
        emp = a.select(
            action_type=pl.lit("set_employees"),
            object_type=pl.lit("accounts"),
            record_id="account_id",
            field=pl.lit("employees"),
            old_value=pl.col("employees").cast(pl.String),
            new_value=(pl.col("employees") + 1).cast(pl.String),
            confidence=pl.lit(0.9),
            evidence=pl.lit("{}"),
            reason=pl.lit("bump"),
        )
        ind = a.filter(pl.col("industry").is_null()).select(
            action_type=pl.lit("set_industry"),
            object_type=pl.lit("accounts"),
            record_id="account_id",
            field=pl.lit("industry"),
            old_value=pl.lit("null"),
            new_value=pl.lit('"Software"'),
            confidence=pl.lit(0.7),
            evidence=pl.lit("{}"),
            reason=pl.lit("guess"),
        )
        return AgentResult(pl.concat([emp, ind]))


SPEC = AgentSpec(
    name="bumper",
    version="1.0",
    contract_version="1",
    owner="t",
    mode="live",
    depends_on=(),
    triggers=("record_created", "record_changed"),
    reads={"crm.accounts": ["account_id", "employees", "industry"]},
    policy=POLICY,
    factory=Bumper,
)


def seed_accounts(wh: Warehouse, n: int) -> None:
    with wh.connect() as con:
        con.execute(
            "INSERT INTO crm.accounts (account_id, name, employees, source) "
            "SELECT 'A' || i, 'Company ' || i, i, 'test' FROM range($n) t(i)",
            {"n": n},
        )


def run_forever(path: str) -> None:  # child: runs until killed
    wh = Warehouse(path, busy_timeout=120)
    while True:
        run_agents(wh, [SPEC], only="bumper")


def run_once(path: str) -> None:  # child
    run_agents(Warehouse(path, busy_timeout=120), [SPEC], only="bumper")


if __name__ == "__main__":  # python -m tests.agents._workload PATH
    run_forever(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(2)
    os._exit(0)
