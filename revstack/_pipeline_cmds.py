"""``revstack backtest`` and ``revstack digest``: the pipeline health agent's measures
against truth, stored for the dashboard, and its weekly digests per manager."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import cast

from revstack._output import console, print_json, progress_bar
from revstack.data.errors import InputError
from revstack.data.warehouse import Warehouse, scalar

__all__ = ["register"]


def cmd_backtest(args: argparse.Namespace) -> int:
    from revstack.contracts import load_definitions
    from revstack.metrics.pipeline import signal_quality, store_quality, summarize
    from revstack.metrics.pipeline_backtest import in_memory_copy, run_backtest

    definitions = load_definitions(Path(args.definitions) if args.definitions else None)
    wh = Warehouse(args.db)
    with wh.connect() as con:  # read once; train with the file closed
        if not scalar(con, "SELECT count(*) FROM truth.deal_outcomes"):
            if scalar(con, "SELECT count(*) FROM ops.imports WHERE format = 'maven'"):
                from revstack.metrics.pipeline_maven import maven_report

                print_json(maven_report(con, definitions))  # small: minutes are not at stake
                return 0
            raise InputError(
                f"{args.db}: no truth.* here; a backtest needs a generated company "
                "or a maven_crm import"
            )
        mem = in_memory_copy(con)
    try:
        with progress_bar(not args.json) as progress:
            bt = run_backtest(
                mem, definitions, eval_weeks=args.eval_weeks, seed=args.seed, progress=progress
            )
    finally:
        mem.close()
    live, every = signal_quality(bt), signal_quality(bt, live_only=False)
    summary = summarize(bt, live, every)
    if not args.no_store:
        with wh.transaction() as con:
            summary["backtest_id"] = store_quality(con, bt, live, every)
    if args.json:
        print_json(summary)
        return 0
    console.print(
        f"[bold]pipeline_health backtest[/bold] {summary['setup']['first_week']} .. "
        f"{summary['setup']['last_week']}, base rate {summary['base_rate_live']:.1%}"
    )
    for r in live.iter_rows(named=True):
        fmt = lambda v: "   -" if v is None else f"{v:.2f}"  # noqa: E731
        console.print(
            f"  {r['signal']:<22} flagged {r['flagged']:>8,}  p@k {fmt(r['precision_at_k'])}"
            f"  precision {fmt(r['precision'])}  recall {fmt(r['recall'])}"
            f"  PR-AUC {fmt(r['pr_auc'])}",
            markup=False,
        )
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from revstack._digest import build_digests, send_digests, write_digests
    from revstack.metrics.risk_flags import flags

    with Warehouse(args.db).connect() as con:
        rows = flags(con, args.run)
        mode = scalar(
            con,
            "SELECT coalesce(max(mode), 'shadow') FROM ops.runs WHERE run_id = $r",
            {"r": rows["run_id"][0] if len(rows) else ""},
        )
    if rows.is_empty():
        raise InputError(
            "no pipeline_health flags stored yet: run `revstack run --agent pipeline_health`"
        )
    week = args.week or cast(dt.datetime, rows["flagged_at"].min()).date().isoformat()
    digests = build_digests(rows, week=week, top=args.top, mode=str(mode))
    paths = write_digests(digests, Path(args.out))
    sent = send_digests(digests) if args.send else 0
    result = {
        "run_id": rows["run_id"][0],
        "week": week,
        "digests": len(digests),
        "files": [str(p) for p in paths],
        "sent": sent,
    }
    if args.json:
        print_json(result)
    else:
        console.print(
            f"{len(digests)} digests for week {week} in {args.out}"
            + (f", {sent} emailed" if args.send else "")
        )
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser(
        "backtest", help="pipeline_health against truth, week by week; stored for the dashboard"
    )
    p.add_argument("--eval-weeks", type=int, default=52)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-store", action="store_true", help="print only; keep nothing")
    p.add_argument("--definitions", help="definitions.yaml to use")
    common(p)
    p.set_defaults(func=cmd_backtest)
    d = sub.add_parser(
        "digest", help="weekly pipeline-risk digests per manager (HTML + Slack JSON)"
    )
    d.add_argument("--run", help="the agent run (default: the latest with flags)")
    d.add_argument("--week", help="the week's label (default: the run's as-of date)")
    d.add_argument("--out", required=True, help="directory for the files")
    d.add_argument("--top", type=int, default=25, help="deals per digest, highest risk first")
    d.add_argument("--send", action="store_true", help="also email them (REVSTACK_SMTP_* set)")
    common(d)
    d.set_defaults(func=cmd_digest)
