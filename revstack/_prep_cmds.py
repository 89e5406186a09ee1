"""CLI of the deal prep agent: ``brief OPP_ID`` (on demand), ``briefings``, ``briefing show``,
and ``news load FILE`` (the default news provider: a feed file)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from revstack._output import console, print_json, print_table
from revstack.agents.engine import (
    briefing,
    deal_exists,
    latest_briefing,
    list_briefings,
    record_open,
)
from revstack.data.errors import InputError
from revstack.data.warehouse import Warehouse

__all__ = ["register", "brief_on_demand"]


def brief_on_demand(wh: Warehouse, opportunity_id: str):
    """Run deal prep for one deal now, through the engine (stored, logged, run id)."""
    from revstack.agents.deal_prep import DealPrep
    from revstack.agents.engine import run_agents
    from revstack.agents.registry import specs
    from revstack.contracts import load_all

    bundle = load_all()
    spec = next(s for s in specs(bundle) if s.name == "deal_prep")
    # No triggers: the on-demand run consumes no pending events, so the scheduled pass
    # still sees every booked meeting.
    spec = dataclasses.replace(
        spec, triggers=(), factory=lambda: DealPrep(on_demand=[opportunity_id])
    )
    [result] = run_agents(
        wh, [spec], only="deal_prep", trigger="manual", definitions=bundle.definitions
    )
    return result


def _emit(args: argparse.Namespace, b: dict[str, object]) -> None:
    for flag, column in (("markdown_out", "markdown"), ("html_out", "html")):
        path = getattr(args, flag, None)
        if path:
            Path(path).write_text(str(b[column]), encoding="utf-8")
    if args.json:
        print_json({k: v for k, v in b.items() if k not in ("markdown", "html")})
    elif not (getattr(args, "markdown_out", None) or getattr(args, "html_out", None)):
        sys.stdout.write(str(b["markdown"]))  # as is: rich would re-wrap the Markdown


def cmd_brief(args: argparse.Namespace) -> int:
    wh = Warehouse(args.db)
    if not deal_exists(wh, args.opportunity_id):
        raise InputError(f"no opportunity {args.opportunity_id!r} in crm.opportunities")
    result = brief_on_demand(wh, args.opportunity_id)
    if result.status != "succeeded":
        raise InputError(f"deal prep failed ({result.run_id}): {result.message}")
    bid = latest_briefing(wh, args.opportunity_id)
    assert bid is not None  # the run succeeded, so the deal has a briefing
    if args.by:
        record_open(wh, bid, by=args.by, channel="cli")
    _emit(args, briefing(wh, bid))
    return 0


def cmd_briefing_show(args: argparse.Namespace) -> int:
    wh = Warehouse(args.db)
    b = briefing(wh, args.briefing_id)
    record_open(wh, args.briefing_id, by=args.by, channel="cli")
    _emit(args, b)
    return 0


def cmd_briefings(args: argparse.Namespace) -> int:
    df = list_briefings(Warehouse(args.db), opportunity_id=args.opp, limit=args.limit)
    if args.json:
        print_json(df.to_dicts())
        return 0

    print_table(df.to_dicts(), df.columns)
    return 0


def cmd_news_load(args: argparse.Namespace) -> int:
    from revstack.data.news import FeedFile, load_news

    counts = load_news(Warehouse(args.db), FeedFile(Path(args.file)))
    if args.json:
        print_json(counts)
    else:
        console.print(f"{args.file}: {counts['items']} item(s), {counts['new']} new in ref.news")
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser("brief", help="a cited briefing for one deal, now (deal prep on demand)")
    p.add_argument("opportunity_id", metavar="OPP_ID")
    p.add_argument("--by", help="who is reading it (records that the briefing was opened)")
    p.add_argument("--markdown-out", metavar="FILE", help="write the Markdown here")
    p.add_argument("--html-out", metavar="FILE", help="write the HTML here")
    common(p)
    p.set_defaults(func=cmd_brief)

    p = sub.add_parser("briefings", help="stored briefings and how often each was opened")
    p.add_argument("--opp", help="only this deal's")
    p.add_argument("--limit", type=int, default=200)
    common(p, reads=True)
    p.set_defaults(func=cmd_briefings)

    p = sub.add_parser("briefing", help="one stored briefing")
    bsub = p.add_subparsers(dest="briefing_command", required=True, metavar="SUBCOMMAND")
    ps = bsub.add_parser("show", help="print a briefing and record that it was opened")
    ps.add_argument("briefing_id", metavar="ID")
    ps.add_argument("--by", required=True, help="who is reading it")
    ps.add_argument("--markdown-out", metavar="FILE")
    ps.add_argument("--html-out", metavar="FILE")
    common(ps)
    ps.set_defaults(func=cmd_briefing_show)

    p = sub.add_parser("news", help="news items for briefings (ref.news)")
    nsub = p.add_subparsers(dest="news_command", required=True, metavar="SUBCOMMAND")
    pl_ = nsub.add_parser("load", help="store a news feed file (JSON lines or CSV) in ref.news")
    pl_.add_argument("file", metavar="FILE")
    common(pl_)
    pl_.set_defaults(func=cmd_news_load)
