"""Engine throughput and approval latency, printed (never asserted).

1. Route and record N proposals from one agent run (tier 1 applied, tier 2 queued
   with leases, audit rows written): proposals per second, audit rows per second.
2. p95 latency of one approval (decide -> guarded apply -> audit append) with the
   audit log holding M rows.

    python bench/bench_engine.py [--proposals 100000] [--audit-rows 10000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.engine._decide import decide  # noqa: E402
from agents.engine._people import add_person  # noqa: E402
from agents.engine._run import run_agents  # noqa: E402
from data.warehouse import Warehouse, scalar  # noqa: E402
from tests.agents._workload import SPEC, seed_accounts  # noqa: E402

_FILL_AUDIT = """
INSERT INTO ops.audit_log
SELECT i, TIMESTAMP '2026-01-01' + to_microseconds(i::BIGINT), 'bench', 'agent', 'propose', 'accounts',
       'A' || (i % 50000), 'employees', '1', '2', NULL, 'bench', NULL,
       md5((i - 1)::VARCHAR) || md5(i::VARCHAR), md5(i::VARCHAR) || md5((i + 1)::VARCHAR)
FROM range(1, $n + 1) t(i)
"""


def bench_routing(n: int) -> None:
    import agents.engine._run as run_module

    commit = run_module._commit
    spent: list[float] = []

    def timed_commit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        try:
            return commit(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    run_module._commit = timed_commit
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        accounts = n // 2  # Bumper proposes 2 per account without industry
        seed_accounts(wh, accounts)
        t = time.perf_counter()
        [result] = run_agents(wh, [SPEC], only="bumper")
        seconds = time.perf_counter() - t
        with wh.connect() as con:
            audit = int(scalar(con, "SELECT count(*) FROM ops.audit_log"))  # type: ignore[arg-type]
        total = sum(v for k, v in result.counts.items() if k not in ("deferred", "skipped_invalid"))
        print(f"routing: {total:,} proposals ({result.counts}) in {seconds:.2f}s "
              f"(including the agent and change detection)")  # fmt: skip
        print(
            f"  end to end: {total / seconds:,.0f} proposals/s, {audit / seconds:,.0f} audit rows/s"
        )
        print(
            f"  engine step (route, apply, record, lease, audit; before COMMIT): {sum(spent):.2f} s = {total / sum(spent):,.0f} proposals/s"
        )
    run_module._commit = commit


def bench_approval(audit_rows: int, approvals: int = 200) -> None:
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
            ids = [
                r[0]
                for r in con.execute(
                    "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' ORDER BY 1"
                ).fetchall()
            ]
        print(
            f"approval: padded the audit log with {audit_rows:,} rows in {time.perf_counter() - t:.1f}s"
        )
        lat = []
        for pid in ids[:approvals]:
            t = time.perf_counter()
            decide(wh, pid, approve=True, by="rev")
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        p95 = lat[int(len(lat) * 0.95) - 1]
        print(
            f"  {len(lat)} approvals: median {statistics.median(lat):.1f} ms, p95 {p95:.1f} ms, max {lat[-1]:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--audit-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    bench_routing(args.proposals)
    bench_approval(args.audit_rows)


if __name__ == "__main__":
    main()
