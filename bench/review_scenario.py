"""Work a generated company's review queue as the trust loop is meant to run, and print
what it cost and how right it was: batches opened; each batch's sample decided by a
simulated reviewer who agrees with the generator's truth at a set rate (``--accuracy``,
seeded; a proposal truth cannot judge is approved); an admin who approves the rest where
the evidence meets the bar, rejects it where a fifth or more of the sample was wrong, and
otherwise extends the sample once; graduation suggestions applied; two flags raised.
Last, what the batch acts wrote, against truth.

    python bench/review_scenario.py --db var/small.duckdb [--seed 0] [--accuracy 0.95]

The warehouse must hold a generated company after `revstack run` with people `revops`
(admin) and `rev` (reviewer). It writes to it: use a copy. Used for docs/screenshots.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from revstack.agents.engine import (
    batch_evidence,
    batch_status,
    decide,
    decide_batch,
    extend_sample,
    flag_output,
    open_batches,
    sample_cards,
    set_policy,
)
from revstack.data.warehouse import Warehouse, frame
from revstack.metrics.graduation import all_suggestions
from revstack.metrics.review import clearing_cost
from revstack.metrics.verdicts import truth_verdicts


def _review(
    wh: Warehouse, pids: list[str], verdicts: dict[str, bool], rng: random.Random, accuracy: float
) -> int:
    for pid in pids:
        right = verdicts.get(pid, True)
        agrees = rng.random() < accuracy
        if right == agrees:  # a right one seen as right, or a wrong one missed
            decide(wh, pid, approve=True, by="rev")
        else:
            decide(
                wh,
                pid,
                approve=False,
                by="rev",
                note="does not match the account",
                reason_code="wrong_value",
            )
    return len(pids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--seed", type=int, default=0, help="draws the samples and the reviewer")
    ap.add_argument("--accuracy", type=float, default=0.95, help="reviewer agrees with truth")
    args = ap.parse_args()
    wh = Warehouse(args.db)
    rng = random.Random(args.seed)
    clock = time.perf_counter()
    open_batches(wh, by="rev", seed=args.seed)
    verdicts = dict(wh.read(truth_verdicts).iter_rows())
    before = wh.read(clearing_cost)
    batches = wh.read(batch_status)
    decisions = 0
    for b in batches.iter_rows(named=True):
        cards = wh.read(sample_cards, b["batch_id"])["proposal_id"].to_list()
        decisions += _review(wh, cards, verdicts, rng, args.accuracy)
        ev = wh.read(batch_evidence, b["batch_id"])
        if not ev.meets_bar and ev.wrong < 0.2 * ev.decided and ev.still_needed:
            extend_sample(wh, b["batch_id"], by="rev", more=ev.still_needed)
            more = wh.read(sample_cards, b["batch_id"])["proposal_id"].to_list()
            decisions += _review(wh, more, verdicts, rng, args.accuracy)
            ev = wh.read(batch_evidence, b["batch_id"])
        if ev.meets_bar:
            print(decide_batch(wh, b["batch_id"], approve=True, by="revops").message)
            decisions += 1
        elif ev.wrong >= 0.2 * ev.decided:
            note = f"{ev.wrong} of {ev.decided} sampled were wrong"
            print(decide_batch(wh, b["batch_id"], approve=False, by="revops", note=note).message)
            decisions += 1
        else:
            print(f"{b['batch_id']}: left open: {ev.sentence()}")
    sugg = wh.read(all_suggestions)
    for s in sugg.filter(pl.col("suggestion").str.starts_with("graduate")).iter_rows(named=True):
        set_policy(
            wh,
            agent=s["agent"],
            action_type=s["action_type"],
            tier=1,
            min_confidence=s["min_confidence"],
            by="revops",
            reason=s["evidence"],
        )
        print(f"graduated {s['agent']}.{s['action_type']}: {s['evidence']}")
    flag_output(
        wh,
        by="rev",
        agent="forecast",
        kind="forecast",
        ref="latest:quarter",
        note="P90 looks too wide for Q4",
    )
    flag_output(
        wh,
        by="rev",
        agent="pipeline_health",
        kind="risk_flag",
        ref="latest:gone_quiet",
        note="the champion is on leave, not gone",
    )
    after = wh.read(clearing_cost)
    acts = wh.read(lambda con: frame(con, _BATCH_ACTS))
    judged = acts.join(
        pl.DataFrame(list(verdicts.items()), schema=["proposal_id", "correct"], orient="row"),
        on="proposal_id",
    )
    print(
        f"queue {before['waiting']:,} proposals in {len(batches)} batches: {decisions:,} "
        f"decisions ({before['by_batches']:,} planned before extensions), "
        f"{after['waiting']:,} still waiting; {time.perf_counter() - clock:.1f} s"
    )
    for (status,), g in judged.group_by("status"):
        print(
            f"  the batch acts {status} {len(g):,} proposals truth can judge: "
            f"{g['correct'].mean():.1%} of them right"
        )
    return 0


_BATCH_ACTS = """
SELECT p.proposal_id, p.status FROM ops.proposals p JOIN ops.batch_acts USING (proposal_id)
"""


if __name__ == "__main__":
    raise SystemExit(main())
