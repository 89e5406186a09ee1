"""One reviewer's decisions on a company's queue, each timed: what a click costs.

Picks ``--n`` waiting tier-2 proposals spread over the queue's action types (seeded),
approves five in six and rejects the sixth with a note, one after another through
``decide`` in this process (as the dashboard does), and prints the latency's median,
p95 and max with the machine's load, overall and per action type. The first decision
is shown apart: it opens the file. Printed, never asserted. It writes decisions: run it
on a copy.

    python bench/bench_decide_latency.py --db COPY.duckdb [--n 60] [--by rev] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import polars as pl

from revstack.agents.engine import decide, people
from revstack.data.warehouse import Warehouse, frame

_QUEUE = """
SELECT proposal_id, action_type FROM ops.proposals
WHERE status = 'pending' AND tier = 2
"""


def _pick(wh: Warehouse, n: int, seed: int) -> pl.DataFrame:
    queue = wh.read(lambda con: frame(con, _QUEUE))
    if queue.is_empty():
        raise SystemExit("no tier-2 proposal waits in this warehouse")
    kinds = queue["action_type"].unique().sort().to_list()
    each = max(n // len(kinds), 1)
    picked = [
        queue.filter(pl.col("action_type") == k).sample(
            min(each, queue.filter(pl.col("action_type") == k).height), seed=seed
        )
        for k in kinds
    ]
    return pl.concat(picked).sample(fraction=1.0, shuffle=True, seed=seed)


def _line(label: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[max(int(round(0.95 * len(ordered))) - 1, 0)]
    return (
        f"{label:<28} n={len(ms):>3}  median {statistics.median(ms):7.1f} ms  "
        f"p95 {p95:7.1f} ms  max {ordered[-1]:7.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--by", default="rev")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    wh = Warehouse(args.db)
    if args.by not in set(wh.read(people)["name"].to_list()):
        raise SystemExit(
            f"{args.by} is not a person of {args.db}: "
            f"revstack people add {args.by} --role reviewer --by ADMIN --db {args.db}"
        )
    chosen = _pick(wh, args.n, args.seed)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.db}: {chosen.height} decisions by {args.by}, load {load}")
    times: dict[str, list[float]] = {}
    first = None
    for i, (pid, kind) in enumerate(chosen.iter_rows()):
        start = time.perf_counter()
        if i % 6 == 5:
            decide(wh, pid, approve=False, by=args.by, note="bench: rejected")
        else:
            decide(wh, pid, approve=True, by=args.by)
        ms = (time.perf_counter() - start) * 1000
        if first is None:
            first = ms
            continue
        times.setdefault(kind, []).append(ms)
    print(f"first decision (opens the file): {first:.1f} ms")
    print(_line("all after the first", [t for ts in times.values() for t in ts]))
    for kind, ms in sorted(times.items()):
        print(_line(kind, ms))
    print(f"load after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
