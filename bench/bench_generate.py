"""Time `generate` at small and mid scale (large with --large); print rows per second.

python bench/bench_generate.py [--large]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.generator import generate  # noqa: E402
from data.warehouse import Warehouse, release_all  # noqa: E402


def run(scale: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / f"{scale}.duckdb")
        t = time.perf_counter()
        summary = generate(wh, scale=scale, seed=1)
        seconds = time.perf_counter() - t
        release_all()
        total = sum(summary["rows"].values())
        size = (Path(tmp) / f"{scale}.duckdb").stat().st_size / 1e6
        print(
            f"{scale}: {seconds:.1f} s for {total:,} rows = {total / seconds:,.0f} rows/s; file {size:,.0f} MB"
        )
        for table in ("crm.accounts", "crm.contacts", "crm.opportunities", "crm.activities"):
            print(f"  {table:<22} {summary['rows'][table]:>12,}")
        print(
            f"  win rate {summary['outcomes']['win_rate']:.1%}, median cycle {summary['outcomes']['median_cycle_days']:.0f} days"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--large", action="store_true", help="also build the large company (minutes, GBs)"
    )
    args = parser.parse_args()
    for scale in ["small", "mid"] + (["large"] if args.large else []):
        run(scale)
