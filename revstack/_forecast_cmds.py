"""``revstack forecast backtest``: the forecast agent's rolling backtest, side by side with
the rep commit, stage-weighted (CRM and historical rates) and seasonal-naive baselines.
Each baseline's row carries the agent's MAPE over its own with a 90% interval from
resampling whole periods (``revstack.agents.forecast.mape_ratio``).

It reads the warehouse through the forecast agent's contract (as a run would), writes
nothing, and scores against the CRM's won revenue, or against the generator's truth
when the warehouse holds one (``actuals``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import TYPE_CHECKING, Any, cast

from revstack._output import console, iso_date, print_json, progress_bar

if TYPE_CHECKING:
    import polars as pl

    from revstack.data.progress import Progress

__all__ = ["backtest", "register"]


def backtest(
    db: str,
    *,
    start: dt.date | None = None,
    refit_months: int = 6,
    draws: int = 1000,
    seed: int = 0,
    bag: int = 3,
    progress: Progress | None = None,
    combine_with: str | None = None,
) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame]:
    """The report ``revstack forecast backtest`` prints, with the scored frames it was
    computed from (the agent's and the baselines', against the actuals it names).
    ``combine_with``: the commit baseline the simulation is combined with (default: the
    agent's own; ``bench/forecast_accuracy.py`` compares them)."""
    from revstack.agents.engine import Context
    from revstack.agents.forecast import COMBINE_WITH, default_start, load, run_forecast
    from revstack.contracts import load_all
    from revstack.data.errors import InputError
    from revstack.data.inventory import data_as_of
    from revstack.data.warehouse import Warehouse
    from revstack.metrics.forecast import accuracy, deal_calibration, truth_actuals, with_actuals

    wh = Warehouse(db)
    bundle = load_all()
    contract = bundle.contracts["forecast"]
    with wh.connect() as con:
        as_of = data_as_of(con)
        truth = truth_actuals(con)
    if as_of is None:
        raise InputError(f"{db}: no data imported or generated yet; nothing to backtest")
    ctx = Context(
        wh, agent="forecast", reads=contract.reads, as_of=as_of, definitions=bundle.definitions
    )
    started = time.perf_counter()
    inp = load(ctx)
    if inp.history.is_empty():
        raise InputError(f"{db}: the CRM has no opportunities; nothing to backtest")
    start = start or default_start(cast(dt.datetime, inp.history["changed_at"].min()).date(), as_of)
    fc = run_forecast(
        inp,
        eval_from=start,
        refit_months=refit_months,
        draws=draws,
        seed=seed,
        bag=bag,
        progress=progress,
        combine_with=combine_with or COMBINE_WITH,
    )
    agent, base = with_actuals(fc.agent, truth), with_actuals(fc.baselines, truth)
    report = {
        "warehouse": str(db),
        "as_of": as_of,
        "scored_from": start,
        "history_rebuilt": inp.rebuilt_history,
        "actuals": "truth.revenue" if truth is not None else "crm (closed won)",
        "seconds": round(time.perf_counter() - started, 1),
        "fits": fc.params["fits"],
        "company": accuracy(agent, base, segment_kind="company"),
        "team": accuracy(agent, base, segment_kind="team"),
        "deals": deal_calibration(fc.deals),
    }
    return report, agent, base


def cmd_backtest(args: argparse.Namespace) -> int:
    from revstack.metrics.forecast import summary_table

    with progress_bar(not args.json) as progress:
        report, _, _ = backtest(
            args.db,
            start=args.start,
            refit_months=args.refit_months,
            draws=args.draws,
            seed=args.seed,
            bag=args.bag,
            progress=progress,
        )
    as_of, start = report["as_of"], report["scored_from"]
    if args.json:
        print_json(report)
        return 0
    console.print(
        f"forecast backtest on {args.db} (as of {as_of:%Y-%m-%d}, scored from {start}, "
        f"actuals: {report['actuals']}, {report['seconds']} s; agent/this: the agent's MAPE over the "
        "baseline's, with a 90% interval from resampling whole periods)",
        soft_wrap=True,
    )
    table = summary_table(report["company"])
    for row in table.iter_rows(named=True):
        mape = "-" if row["mape"] is None else f"{row['mape']:.1%}"
        cov = "" if row["coverage"] is None else f"  coverage {row['coverage']:.0%}"
        bias = "-" if row["bias"] is None else f"{row['bias']:+.1%}"
        vs = (
            ""
            if row.get("mape_ratio") is None
            else (
                f"  agent/this ×{row['mape_ratio']:.2f} [{row['ratio_low']:.2f}–{row['ratio_high']:.2f}]"
            )
        )
        console.print(
            f"  {row['period_kind']:<8} day {row['offset']:>3}  {row['method']:<24} "
            f"MAPE {mape:>6}  bias {bias:>7}{cov}{vs}",
            soft_wrap=True,
        )
    for rec in report["company"]:
        calls = rec.get("calls_in") or {}
        ratio = calls.get("mape_ratio") or {}
        if ratio.get("ratio") is not None:
            console.print(
                f"  {rec['period_kind']:<8} calls in (≥{calls['threshold']:.0%} of the reps had "
                f"called; {calls['share']:.0%} of snapshots)  agent/rep_commit "
                f"×{ratio['ratio']:.2f} [{ratio['low']:.2f}–{ratio['high']:.2f}]",
                soft_wrap=True,
            )
    return 0


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return int(text)


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser("forecast", help="the forecast agent's backtest")
    fsub = p.add_subparsers(dest="forecast_command", required=True, metavar="SUBCOMMAND")
    b = fsub.add_parser("backtest", help="rolling backtest of the agent and the baselines")
    b.add_argument(
        "--from",
        dest="start",
        type=iso_date,
        default=None,
        help="first period scored (default: after a quarter of the history)",
    )
    b.add_argument(
        "--refit-months", type=int, default=6, help="months between refits of the deal model"
    )
    b.add_argument("--draws", type=int, default=1000, help="simulated outcomes per snapshot")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--bag",
        type=_at_least_one,
        default=3,
        help="deal models averaged per refit (1: a single fit)",
    )
    common(b)
    b.set_defaults(func=cmd_backtest)
