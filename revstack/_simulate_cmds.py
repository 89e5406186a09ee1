"""`revstack simulate`: weeks of operation replayed on a generated company."""

from __future__ import annotations

import argparse

from revstack._output import console, print_json, print_table, progress_bar
from revstack.data.warehouse import Warehouse

__all__ = ["register"]

_WEEK_COLUMNS = [
    "week",
    "at",
    "rows_loaded",
    "events",
    "proposed",
    "auto_applied",
    "card_decisions",
    "batch_acts",
    "proposals_in_batch_acts",
    "waiting",
    "graduated",
    "run_s",
]


def cmd_simulate(args: argparse.Namespace) -> int:
    from revstack._simulate import simulate

    with progress_bar(not args.json) as progress:
        out = simulate(
            Warehouse(args.db),
            weeks=args.weeks,
            seed=args.seed,
            scale=args.scale,
            as_of=args.as_of,
            live_week=args.live_week,
            agents=args.agents.split(",") if args.agents else None,
            progress=progress,
        )
    if args.json:
        print_json(out)
        return 0
    rows = [
        {
            **w,
            "at": w["at"][:10],
            "graduated": ", ".join(w["graduated"]),
            "run_s": w["seconds"].get("run"),
        }
        for w in out["weeks"]
    ]
    print_table(rows, _WEEK_COLUMNS, title=f"{args.weeks} weeks of a {args.scale} company")
    print_table(
        [
            {
                **r,
                "agreement_with_truth": _pct(r["agreement_with_truth"]),
            }
            for r in out["reviewers"]
        ],
        ["name", "accuracy", "decisions", "judged", "agreement_with_truth", "median_minutes"],
        title="reviewers (second looks included)",
    )
    if out["graduations"]:
        print_table(
            [
                {
                    "action": g["action"],
                    "graduated_at": g["graduated_at"][:16],
                    "under_review": _precision(g["precision_under_review"]),
                    "same_band_under_review": _precision(g["precision_under_review_in_band"]),
                    "after_automatic": _precision(g["precision_after_automatic"]),
                    "after_reviewed": _precision(g["precision_after_reviewed"]),
                }
                for g in out["graduations"]
            ],
            [
                "action",
                "graduated_at",
                "under_review",
                "same_band_under_review",
                "after_automatic",
                "after_reviewed",
            ],
            title="graduations: precision against truth of what the agent proposed",
        )
    else:
        console.print("no action type graduated: the evidence never met its bar")
    console.print(
        f"people made {out['human_decisions']:,} decisions (second looks and batch acts "
        f"included) where one card at a time would take {out['decisions_one_card_at_a_time']:,}; "
        f"{out['waiting_at_end']:,} proposals wait at the end"
    )
    return 0


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _precision(p: dict | None) -> str:
    return "–" if p is None else f"{p['precision']:.1%} of {p['proposals']:,}"


def register(sub: argparse._SubParsersAction, common) -> None:
    from revstack._output import iso_date

    p = sub.add_parser(
        "simulate",
        help="replay a generated company's last weeks with agents and simulated reviewers",
    )
    p.add_argument("--weeks", type=int, default=13)
    p.add_argument("--seed", type=int, default=7, help="the company and the reviewers")
    p.add_argument("--scale", default="small", choices=["small", "mid", "large"])
    p.add_argument(
        "--as-of", type=iso_date, default=None, help="the last simulated week's end (YYYY-MM-DD)"
    )
    p.add_argument(
        "--live-week", type=int, default=6, help="the week pipeline health leaves shadow mode"
    )
    p.add_argument("--agents", help="only these agents, comma-separated (default: all five)")
    common(p)
    p.set_defaults(func=cmd_simulate)
