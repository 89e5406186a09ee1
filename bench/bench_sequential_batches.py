"""How often the simulated admin's batch policy passes or fails a batch, by its true
error rate, under the old rule (every look of a sample tested at 95%) and the new one
(look j tested at 1 - 0.05 / 2^j, agents/engine/_sampling.py).

The policy is revstack simulate's: review the first sample; approve the rest if the
evidence meets the bar, reject it if it fails the bar, else extend the sample by the
right answers still needed (or by the sample size again) and look again, up to
``--looks`` looks. Reviewers are taken to be right, so a wrong card is a wrong proposal.
Each batch is a seeded random order over N members of which round(N * rate) are wrong;
both rules see the same batches.

    python bench/bench_sequential_batches.py [--size 6600] [--batches 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import time

from revstack.agents.engine import (
    error_lower_bound,
    error_upper_bound,
    evidence,
    look_confidence,
    sample_size,
    still_needed,
)


def _old(k: int, n: int, N: int, bar: float, confidence: float, look: int) -> tuple:
    """The rule before: every look at ``confidence``."""
    up = error_upper_bound(k, n, N, confidence)
    more = 0 if up < bar else still_needed(k, n, N, bar, confidence)
    return up < bar, error_lower_bound(k, n, N, confidence) > bar, more


def _new(k: int, n: int, N: int, bar: float, confidence: float, look: int) -> tuple:
    ev = evidence(
        batch_size=N,
        sample_size=n,
        right=n - k,
        wrong=k,
        stale=0,
        bar=bar,
        confidence=confidence,
        looks=look,
    )
    return ev.meets_bar, ev.fails_bar, ev.still_needed


RULES = {"old (95% every look)": _old, "new (5% / 2^j at look j)": _new}


def run(rule, first: int, wrong_at: list[int], N: int, bar: float, looks: int) -> tuple:
    """One batch under the policy: (outcome, looks taken, cards reviewed)."""
    n = first
    for look in range(1, looks + 1):
        meets, fails, more = rule(wrong_at[n], n, N, bar, 0.95, look)
        if meets:
            return "accept", look, n
        if fails:
            return "reject", look, n
        if n >= N:
            return "open", look, n
        n = min(N, n + (more or n))
    return "open", looks, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=6600)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--looks", type=int, default=12)
    ap.add_argument("--bar", type=float, default=0.05)
    args = ap.parse_args()
    N, bar = args.size, args.bar
    print(
        f"batch of {N:,}, bar {bar:.0%}, {args.batches} batches per row, seed {args.seed}, "
        f"up to {args.looks} looks; load {os.getloadavg()[0]:.2f}"
    )
    print(
        "| true error | rule | first sample | accepted | rejected | left open | mean looks | mean cards |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate in (0.03, 0.05, 0.07):
        D = round(N * rate)
        rng = random.Random(f"{args.seed}:{rate}")
        batches = []
        for _ in range(args.batches):
            members = [1] * D + [0] * (N - D)
            rng.shuffle(members)
            batches.append([0, *itertools.accumulate(members)])  # wrong among the first n
        for name, rule in RULES.items():
            first = sample_size(N, bar, 0.95 if rule is _old else look_confidence(0.95, 1))
            t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            out = [run(rule, first, b, N, bar, args.looks) for b in batches]
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            share = {
                o: sum(r[0] == o for r in out) / len(out) for o in ("accept", "reject", "open")
            }
            print(
                f"| {rate:.0%} | {name} | {first} | {share['accept']:.1%} | {share['reject']:.1%} "
                f"| {share['open']:.1%} | {sum(r[1] for r in out) / len(out):.2f} "
                f"| {sum(r[2] for r in out) / len(out):,.0f} |"
                f"  <!-- wall {time.perf_counter() - t0:.1f} s, cpu "
                f"{c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime:.1f} s, "
                f"load {os.getloadavg()[0]:.2f} -->"
            )


if __name__ == "__main__":
    main()
