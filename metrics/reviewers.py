"""Reviewers are not truth: how each person's decisions compare with what happened.

Per person who decided proposals one by one: how many, how often they approved
unchanged, and where the generator's truth can judge the proposal, how often their
decision agreed with it (an approval of a right proposal or an override of a wrong one),
how many wrong proposals they let through and how many right ones they turned down. A
person who approves nearly everything while truth says a tenth of it was wrong is a
signal, not evidence: ``rubber_stamp`` marks them (approval above 98% on at least 50
decisions, while at least 10% of what they approved was wrong). On a real CRM there is
no truth, and only the counts and the approval rate remain.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.agents.engine import wilson
from revstack.data.warehouse import frame
from revstack.metrics.verdicts import truth_verdicts

__all__ = ["reviewer_accuracy"]

_DECIDED = """
SELECT proposal_id, decided_by AS reviewer, status IN ('approved') AS approved
FROM ops.proposals p
WHERE NOT shadow AND status IN ('approved', 'edited', 'rejected') AND decided_by IS NOT NULL
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
"""


def reviewer_accuracy(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per reviewer (see the module doc)."""
    decided = frame(con, _DECIDED)
    if decided.is_empty():
        return pl.DataFrame()
    judged = decided.join(truth_verdicts(con), on="proposal_id", how="left")
    rows = []
    for (reviewer,), g in judged.group_by("reviewer", maintain_order=True):
        t = g.filter(pl.col("correct").is_not_null())
        agree = int((t["approved"] == t["correct"]).sum())
        let_through = int((t["approved"] & ~t["correct"]).sum())
        turned_down = int((~t["approved"] & t["correct"]).sum())
        approved_judged = int(t["approved"].sum())
        interval = wilson(agree, len(t))
        approval = int(g["approved"].sum()) / len(g)
        rows.append(
            {
                "reviewer": reviewer,
                "decisions": len(g),
                "approval_rate": approval,
                "judged_by_truth": len(t),
                "agreement": agree / len(t) if len(t) else None,
                "agreement_low": interval[0] if interval else None,
                "agreement_high": interval[1] if interval else None,
                "wrong_let_through": let_through,
                "right_turned_down": turned_down,
                "rubber_stamp": len(g) >= 50
                and approval > 0.98
                and approved_judged > 0
                and let_through / approved_judged >= 0.10,
            }
        )
    return pl.DataFrame(rows).sort("decisions", descending=True)
