"""The forecast's accuracy over several generated companies, each and pooled.

One company's backtest has twelve quarters and thirty-six months: its MAPE ratio to the
rep commit and its range coverage carry sampling noise as wide as the goals' margins
(a coverage of 80% over 48 independent periods has a standard error of about 6
points). This generates a company per seed (kept in ``--dir``, reused when there),
runs ``revstack forecast backtest``'s computation on each, two at a time by default,
and prints per company and pooled over all of them: MAPE against the rep commit with
its ratio and 90% interval, and P10-P90 coverage with a 95% interval, both intervals
from resampling whole periods (pooled: whole periods of one company).

    python bench/forecast_accuracy.py --scale mid --seeds 0 1 2 3 7 [--jobs 2] [--dir var/accuracy]
    python bench/forecast_accuracy.py --scale mid --seeds 0 1 --report-only   # pool what is there
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from revstack.agents.forecast import mape_ratio, share_interval  # noqa: E402


def _company(scale: str, seed: int, folder: str, model_seed: int) -> tuple[int, float, float]:
    """Generate (when missing) and backtest one company; its company-level scored rows
    go to ``folder``. Returns the seed and the seconds each step took."""
    from revstack._forecast_cmds import backtest
    from revstack.data.generator import generate
    from revstack.data.warehouse import Warehouse

    db = Path(folder) / f"{scale}{seed}.duckdb"
    t = time.perf_counter()
    if not db.exists():
        generate(Warehouse(db), scale=scale, seed=seed)
    made = time.perf_counter() - t
    t = time.perf_counter()
    _, agent, base = backtest(str(db), seed=model_seed)
    keep = (pl.col("segment_kind") == "company") & pl.col("actual").is_not_null()
    cols = ["period_kind", "period_start", "offset", "actual"]
    a = agent.filter(keep).select(*cols, "p10", "p50", "p90")
    c = base.filter(keep & (pl.col("method") == "rep_commit")).select(*cols[:3], commit="value")
    scored = a.join(c, on=cols[:3], how="left").with_columns(company=pl.lit(seed))
    scored.write_parquet(Path(folder) / f"{scale}{seed}_scored.parquet")
    return seed, made, time.perf_counter() - t


def _line(label: str, g: pl.DataFrame) -> str:
    """One row of figures; ``block`` names the period (with its company) a snapshot is of."""
    both = g.filter(pl.col("commit").is_not_null())  # the ratio: snapshots the commit was made for
    r = mape_ratio(
        both["block"].to_numpy(),
        both["actual"].to_numpy(),
        both["p50"].to_numpy(),
        both["commit"].to_numpy(),
    )
    inside = ((g["actual"] >= g["p10"]) & (g["actual"] <= g["p90"])).to_numpy()
    lo, hi = share_interval(g["block"].to_numpy(), inside)
    mape = ((both["p50"] - both["actual"]).abs() / both["actual"]).mean()
    commit = ((both["commit"] - both["actual"]).abs() / both["actual"]).mean()
    return (
        f"{label:<8} {r['periods']:>4} periods {len(g):>4} snapshots  MAPE {mape:6.2%} vs commit "
        f"{commit:6.2%} = {r['ratio']:.2f}x [{r['low']:.2f}-{r['high']:.2f}]  "
        f"P10-P90 coverage {inside.mean():5.1%} [{lo:.1%}-{hi:.1%}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="mid", choices=("small", "mid", "large"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 7])
    ap.add_argument(
        "--model-seed", type=int, default=0, help="the backtest's own seed (deal models, draws)"
    )
    ap.add_argument(
        "--jobs", type=int, default=2, help="companies backtested at once (each ~5 GB on mid)"
    )
    ap.add_argument("--dir", default=str(ROOT / "var" / "accuracy"))
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="pool the scored rows already in --dir for --seeds; generate and backtest nothing",
    )
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Spawned, not forked: polars' and scikit-learn's thread pools do not survive a fork.
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        jobs = [
            pool.submit(_company, args.scale, s, args.dir, args.model_seed)
            for s in ([] if args.report_only else args.seeds)
        ]
        for i, job in enumerate(as_completed(jobs), 1):
            seed, made, ran = job.result()
            print(
                f"[{i}/{len(jobs)}] {args.scale} seed {seed}: generated in {made:.0f} s, backtest {ran:.0f} s",
                flush=True,
            )
    scored = pl.concat(
        [pl.read_parquet(Path(args.dir) / f"{args.scale}{s}_scored.parquet") for s in args.seeds]
    )
    scored = scored.filter(pl.col("actual") != 0).with_columns(
        block=pl.concat_str("company", "period_kind", "period_start", separator=":")
    )
    print(
        f"\n{args.scale} companies {args.seeds}, backtest seed {args.model_seed}, against truth.revenue "
        f"({time.perf_counter() - started:.0f} s in all)"
    )
    for kind in ("month", "quarter"):
        k = scored.filter(pl.col("period_kind") == kind)
        print(f"{kind}s")
        for seed in args.seeds:
            print("  " + _line(f"seed {seed}", k.filter(pl.col("company") == seed)))
        print("  " + _line("pooled", k))
    print("all periods")
    print("  " + _line("pooled", scored))


if __name__ == "__main__":
    main()
