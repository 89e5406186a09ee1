"""How much memory the engine's commit of a large proposal set takes, over the set itself.

One agent returns N tier-2 merge-like proposals (each holding a field lease, as hygiene's
merges do) with evidence of about ``--evidence-bytes`` of JSON each, distinct per row; the
engine validates, routes and stores them in one run on a fresh warehouse. A thread
samples the process's resident memory every 20 ms. Printed: the frame's own size
(polars' estimate and the resident growth while the agent built it), the resident memory
when the agent returned, the peak during validation and commit, and that rise as a
multiple of the frame's resident growth (how many copies of the proposal set were alive
at once). Printed, never asserted.

    python bench/bench_commit_memory.py [--proposals 1000000] [--evidence-bytes 1500]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from revstack.agents.engine import POLICY_SCHEMA, Agent, AgentResult, AgentSpec, Context, run_agents
from revstack.data.warehouse import Warehouse

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class _Sampler:
    def __init__(self) -> None:
        self.peak = 0
        self.phase = "agent"
        self.phases: dict[str, int] = {}
        self.marks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = _rss()
            self.peak = max(self.peak, rss)
            self.phases[self.phase] = max(self.phases.get(self.phase, 0), rss)
            time.sleep(0.02)

    def reset(self) -> None:
        self.peak = _rss()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# The engine's steps whose peaks are printed apart (those a version of the code has).
_STEPS = [
    "in_transaction",
    "_commit",
    "validate_proposals",
    "calibrate",
    "route",
    "apply_batch",
    "_insert_proposals",
    "_own_echo",
    "_write_outputs",
    "_audit_run",
]


def _watch_steps(sampler: _Sampler) -> None:
    """Name the phase the sampler is in after the engine step running (its peak is kept)."""
    # The steps are private to the engine; a bench that times them may look inside.
    from revstack.agents.engine import _run  # noqa: TID251

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            outer, sampler.phase = sampler.phase, name
            try:
                return fn(*args, **kwargs)
            finally:
                sampler.phase = f"after {name}" if outer == "agent" else outer

        return watched

    for name in _STEPS:
        if hasattr(_run, name):
            setattr(_run, name, wrap(name, getattr(_run, name)))


def _proposals(n: int, evidence_bytes: int) -> pl.DataFrame:
    # Distinct evidence per row (a pad of the row's number), so no two strings are one.
    pad = max(evidence_bytes - 60, 1)
    i = pl.int_range(n, eager=True).cast(pl.String)
    return pl.DataFrame({"i": i}).select(
        action_type=pl.lit("merge_things"),
        object_type=pl.lit("entity_map"),
        record_id=pl.lit("things:T") + pl.col("i"),
        field=pl.lit("entity_id"),
        old_value=pl.lit('"E') + pl.col("i") + pl.lit('"'),
        new_value=pl.lit('"C') + pl.col("i") + pl.lit('"'),
        confidence=pl.lit(0.97),
        evidence=pl.lit('{"row":"')
        + pl.col("i")
        + pl.lit('","pad":"')
        + pl.col("i").str.pad_end(pad, "x")
        + pl.lit('"}'),
        reason=pl.lit("the same thing recorded twice, row ") + pl.col("i"),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proposals", type=int, default=1_000_000)
    ap.add_argument("--evidence-bytes", type=int, default=1500)
    args = ap.parse_args()
    sampler = _Sampler()
    _watch_steps(sampler)
    state: dict[str, float] = {}

    class Merger(Agent):
        name = "merger"
        version = "1.0"

        def run(self, ctx: Context) -> AgentResult:
            before = _rss()
            out = _proposals(args.proposals, args.evidence_bytes)
            state["frame_estimated"] = out.estimated_size()
            state["frame_rss"] = _rss() - before
            state["returned"] = _rss()
            sampler.reset()
            return AgentResult(out)

    policy = pl.DataFrame(
        {
            "action_type": ["merge_things"],
            "object_type": ["entity_map"],
            "field": ["entity_id"],
            "tier": [2],
            "min_confidence": [0.9],
        },
        schema=POLICY_SCHEMA,
    )
    spec = AgentSpec(
        name="merger",
        version="1.0",
        contract_version="1",
        owner="bench",
        mode="live",
        depends_on=(),
        triggers=("schedule",),
        reads={},
        policy=policy,
        factory=Merger,
    )
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "w.duckdb")
        t = time.perf_counter()
        [result] = run_agents(wh, [spec], only="merger")
        wall = time.perf_counter() - t
    sampler.stop()
    gb = 1e9
    rise = sampler.peak - state["returned"]
    print(
        f"{args.proposals:,} proposals, evidence ~{args.evidence_bytes} B: {result.status} {result.counts}"
    )
    print(
        f"frame: estimated {state['frame_estimated'] / gb:.2f} GB, resident growth {state['frame_rss'] / gb:.2f} GB"
    )
    print(
        f"RSS when the agent returned {state['returned'] / gb:.2f} GB, peak after {sampler.peak / gb:.2f} GB"
    )
    print(
        f"rise in validation + commit {rise / gb:.2f} GB = {rise / state['frame_rss']:.2f}x the frame"
    )
    for phase, peak in sampler.phases.items():
        print(f"  peak in {phase}: {peak / gb:.2f} GB")
    print(f"run wall {wall:.1f} s; load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
