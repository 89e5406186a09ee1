"""The realism table (issue #17) as Markdown for docs/generator.md: generate a company on a
fresh warehouse file, time it, and measure every tell beside its target and the real data.

    python bench/realism.py [--scale small|mid] [--seed N] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.data.generator import figure_text, generate, realism  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "company.duckdb")
        load = os.getloadavg()[0]
        start = time.perf_counter()
        generate(wh, scale=args.scale, seed=args.seed)
        seconds = time.perf_counter() - start
        shared = Path(args.shared)
        table = realism(wh, shared if shared.is_dir() else None)
        release_all()
    print(
        f"{args.scale} seed {args.seed}: generated in {seconds:.1f}s, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {load:.1f}"
    )
    print("\n| tell | measure | figure | target | real data | |\n|---|---|---|---|---|---|")
    for r in table.iter_rows(named=True):
        ok = {None: "", True: "pass", False: "**fail**"}[r["ok"]]
        print(
            f"| {r['tell']} | {r['measure']} | {figure_text(r['figure'], r['measure'])} | "
            f"{r['target']} | {figure_text(r['real'], r['measure'])} | {ok} |"
        )


if __name__ == "__main__":
    main()
