"""The floor under the engine step: DuckDB storing the very rows a run stores, with no
engine logic (no routing, guards, leases logic, hashing), side by side with the run.

One engine run of N proposals (bench_engine.py's workload) on a fresh warehouse; its
rows in every table it wrote are read back, and a second fresh warehouse with the same
accounts stores them in one transaction (INSERT from the frames, one UPDATE of the
accounts), timed before COMMIT and at COMMIT; then once more with automatic
checkpoints off, so the COMMIT is the WAL alone and the CHECKPOINT is timed apart.
Then the least any engine meeting issue #3 must store: the proposals, one audit row
each and the leases of the queued ones, with the accounts update (no change events,
consumptions, record states or identity rows). Printed, never asserted.

The engine run and the floor alternate REPEAT times and the figure is the median of their
ratios: on this shared host one pair read 1.11x and the next 1.78x.

    python bench/bench_engine_floor.py [--proposals 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl
from bench_engine import _load

from revstack.agents.engine import run_agents
from revstack.data.warehouse import Warehouse, frame, release_all
from tests.agents._workload import SPEC, seed_accounts

# Every table a first run of the workload writes (counted before and after a run).
_TABLES = [
    "ops.proposals",
    "ops.audit_log",
    "ops.events",
    "ops.event_consumption",
    "ops.field_leases",
    "ops.record_state",
    "foundation.entity_map",
    "ops.runs",
]
# What the rules require per proposal whatever the design: the proposal, its
# audit row, and a lease for a queued field (the run row is one row).
_REQUIRED = ["ops.proposals", "ops.audit_log", "ops.field_leases", "ops.runs"]


def _store(
    path: Path, n: int, rows: dict[str, pl.DataFrame], accounts: pl.DataFrame, auto_checkpoint: bool
) -> tuple[float, float, float]:
    wh = Warehouse(path)
    seed_accounts(wh, n)
    with wh.connect() as con:
        if not auto_checkpoint:
            con.execute("SET checkpoint_threshold = '100GB'")
        con.execute("BEGIN")
        t = time.perf_counter()
        for table, df in rows.items():
            con.register("src", df)
            con.execute(f"INSERT INTO {table} SELECT * FROM src")
            con.unregister("src")
        con.register("acc", accounts)
        con.execute(
            "UPDATE crm.accounts a SET employees = s.employees FROM acc s WHERE a.account_id = s.account_id"
        )
        writes = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("COMMIT")
        commit = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("CHECKPOINT")
        checkpoint = time.perf_counter() - t
    release_all()
    return writes, commit, checkpoint


def _engine_once(path: Path, n: int) -> tuple[float, dict[str, pl.DataFrame], pl.DataFrame]:
    wh = Warehouse(path)
    seed_accounts(wh, n)
    t = time.perf_counter()
    run_agents(wh, [SPEC], only="bumper")
    engine = time.perf_counter() - t
    with wh.connect() as con:
        rows = {table: frame(con, f"SELECT * FROM {table}") for table in _TABLES}
        accounts = frame(con, "SELECT account_id, employees FROM crm.accounts")
    release_all()
    return engine, rows, accounts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="engine run and floor alternated this many times; the ratio's median is the figure",
    )
    args = parser.parse_args()
    n = args.proposals // 2
    print(f"{2 * n:,} proposals ({_load()})")
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            engine, rows, accounts = _engine_once(Path(tmp) / f"engine{i}.duckdb", n)
            w, c, k = _store(Path(tmp) / f"floor{i}.duckdb", n, rows, accounts, True)
            ratios.append(engine / (w + c + k))
            print(
                f"  {i + 1}: engine run end to end {engine:.2f} s; floor (every row, automatic "
                f"checkpoint) {w + c + k:.2f} s; ratio {ratios[-1]:.2f}x ({_load()})",
                flush=True,
            )
        print(
            f"  ratio, median of {len(ratios)}: {statistics.median(ratios):.2f}x "
            f"(range {min(ratios):.2f}-{max(ratios):.2f}); the host's speed moves each run"
        )
        print("  rows: " + ", ".join(f"{t} {len(df):,}" for t, df in rows.items()))
        required = {t: rows[t] for t in _REQUIRED}
        for name, subset in (("every row", rows), ("required rows only", required)):
            for auto in (True, False):
                w, c, k = _store(
                    Path(tmp) / f"floor{len(subset)}{auto}.duckdb", n, subset, accounts, auto
                )
                label = "automatic checkpoint" if auto else "checkpoint apart    "
                print(
                    f"  floor, {name}, {label}: writes {w:.2f} s, COMMIT {c:.2f} s, CHECKPOINT {k:.2f} s, "
                    f"total {w + c + k:.2f} s = {2 * n / (w + c + k) / 1000:.0f}k proposals/s; "
                    f"the last engine run takes {engine / (w + c + k):.2f}x this"
                )


if __name__ == "__main__":
    main()
