"""Engine throughput and approval latency, printed (never asserted).

1. The engine step of one agent run of N proposals (half tier 1 applied, half
   tier 2 queued with leases, one audit row each): route, apply, record, lease,
   echo events, consume, audit; timed inside the run's transaction, before COMMIT,
   on a fresh warehouse each repeat. Also printed: the COMMIT, the whole run end to
   end (agent reads and change detection included), and a second run on the same
   warehouse (100k proposals already recorded, every tier-2 field leased).
2. p95 latency of one approval (decide -> guarded apply -> audit append) with the
   audit log holding M rows (and, with --proposal-rows, that many decided proposals).

    python bench/bench_engine.py [--proposals 100000] [--repeat 5] [--audit-rows 10000000]
                                 [--proposal-rows 0] [--skip-approval]

The machine's load average is printed with the figures: on a shared machine the
wall-clock figures swing with the other work; CPU seconds of this process swing less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import revstack.agents.engine._run as run_module  # noqa: TID251 - times the engine's own steps
from revstack.agents.engine import (
    add_person,
    decide,
    run_agents,
)
from revstack.data.warehouse import Warehouse, release_all, scalar
from tests.agents._workload import SPEC, seed_accounts

_FILL_AUDIT = """
INSERT INTO ops.audit_log
SELECT i, TIMESTAMP '2026-01-01' + to_microseconds(i::BIGINT), 'bench', 'agent', 'propose', 'accounts',
       'A' || (i % 50000), 'employees', '1', '2', NULL, 'bench', NULL,
       md5((i - 1)::VARCHAR) || md5(i::VARCHAR), md5(i::VARCHAR) || md5((i + 1)::VARCHAR), 'bench'
FROM range(1, $n + 1) t(i)
"""
# Decided proposals of earlier runs, so looking one up is not a scan of a tiny table.
_FILL_PROPOSALS = """
INSERT INTO ops.proposals
SELECT 'R' || lpad((900000 + i // 100000)::VARCHAR, 6, '0') || '-' || (i % 100000 + 1),
       'R' || lpad((900000 + i // 100000)::VARCHAR, 6, '0'), 'bench', 'set_employees',
       'accounts', 'A' || (i % 50000), 'employees', '1', '2', 0.9, '{}', 'bench', 1, 'bench',
       'applied', false, md5(i::VARCHAR), TIMESTAMP '2026-01-01', NULL, NULL, NULL, '2'
FROM range($n) t(i)
"""
# The padding is written past the engine, so move the chain head to its end as an
# append would (the next append continues from it).
_MOVE_HEAD = """
UPDATE ops.audit_head SET seq = (SELECT max(seq) FROM ops.audit_log),
    hash = (SELECT arg_max(hash, seq) FROM ops.audit_log)
"""


class _Clock:
    """Wall and CPU seconds of every call to one function of the engine."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.original = module, name, getattr(module, name)
        self.calls: list[tuple[float, float]] = []

    def __enter__(self) -> _Clock:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.calls.append((time.perf_counter() - wall, time.process_time() - cpu))

        setattr(self.module, self.name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.module, self.name, self.original)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


def _run_once(wh: Warehouse) -> tuple[dict[str, int], float, float, float, float]:
    """(counts, step wall, step cpu, transaction wall, end-to-end wall) of one run."""
    with _Clock(run_module, "_commit") as step, _Clock(run_module, "in_transaction") as unit:
        t = time.perf_counter()
        [result] = run_agents(wh, [SPEC], only="bumper")
        total = time.perf_counter() - t
    # in_transaction runs twice: the change detection first, then the run's commit unit.
    return result.counts, *step.calls[-1], unit.calls[-1][0], total


def _spread(values: list[float]) -> str:
    return f"min {min(values):.3f}  median {statistics.median(values):.3f}  max {max(values):.3f}"


def bench_routing(n: int, repeat: int) -> None:
    print(f"engine step, {n:,} proposals, {repeat} fresh warehouses ({_load()})")
    rows: list[tuple[float, float, float, float]] = []
    second: list[tuple[dict[str, int], float, float]] = []
    counts: dict[str, int] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            wh = Warehouse(Path(tmp) / "bench.duckdb")
            seed_accounts(wh, n // 2)  # Bumper proposes 2 per account without industry
            counts, wall, cpu, unit, total = _run_once(wh)
            rows.append((wall, cpu, unit - wall, total))
            with wh.connect() as con:  # the accounts changed: Bumper has events again
                audit = int(scalar(con, "SELECT count(*) FROM ops.audit_log"))  # type: ignore[arg-type]
            again, wall2, cpu2, _, _ = _run_once(wh)
            second.append((again, wall2, cpu2))
            release_all()
        recorded = sum(v for k, v in counts.items() if k not in ("deferred", "skipped_invalid"))
        print(
            f"  step {wall:.3f} s wall ({recorded / wall:,.0f} proposals/s), {cpu:.3f} s cpu; "
            f"commit {unit - wall:.3f} s; end to end {total:.2f} s; {audit:,} audit rows"
        )
    walls = [r[0] for r in rows]
    print(f"  counts {counts}")
    print(
        f"  step wall s: {_spread(walls)}  -> {recorded / statistics.median(walls):,.0f} "
        f"proposals/s at the median, {recorded / min(walls):,.0f} at the best"
    )
    print(f"  step cpu s:  {_spread([r[1] for r in rows])}")
    print(f"  commit s:    {_spread([r[2] for r in rows])}")
    print(
        f"  end to end s (agent reads, change detection, step, commit): {_spread([r[3] for r in rows])}"
    )
    again = second[-1][0]
    print(
        f"  second run on the same warehouse {again}: step wall "
        f"{_spread([s[1] for s in second])}, cpu {_spread([s[2] for s in second])}"
    )


def bench_approval(audit_rows: int, proposal_rows: int = 0, approvals: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        seed_accounts(wh, approvals)
        add_person(wh, "ana", "admin", by="ana")
        add_person(wh, "rev", "reviewer", by="ana")
        run_agents(wh, [SPEC], only="bumper")  # tier-2 industry proposals to approve
        t = time.perf_counter()
        with wh.connect() as con:  # pad the log (these padding rows carry dummy hashes)
            base = int(scalar(con, "SELECT max(seq) FROM ops.audit_log"))  # type: ignore[arg-type]
            con.execute(
                _FILL_AUDIT.replace("range(1, $n + 1)", f"range({base + 1}, {base} + $n + 1)"),
                {"n": audit_rows},
            )
            con.execute(_MOVE_HEAD)
            if proposal_rows:
                con.execute(_FILL_PROPOSALS, {"n": proposal_rows})
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' ORDER BY 1"
                ).fetchall()
            ]
        print(
            f"approval: padded the audit log with {audit_rows:,} rows and ops.proposals with "
            f"{proposal_rows:,} in {time.perf_counter() - t:.1f}s"
        )
        lat = _latencies(lambda pid: decide(wh, pid, approve=True, by="rev"), ids[:approvals])
        p95 = lat[int(len(lat) * 0.95) - 1]
        print(
            f"  {len(lat)} approvals ({_load()}): median {statistics.median(lat):.1f} ms, "
            f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms"
        )


def _latencies(call: Callable[[str], object], ids: list[str]) -> list[float]:
    lat = []
    for pid in ids:
        t = time.perf_counter()
        call(pid)
        lat.append((time.perf_counter() - t) * 1000)
    return sorted(lat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--audit-rows", type=int, default=10_000_000)
    parser.add_argument(
        "--proposal-rows",
        type=int,
        default=0,
        help="decided proposals to add before the approvals (default none)",
    )
    parser.add_argument("--skip-approval", action="store_true")
    args = parser.parse_args()
    bench_routing(args.proposals, args.repeat)
    if not args.skip_approval:
        bench_approval(args.audit_rows, args.proposal_rows)


if __name__ == "__main__":
    main()
