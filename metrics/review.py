"""What clearing the review queue costs people: one card at a time, or by batches.

Card by card, every waiting tier-2 proposal is one decision. By batches, each open batch
costs the sample cards still to decide plus the one decision on the rest; whatever no
batch holds yet, and every continuous sample of a graduated action, is a card each.
Both counts are of decisions from now on.
"""

from __future__ import annotations

from typing import Any

import duckdb

from revstack.data.warehouse import first_row

__all__ = ["clearing_cost"]

_COST = """
WITH open_members AS (
    SELECT m.batch_id, m.draw_order <= b.sample_size AS in_sample, p.status
    FROM ops.review_batch_members m
    JOIN ops.review_batches b USING (batch_id)
    JOIN ops.proposals p USING (proposal_id)
    WHERE b.status = 'open'
)
SELECT
    (SELECT count(*) FROM ops.proposals WHERE status = 'pending' AND NOT shadow) AS waiting,
    (SELECT count(*) FROM ops.unbatched) AS unbatched,
    (SELECT count(*) FROM ops.proposals p JOIN ops.continuous_samples USING (proposal_id)
       WHERE p.status = 'pending') AS continuous,
    (SELECT count(DISTINCT batch_id) FROM open_members) AS batches,
    (SELECT count(*) FROM open_members WHERE in_sample AND status = 'pending') AS sample_left,
    (SELECT count(DISTINCT batch_id) FROM open_members WHERE status = 'pending') AS batches_waiting
"""


def clearing_cost(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Decisions still needed to clear the queue: card by card against by batches."""
    row = first_row(con, _COST) or (0, 0, 0, 0, 0, 0)
    waiting, unbatched, continuous, batches, sample_left, batches_waiting = (int(x) for x in row)
    by_batches = unbatched + continuous + sample_left + batches_waiting
    return {
        "waiting": waiting,
        "card_by_card": waiting,
        "open_batches": batches,
        "sample_cards_left": sample_left,
        "unbatched": unbatched,
        "continuous_samples": continuous,
        "by_batches": by_batches,
        "fewer": round(int(waiting) / by_batches, 1) if by_batches else None,
    }
