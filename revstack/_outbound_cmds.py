"""CLI of the outbound agent's drafts: list, edit, approve or reject, export for a
sequencer, and load what the sequencer reported back. Nothing here sends email."""

from __future__ import annotations

import argparse
from pathlib import Path

from revstack._output import console, print_json, print_table, when_arg
from revstack.agents.engine import (
    approve_draft,
    draft_queue,
    edit_draft,
    export_drafts,
    load_outcomes,
)
from revstack.data.warehouse import Warehouse

__all__ = ["register"]


def cmd_drafts(args: argparse.Namespace) -> int:
    status = None if args.status == "all" else args.status
    df = draft_queue(Warehouse(args.db), status=status).head(args.limit)
    if args.json:
        print_json(df.to_dicts())
        return 0

    cols = [
        "draft_id",
        "proposal_id",
        "status",
        "email",
        "sequence",
        "sequence_step",
        "subject",
        "edits",
    ]
    print_table(df.to_dicts(), cols)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    body = Path(args.body_file).read_text(encoding="utf-8") if args.body_file else args.body
    edit_draft(Warehouse(args.db), args.draft_id, by=args.by, subject=args.subject, body=body)
    console.print(f"{args.draft_id}: edit recorded; approve it to export it")
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    d = approve_draft(
        Warehouse(args.db), args.draft_id, by=args.by, approve=approve, note=args.note
    )
    if args.json:
        print_json(d.__dict__)
    elif d.outcome == "done":
        console.print(
            f"{args.draft_id} approved ({d.proposal_id}); `revstack drafts export` hands it to the sequencer"
        )
    else:
        console.print(d.message)
    return 0


def cmd_export(args: argparse.Namespace) -> int:

    since = when_arg(args.since) if args.since else None
    n = export_drafts(Warehouse(args.db), Path(args.out), since=since)
    if args.json:
        print_json({"file": args.out, "rows": n})
    else:
        console.print(f"{args.out}: {n} approved draft(s) for the sequencer to import")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    n = load_outcomes(Warehouse(args.db), Path(args.file))
    console.print(f"{args.file}: {n} outcome(s) recorded")
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser(
        "drafts", help="outbound drafts: list, edit, approve, export (never sent here)"
    )
    p.add_argument(
        "--status",
        default="task",
        help="task (undecided), done (approved), dismissed, expired (nobody acted in time), or all",
    )
    p.add_argument("--limit", type=int, default=200)
    common(p, reads=True)
    p.set_defaults(func=cmd_drafts)
    dsub = p.add_subparsers(dest="drafts_command", metavar="SUBCOMMAND")

    pe = dsub.add_parser("edit", help="rewrite a draft before approving it (reviewers)")
    pe.add_argument("draft_id", metavar="DRAFT_ID")
    pe.add_argument("--by", required=True)
    pe.add_argument("--subject")
    pe.add_argument("--body")
    pe.add_argument("--body-file", metavar="FILE")
    common(pe)
    pe.set_defaults(func=cmd_edit)

    for name, approve in (("approve", True), ("reject", False)):
        pa = dsub.add_parser(name, help=f"{name} a draft (decides its tier-3 task)")
        pa.add_argument("draft_id", metavar="DRAFT_ID")
        pa.add_argument("--by", required=True)
        pa.add_argument("--note", required=not approve)
        common(pa)
        pa.set_defaults(func=lambda a, ok=approve: _decide(a, ok))

    px = dsub.add_parser("export", help="approved drafts as a sequencer import CSV")
    px.add_argument("--out", required=True, metavar="FILE")
    px.add_argument("--since", help="approved since (ISO time, or 2h / 3d ago)")
    common(px, reads=True)
    px.set_defaults(func=cmd_export)

    po = dsub.add_parser(
        "outcomes", help="load a sequencer's report: External ID, Event, Occurred At"
    )
    po.add_argument("file", metavar="FILE")
    common(po)
    po.set_defaults(func=cmd_outcomes)
