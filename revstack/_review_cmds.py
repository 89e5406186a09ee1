"""CLI commands for review at scale: batches, their samples, and deciding the rest."""

from __future__ import annotations

import argparse

from revstack._output import console, print_json, print_table
from revstack.agents.engine import (
    FEEDBACK_KINDS,
    EngineError,
    acknowledge,
    address,
    batch_status,
    decide_batch,
    extend_sample,
    feedback,
    flag_output,
    open_batches,
    sample_cards,
)
from revstack.data.warehouse import Warehouse
from revstack.metrics.graduation import trust_report
from revstack.metrics.review import clearing_cost

__all__ = ["register"]

_COLUMNS = [
    "batch_id",
    "agent",
    "action_type",
    "field",
    "band",
    "size",
    "sample_size",
    "looks",
    "sample_decided",
    "wrong",
    "error_upper_bound",
    "still_needed",
    "waiting",
]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def cmd_batches(args: argparse.Namespace) -> int:
    wh = Warehouse(args.db)
    status = None if args.status == "all" else args.status
    rows = wh.read(batch_status, status=status)
    cost = wh.read(clearing_cost)
    if args.json:
        print_json({"batches": rows.to_dicts(), "clearing": cost})
        return 0
    if rows.is_empty():
        console.print(f"no {args.status} batches; `revstack batches open --by NAME` makes them")
    else:
        shown = [{**r, "error_upper_bound": _pct(r["error_upper_bound"])} for r in rows.to_dicts()]
        print_table(shown, _COLUMNS)
    console.print(
        f"clearing {cost['waiting']:,} waiting proposals: {cost['card_by_card']:,} decisions "
        f"card by card, {cost['by_batches']:,} by batches"
        + (f" ({cost['fewer']}x fewer)" if cost["fewer"] else "")
    )
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    new = open_batches(
        Warehouse(args.db),
        by=args.by,
        bar=args.bar,
        confidence=args.confidence,
        seed=args.seed,
        agent=args.agent,
    )
    if args.json:
        print_json(new.to_dicts())
    elif new.is_empty():
        console.print("every waiting proposal is already in an open batch")
    else:
        console.print(
            f"{len(new):,} batches opened over {int(new['size'].sum()):,} proposals; "
            f"{int(new['sample_size'].sum()):,} sample cards to review"
        )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    cards = Warehouse(args.db).read(sample_cards, args.batch, waiting_only=not args.all)
    if args.json:
        print_json(cards.to_dicts())
    else:
        cols = ["proposal_id", "status", "record_id", "field", "old_value", "new_value", "reason"]
        print_table(cards.to_dicts(), cols)
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    n = extend_sample(Warehouse(args.db), args.batch, by=args.by, more=args.more)
    console.print(f"{args.batch}: the sample is now {n:,} proposals")
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    d = decide_batch(Warehouse(args.db), args.batch, approve=approve, by=args.by, note=args.note)
    if args.json:
        print_json(
            {
                "batch_id": d.batch_id,
                "approve": d.approve,
                "counts": d.counts,
                "evidence": d.evidence.to_dict(),
            }
        )
    else:
        console.print(d.message)
    return 0


def _table_or(rows: list[dict], columns: list[str], empty: str) -> None:
    if rows:
        print_table(rows, columns)
    else:
        console.print(empty)


def cmd_trust(args: argparse.Namespace) -> int:
    report = Warehouse(args.db).read(trust_report)
    if args.json:
        print_json(report)
        return 0
    console.print("[bold]Suggestions[/bold]")
    _table_or(
        report["suggestions"],
        ["agent", "action_type", "suggestion", "source", "evidence"],
        "no action type has enough evidence for a change yet",
    )
    console.print("[bold]Graduations in force[/bold]")
    _table_or(
        report["graduations"],
        ["agent", "action_type", "changed_by", "changed_at", "reason"],
        "no action type has graduated by policy",
    )
    console.print("[bold]After graduation: continuous samples[/bold]")
    rows = [
        {
            **r,
            "precision": _pct(r["precision"]),
            "interval": ""
            if r["precision_low"] is None
            else f"{r['precision_low']:.1%}-{r['precision_high']:.1%}",
        }
        for r in report["continuous_sampling"]
    ]
    _table_or(
        rows,
        [
            "agent",
            "action_type",
            "policy_id",
            "sampled",
            "right",
            "wrong",
            "waiting",
            "precision",
            "interval",
        ],
        "no continuous samples: nothing has graduated from tier 2",
    )
    console.print("[bold]Is each action's confidence a probability?[/bold]")

    _table_or(
        [
            {
                **r,
                **{
                    k: _pct(r[k])
                    for k in (
                        "mean_confidence",
                        "right_share",
                        "calibration_error",
                        "raw_calibration_error",
                    )
                },
            }
            for r in report["calibration"]
        ],
        [
            "agent",
            "action_type",
            "judged",
            "confidences_used",
            "mean_confidence",
            "right_share",
            "calibration_error",
            "raw_calibration_error",
        ],
        "nothing judged yet",
    )
    for m in report["calibration_maps"]:  # the engine's latest map per action
        console.print(
            f"{m['agent']}.{m['action_type']}: logit p = {m['intercept']:+.2f} + "
            f"{m['slope']:.2f} logit score ({m['judged']:,} judged, "
            f"{m['judged_right']:,} approved as proposed)",
            soft_wrap=True,
        )
    console.print("[bold]Reviewers[/bold]")
    _table_or(
        [
            {**r, "approval_rate": _pct(r["approval_rate"]), "agreement": _pct(r["agreement"])}
            for r in report["reviewers"]
        ],
        [
            "reviewer",
            "decisions",
            "approval_rate",
            "judged_by_truth",
            "agreement",
            "wrong_let_through",
            "right_turned_down",
            "rubber_stamp",
        ],
        "nobody has decided one by one yet",
    )
    console.print("[bold]Demotions[/bold]")
    _table_or(
        report["demotions"],
        ["demoted_at", "agent", "action_type", "reason"],
        "no demotions",
    )
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    rows = Warehouse(args.db).read(feedback, status=args.status, agent=args.agent)
    if args.json:
        print_json(rows.to_dicts())
        return 0
    cols = [
        "feedback_id",
        "status",
        "agent",
        "output_kind",
        "output_ref",
        "flagged_by",
        "flagged_at",
        "note",
        "resolution",
    ]
    _table_or(rows.to_dicts(), cols, "no feedback")
    return 0


def cmd_feedback_add(args: argparse.Namespace) -> int:
    from revstack.agents.registry import IMPLEMENTATIONS

    if args.agent not in IMPLEMENTATIONS:
        raise EngineError(f"no agent {args.agent!r}; agents: {', '.join(sorted(IMPLEMENTATIONS))}")
    fid = flag_output(
        Warehouse(args.db),
        by=args.by,
        agent=args.agent,
        kind=args.kind,
        ref=args.ref,
        note=args.note,
    )
    console.print(f"{fid}: flagged {args.agent}'s {args.kind} {args.ref}")
    return 0


def cmd_feedback_ack(args: argparse.Namespace) -> int:
    acknowledge(Warehouse(args.db), args.feedback_id, by=args.by)
    console.print(f"{args.feedback_id} acknowledged by {args.by}")
    return 0


def cmd_feedback_address(args: argparse.Namespace) -> int:
    address(Warehouse(args.db), args.feedback_id, by=args.by, resolution=args.resolution)
    console.print(f"{args.feedback_id} addressed by {args.by}: {args.resolution}")
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser(
        "feedback", help="flags people raised on agents' outputs: list, add, acknowledge, address"
    )
    p.add_argument("--status", choices=["open", "acknowledged", "addressed"])
    p.add_argument("--agent")
    common(p, reads=True)
    p.set_defaults(func=cmd_feedback)
    fsub = p.add_subparsers(dest="feedback_command", metavar="SUBCOMMAND")
    a = fsub.add_parser("add", help="flag an agent's output with a note (anyone signed in)")
    a.add_argument("agent")
    a.add_argument("kind", choices=FEEDBACK_KINDS)
    a.add_argument("ref", help="the output's id: a flag, briefing, run, proposal or draft")
    a.add_argument("--note", required=True)
    a.add_argument("--by", required=True)
    common(a)
    a.set_defaults(func=cmd_feedback_add)
    k = fsub.add_parser("ack", help="acknowledge a flag (reviewers, admins)")
    k.add_argument("feedback_id")
    k.add_argument("--by", required=True)
    common(k)
    k.set_defaults(func=cmd_feedback_ack)
    d = fsub.add_parser("address", help="close a flag saying what changed (reviewers, admins)")
    d.add_argument("feedback_id")
    d.add_argument("--by", required=True)
    d.add_argument("--resolution", required=True, help="what changed, or why nothing did")
    common(d)
    d.set_defaults(func=cmd_feedback_address)

    p = sub.add_parser(
        "trust", help="the trust ramp: suggestions with evidence, graduations, demotions"
    )
    common(p, reads=True)
    p.set_defaults(func=cmd_trust)

    p = sub.add_parser(
        "batches", help="review at scale: the queue in batches, each with a sample's evidence"
    )
    p.add_argument("--status", default="open", choices=["open", "approved", "rejected", "all"])
    common(p, reads=True)
    p.set_defaults(func=cmd_batches)
    bsub = p.add_subparsers(dest="batches_command", metavar="SUBCOMMAND")

    o = bsub.add_parser("open", help="batch every waiting proposal no open batch holds")
    o.add_argument("--by", required=True, help="the reviewer doing it")
    o.add_argument("--bar", type=float, default=0.05, help="error rate to rule out (0.05)")
    o.add_argument("--confidence", type=float, default=0.95)
    o.add_argument("--seed", type=int, default=0, help="draws the samples")
    o.add_argument("--agent", help="only this agent's proposals")
    common(o)
    o.set_defaults(func=cmd_open)

    s = bsub.add_parser("sample", help="a batch's sample cards still waiting (--all: every one)")
    s.add_argument("batch")
    s.add_argument("--all", action="store_true")
    common(s, reads=True)
    s.set_defaults(func=cmd_sample)

    e = bsub.add_parser("extend", help="draw more of a batch into its sample")
    e.add_argument("batch")
    e.add_argument("--more", type=int, required=True)
    e.add_argument("--by", required=True)
    common(e)
    e.set_defaults(func=cmd_extend)

    for name, approve, text in (
        ("approve", True, "approve the rest of a batch whose sample meets its bar (admins)"),
        ("reject", False, "reject the rest of a batch, with a note saying why (admins)"),
    ):
        d = bsub.add_parser(name, help=text)
        d.add_argument("batch")
        d.add_argument("--by", required=True)
        d.add_argument("--note", required=not approve)
        common(d)
        d.set_defaults(func=lambda a, approve=approve: _decide(a, approve))
