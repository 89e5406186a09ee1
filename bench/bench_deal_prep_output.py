"""Deal prep's run alone, in this process, on a warehouse: its CPU and wall time, and what it
would write, kept to compare two versions of the code byte for byte.

    python bench/bench_deal_prep_output.py var/weekly.duckdb --out var/old   # on one commit
    python bench/bench_deal_prep_output.py var/weekly.duckdb --out var/new   # on another
    python bench/bench_deal_prep_output.py --compare var/old var/new

The agent only reads (the engine writes), so the same file serves both runs. The clock is
fixed, so the generated-at stamp (in the subtitle and its column) is the same in both;
``--horizon N`` overrides the contract's ``horizon_days`` (0: every upcoming meeting).
Kept: the ``ops.briefings`` rows (content, citations, inputs digests ...), the proposals
and the run's metadata (its seconds aside).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.deal_prep import DealPrep  # noqa: E402
from revstack.agents.engine import Context  # noqa: E402
from revstack.agents.registry import specs  # noqa: E402
from revstack.contracts import load_all  # noqa: E402
from revstack.data import clock  # noqa: E402
from revstack.data.inventory import data_as_of  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402

_FIXED = dt.datetime(2026, 9, 24, 3, 4, 5, 678901)


class _Fixed(clock.SimulatedClock):
    def now(self) -> dt.datetime:
        return _FIXED


def _run(db: Path, out: Path, horizon: int | None) -> None:
    wh = Warehouse(db)
    spec = next(s for s in specs() if s.name == "deal_prep")
    with wh.connect() as con:
        as_of = data_as_of(con)
    release_all()
    assert as_of is not None
    params = dict(spec.params)
    if horizon is not None:
        params["horizon_days"] = horizon
    ctx = Context(
        wh,
        agent="deal_prep",
        reads=spec.reads,
        as_of=as_of,
        definitions=load_all().definitions,
        params=params,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    with clock.using(_Fixed(_FIXED)):
        result = DealPrep(rewriter=None).run(ctx)
    print(
        f"load {os.getloadavg()[0]:.1f}: deal prep {time.perf_counter() - wall:.2f} s wall, "
        f"{time.process_time() - cpu:.2f} s CPU, "
        f"{result.metadata.get('briefings')} briefings"
    )
    out.mkdir(parents=True, exist_ok=True)
    result.outputs["ops.briefings"].write_parquet(out / "briefings.parquet")
    result.proposals.write_parquet(out / "proposals.parquet")
    meta = {k: v for k, v in result.metadata.items() if k != "seconds"}
    (out / "meta.json").write_text(json.dumps(meta, sort_keys=True, default=str, indent=1))


def _compare(a: Path, b: Path) -> None:
    for name in ("briefings", "proposals"):
        x, y = pl.read_parquet(a / f"{name}.parquet"), pl.read_parquet(b / f"{name}.parquet")
        if x.schema != y.schema or x.shape != y.shape:
            raise SystemExit(f"{name}: {x.shape} {x.schema} != {y.shape} {y.schema}")
        for col in x.columns:
            same = (x[col] == y[col]) | (x[col].is_null() & y[col].is_null())
            if not same.fill_null(False).all():
                raise SystemExit(f"{name}.{col} differs in {(~same.fill_null(False)).sum()} rows")
        print(f"{name}: {x.height:,} rows, every column identical")
    if json.loads((a / "meta.json").read_text()) != json.loads((b / "meta.json").read_text()):
        raise SystemExit("metadata differs")
    print("metadata identical")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path, nargs="?")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--horizon", type=int)
    ap.add_argument("--compare", type=Path, nargs=2)
    args = ap.parse_args()
    if args.compare:
        _compare(*args.compare)
    elif args.db and args.out:
        _run(args.db, args.out, args.horizon)
    else:
        raise SystemExit("DB --out DIR, or --compare DIR DIR")


if __name__ == "__main__":
    main()
