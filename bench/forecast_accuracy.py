"""The forecast's accuracy over several generated companies, each and pooled.

One company's backtest has twelve quarters and thirty-six months: its MAPE ratio to the
rep commit and its range coverage carry sampling noise as wide as the goals' margins
(a coverage of 80% over 48 independent periods has a standard error of about 6
points). This generates a company per seed (kept in ``--dir``, reused when there),
runs ``revstack forecast backtest``'s computation on each, two at a time by default,
and prints per company and pooled over all of them: MAPE against the rep commit with
its ratio and 90% interval, and P10-P90 coverage with a 95% interval, both intervals
from resampling whole periods (pooled: whole periods of one company).

The ratio is printed against three commits: ``rep_commit`` (each rep's latest call, a
rep who has not called filled as a RevOps lead fills them: won so far and the open
pipeline at the rates its stages have converted at), ``rep_commit_crm_fill`` (filled at
the CRM's stage probabilities) and ``rep_commit_submitted`` (the calls alone); against
the filled ones again on the snapshots at which the calls are in (at least 80% of the
reps with a call or deals in the period had called), with the share of snapshots that
qualify; and against the two stage-weighted baselines, for scale.
``--combine-with rep_commit`` runs the forecast combined with the filled commit instead
of the calls (its scored rows go to ``<scale><seed>_scored_rep_commit.parquet``).
``--replay-weeks N`` cuts each company back N weeks as ``revstack simulate`` does
(``Replay``) and backtests what the cut knows (``<scale><seed>_w<N>*``): the data a
simulated quarter's first weekly run sees. ``--sampled TO`` runs the backtest a very large
company gets (``agents/forecast/_sample.py``: the past snapshots those of a seeded sample
of whole teams holding about TO deals) and scores each past snapshot of the whole
company drawn with what the sample taught it (model, loadings, combination, range
correction: ``run_forecast(shadow=)``), against the same baselines: set beside the plain
run's figures, what the sample costs (``<scale><seed>_scored_sampled<TO>.parquet``).

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


def _scored_path(
    folder: str, scale: str, seed: int, combine_with: str | None, weeks: int = 0, sampled: int = 0
) -> Path:
    tail = "" if combine_with is None else f"_{combine_with}"
    tail += f"_sampled{sampled}" if sampled else ""
    return Path(folder) / f"{_name(scale, seed, weeks)}_scored{tail}.parquet"


def _name(scale: str, seed: int, weeks: int) -> str:
    return f"{scale}{seed}" + (f"_w{weeks}" if weeks else "")


def _sampled_backtest(
    db: Path, model_seed: int, combine_with: str | None, to: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The whole company's past snapshots as a sampled backtest would forecast them, and
    the baselines of the whole company, against truth (as ``revstack forecast backtest``)."""
    from revstack.agents.engine import Context
    from revstack.agents.forecast import COMBINE_WITH, _backtest, default_start, load
    from revstack.contracts import load_all
    from revstack.data.inventory import data_as_of
    from revstack.data.warehouse import Warehouse
    from revstack.metrics.forecast import truth_actuals, with_actuals

    wh = Warehouse(db)
    bundle = load_all()
    with wh.connect() as con:
        as_of, truth = data_as_of(con), truth_actuals(con)
    ctx = Context(
        wh,
        agent="forecast",
        reads=bundle.contracts["forecast"].reads,
        as_of=as_of,
        definitions=bundle.definitions,
    )
    inp = load(ctx)
    start = default_start(inp.history["changed_at"].min().date(), as_of)
    full = _backtest.prepare(inp)
    sub = _backtest.prepare(inp, sample_size={"above": 0, "to": to})
    fc = _backtest.run_forecast(
        inp,
        eval_from=start,
        seed=model_seed,
        prepared=sub,
        shadow=full,
        combine_with=combine_with or COMBINE_WITH,
    )
    assert fc.shadow is not None
    snaps = full["snaps"].filter(pl.col("period_start") >= start)
    base = _backtest._baseline_segments(full, inp, snaps)  # the whole company's baselines
    return with_actuals(fc.shadow, truth), with_actuals(base, truth)


def _company(
    scale: str,
    seed: int,
    folder: str,
    model_seed: int,
    combine_with: str | None,
    weeks: int,
    sampled: int = 0,
) -> tuple[int, float, float]:
    """Generate (when missing; cut back ``weeks`` weeks by the replay when given) and
    backtest one company; its company-level scored rows go to ``folder``. Returns the
    seed and the seconds each step took."""
    from revstack._forecast_cmds import backtest
    from revstack.data.generator import DEFAULT_AS_OF, Replay, generate
    from revstack.data.warehouse import Warehouse

    db = Path(folder) / f"{_name(scale, seed, weeks)}.duckdb"
    t = time.perf_counter()
    if not db.exists() and weeks:
        Replay.start(
            Warehouse(db), scale=scale, seed=seed, as_of=DEFAULT_AS_OF, weeks=weeks
        ).close()
    elif not db.exists():
        generate(Warehouse(db), scale=scale, seed=seed)
    made = time.perf_counter() - t
    t = time.perf_counter()
    if sampled:
        agent, base = _sampled_backtest(db, model_seed, combine_with, sampled)
    else:
        _, agent, base = backtest(str(db), seed=model_seed, combine_with=combine_with)
    keep = (pl.col("segment_kind") == "company") & pl.col("actual").is_not_null()
    cols = ["period_kind", "period_start", "offset", "actual"]
    a = agent.filter(keep).select(*cols, "p10", "p50", "p90")
    c = base.filter(keep & (pl.col("method") == "rep_commit")).select(
        *cols[:3], "reps", "reps_submitted", commit="value"
    )
    scored = a.join(c, on=cols[:3], how="left")
    for method, name in (
        ("rep_commit_submitted", "commit_submitted"),
        ("rep_commit_crm_fill", "commit_crm_fill"),
        ("stage_weighted_crm", "stage_weighted_crm"),
        ("stage_weighted_history", "stage_weighted_history"),
    ):
        other = base.filter(keep & (pl.col("method") == method))
        scored = scored.join(other.select(*cols[:3], **{name: "value"}), on=cols[:3], how="left")
    scored = scored.with_columns(company=pl.lit(seed))
    scored.write_parquet(_scored_path(folder, scale, seed, combine_with, weeks, sampled))
    return seed, made, time.perf_counter() - t


_OPTIONAL = ("commit_crm_fill", "stage_weighted_crm", "stage_weighted_history")


def _read(path: Path) -> pl.DataFrame:
    """A company's scored rows in the current columns: files written before the filled
    commit had the calls alone as ``commit`` and no other baseline; for a while
    ``commit`` was the CRM fill and the history fill had a column of its own."""
    df = pl.read_parquet(path)
    if "commit_history_fill" in df.columns:  # written while rep_commit was the CRM fill
        df = df.rename({"commit": "commit_crm_fill", "commit_history_fill": "commit"})
    if "commit_submitted" not in df.columns:
        df = df.rename({"commit": "commit_submitted"}).with_columns(
            commit=pl.lit(None, pl.Float64),
            reps=pl.lit(None, pl.Int64),
            reps_submitted=pl.lit(None, pl.Int64),
        )
    df = df.with_columns(
        pl.lit(None, pl.Float64).alias(c) for c in _OPTIONAL if c not in df.columns
    )
    return df.select(
        "period_kind",
        "period_start",
        "offset",
        "actual",
        "p10",
        "p50",
        "p90",
        "commit",
        "commit_submitted",
        *_OPTIONAL,
        "reps",
        "reps_submitted",
        "company",
    )


_IN = 0.8  # the share of reps with a call or deals in the period who had called


def _vs(g: pl.DataFrame, column: str) -> str:
    """The forecast's MAPE against one commit's, on the snapshots that commit was made for."""
    both = g.filter(pl.col(column).is_not_null())
    if both.is_empty():
        return f"{'-':>36}"
    r = mape_ratio(
        both["block"].to_numpy(),
        both["actual"].to_numpy(),
        both["p50"].to_numpy(),
        both[column].to_numpy(),
    )
    mape = ((both["p50"] - both["actual"]).abs() / both["actual"]).mean()
    commit = ((both[column] - both["actual"]).abs() / both["actual"]).mean()
    return f"{mape:6.2%} vs {commit:6.2%} = {r['ratio']:.2f}x [{r['low']:.2f}-{r['high']:.2f}]"


def _line(label: str, g: pl.DataFrame) -> str:
    """One row of figures; ``block`` names the period (with its company) a snapshot is of."""
    inside = ((g["actual"] >= g["p10"]) & (g["actual"] <= g["p90"])).to_numpy()
    lo, hi = share_interval(g["block"].to_numpy(), inside)
    mape = ((g["p50"] - g["actual"]).abs() / g["actual"]).mean()
    known = g.filter(pl.col("reps").is_not_null())
    calls_in = known.filter(pl.col("reps_submitted") >= _IN * pl.col("reps"))
    share = f"{len(calls_in) / len(known):4.0%}" if len(known) else "   -"
    return (
        f"{label:<8} {g['block'].n_unique():>4} periods {len(g):>4} snapshots  MAPE {mape:6.2%}  "
        f"P10-P90 coverage {inside.mean():5.1%} [{lo:.1%}-{hi:.1%}]\n"
        f"{'':<10}vs commit                {_vs(g, 'commit')}\n"
        f"{'':<10}vs commit, CRM fill      {_vs(g, 'commit_crm_fill')}\n"
        f"{'':<10}vs calls only            {_vs(g, 'commit_submitted')}\n"
        f"{'':<10}calls in ({share} of snapshots)\n"
        f"{'':<10}  vs commit              {_vs(calls_in, 'commit')}\n"
        f"{'':<10}  vs commit, CRM fill    {_vs(calls_in, 'commit_crm_fill')}\n"
        f"{'':<10}vs stage-weighted CRM    {_vs(g, 'stage_weighted_crm')}\n"
        f"{'':<10}vs stage-weighted hist.  {_vs(g, 'stage_weighted_history')}"
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
        "--combine-with",
        choices=("rep_commit", "rep_commit_crm_fill", "rep_commit_submitted"),
        help="the commit the forecast is combined with (default: the agent's own)",
    )
    ap.add_argument(
        "--replay-weeks",
        type=int,
        default=0,
        help="cut each company back this many weeks as `revstack simulate` does",
    )
    ap.add_argument(
        "--sampled",
        type=int,
        default=0,
        metavar="TO",
        help="learn from a seeded sample of teams holding about TO deals, score the whole company",
    )
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
            pool.submit(
                _company,
                args.scale,
                s,
                args.dir,
                args.model_seed,
                args.combine_with,
                args.replay_weeks,
                args.sampled,
            )
            for s in ([] if args.report_only else args.seeds)
        ]
        for i, job in enumerate(as_completed(jobs), 1):
            seed, made, ran = job.result()
            print(
                f"[{i}/{len(jobs)}] {args.scale} seed {seed}: generated in {made:.0f} s, backtest {ran:.0f} s",
                flush=True,
            )
    scored = pl.concat(
        [
            _read(
                _scored_path(
                    args.dir, args.scale, s, args.combine_with, args.replay_weeks, args.sampled
                )
            )
            for s in args.seeds
        ]
    )
    scored = scored.filter(pl.col("actual") != 0).with_columns(
        block=pl.concat_str("company", "period_kind", "period_start", separator=":")
    )
    print(
        f"\n{args.scale} companies {args.seeds}, backtest seed {args.model_seed}, combined with "
        f"{args.combine_with or 'the default commit'}, against truth.revenue"
        + (f", cut back {args.replay_weeks} weeks " if args.replay_weeks else " ")
        + (f"learning from teams holding ~{args.sampled} deals " if args.sampled else "")
        + f"({time.perf_counter() - started:.0f} s in all)"
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
