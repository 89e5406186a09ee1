"""Time one refit of the forecast's deal model: a bag of calibrated fits, one after the
other against side by side in threads, on a generated warehouse's training rows.

Each member is its own fit with its own seed, single-threaded inside (OpenMP held to
one thread per fit: see docs/forecast.md, Speed); threads run members at once. Prints
both wall times, their ratio, and that both give the same probabilities.

    python bench/bench_forecast_fit.py --db var/mid1.duckdb [--bag 3] [--workers 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from revstack.agents.engine import Context  # noqa: E402
from revstack.agents.forecast import _backtest, load  # noqa: E402
from revstack.agents.forecast._model import BaggedWinModel  # noqa: E402
from revstack.contracts import load_all  # noqa: E402
from revstack.data.inventory import data_as_of  # noqa: E402
from revstack.data.warehouse import Warehouse  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--bag", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    wh = Warehouse(args.db)
    bundle = load_all()
    with wh.connect() as con:
        as_of = data_as_of(con)
    ctx = Context(
        wh,
        agent="forecast",
        reads=bundle.contracts["forecast"].reads,
        as_of=as_of,
        definitions=bundle.definitions,
    )
    t = time.perf_counter()
    rows = _backtest.prepare(load(ctx))["rows"]
    fit_at = (as_of - dt.timedelta(days=183)).date()  # the last refit of a 6-monthly backtest
    train = rows.filter(pl.col("period_end") <= fit_at)
    probe = rows.filter(pl.col("as_of") > dt.datetime.combine(fit_at, dt.time())).head(20_000)
    print(
        f"{args.db}: {len(train):,} training rows up to {fit_at}, prepared in {time.perf_counter() - t:.0f} s; "
        f"bag of {args.bag}"
    )
    out = {}
    for workers in (1, args.workers):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            model = BaggedWinModel(bag=args.bag, workers=workers).fit(train)
            times.append(time.perf_counter() - t)
        out[workers] = (times, model.predict_proba(probe))
        print(
            f"  workers {workers}: fit {min(times):.1f} s best, {np.median(times):.1f} s median of {len(times)}"
        )
    (seq, p1), (par, p2) = out[1], out[args.workers]
    print(
        f"  ratio sequential / threaded: {np.median(seq) / np.median(par):.2f}x; "
        f"same probabilities: {bool(np.array_equal(p1, p2))} (max diff {np.abs(p1 - p2).max():.2e})"
    )


if __name__ == "__main__":
    main()
