"""Time `generate` at small and mid scale (large with --large) on a fresh warehouse file.

Prints the whole run (build in memory + the one write transaction), peak memory, and
per table the rows, the seconds DuckDB took to insert them and the rows per second.

    python bench/bench_generate.py [--large] [--seed N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import revstack.data.generator._write as gen_write  # noqa: E402
from revstack.data.generator import generate  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402


def run(scale: str, seed: int) -> None:
    inserts: dict[str, float] = {}
    real_insert = gen_write._insert

    def timed(con, table, data, import_id):
        t = time.perf_counter()
        real_insert(con, table, data, import_id)
        inserts[table] = time.perf_counter() - t

    gen_write._insert = timed
    marks: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{scale}.duckdb"
            start = time.perf_counter()
            summary = generate(
                Warehouse(path),
                scale=scale,
                seed=seed,
                progress=lambda step, done, total: marks.setdefault(
                    step, time.perf_counter() - start
                ),
            )
            seconds = time.perf_counter() - start
            release_all()
            size = path.stat().st_size / 1e6
    finally:
        gen_write._insert = real_insert
    rows = summary["rows"]
    total = sum(rows.values())
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    built = marks.get("writing", seconds)
    print(
        f"\n{scale} (seed {seed}): {seconds:.1f} s for {total:,} rows = {total / seconds:,.0f} rows/s; "
        f"built in memory in {built:.1f} s, written in {seconds - built:.1f} s; "
        f"file {size:,.0f} MB; peak memory of this process so far {peak_gb:.1f} GB"
    )
    print(f"  {'table':<30} {'rows':>12} {'insert s':>9} {'rows/s':>12}")
    for table, n in rows.items():
        s = inserts.get(table, 0.0)
        print(f"  {table:<30} {n:>12,} {s:>9.2f} {n / s if s else 0:>12,.0f}")
    o = summary["outcomes"]
    print(
        f"  win rate {o['win_rate']:.1%}, median cycle {o['median_cycle_days']:.0f} days, "
        f"open deals {o['open_deals']:,}; defects {summary['defects']}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--large", action="store_true", help="also build the large company (minutes, ~13 GB)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for scale in ["small", "mid"] + (["large"] if args.large else []):
        run(scale, args.seed)
