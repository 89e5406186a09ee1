"""A warehouse with pipeline_health flags on hand-made deals: two managers, 36 deals."""

from __future__ import annotations

import datetime as dt

import pytest

from revstack.data.warehouse import Warehouse

__all__ = ["flagged"]


@pytest.fixture
def flagged(wh: Warehouse) -> Warehouse:
    t = dt.datetime(2026, 10, 1)
    with wh.transaction() as con:
        con.execute("""
            INSERT INTO crm.users (user_id, name, email, role, manager_id, team, source) VALUES
              ('m1', 'Mia Manager', 'mia@x.example', 'manager', NULL, 'East', 't'),
              ('m2', 'Max Manager', NULL, 'manager', NULL, 'West', 't'),
              ('r1', 'Rae Rep', NULL, 'rep', 'm1', 'East', 't'),
              ('r2', 'Ray Rep', NULL, 'rep', 'm2', 'West', 't')""")
        for i, (owner, amount) in enumerate([("r1", 900.0), ("r1", 50_000.0), ("r2", 10.0)] * 12):
            con.execute(
                "INSERT INTO crm.opportunities (opportunity_id, owner_id, name, stage, amount, "
                "is_closed, is_won, source) VALUES ($o, $u, $n, 'proposal', $a, false, false, 't')",
                {"o": f"o{i}", "u": owner, "n": f"Deal <{i}> & Co", "a": amount},
            )
            for signal, score in (("gone_quiet", i / 40), ("model", i / 40)):
                con.execute(
                    "INSERT INTO ops.risk_flags VALUES ('R000007', $o, $s, $t, $score, 1.0, $r, '{}')",
                    {
                        "o": f"o{i}",
                        "s": signal,
                        "t": t,
                        "score": score,
                        "r": f"reason <b>{signal}</b> for o{i}",
                    },
                )
    return wh
