"""CLI commands of the orchestration engine: proposals, decisions, rollback, log, people."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from revstack._output import console, err_console, print_json, print_table, when_arg
from revstack.agents.engine import (
    ROLES,
    add_person,
    anchor,
    audit_rows,
    decide,
    list_proposals,
    parse_value,
    people,
    rollback,
    verify,
)
from revstack.data.warehouse import Warehouse

__all__ = ["register"]


def cmd_proposals(args: argparse.Namespace) -> int:
    status = None if args.status == "all" else args.status
    df = Warehouse(args.db).read(
        list_proposals, status=status, agent=args.agent, tier=args.tier, limit=args.limit
    )
    if args.json:
        print_json(df.to_dicts())
        return 0
    if df.is_empty():
        console.print(f"no {args.status} proposals")
        return 0
    cols = [
        "proposal_id",
        "agent",
        "action_type",
        "object_type",
        "record_id",
        "field",
        "old_value",
        "new_value",
        "confidence",
        "tier",
        "status",
        "reason",
    ]
    print_table(df.to_dicts(), cols)
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    value = parse_value(args.value) if getattr(args, "value", None) is not None else None
    d = decide(
        Warehouse(args.db),
        args.proposal_id,
        approve=approve,
        by=args.by,
        note=args.note,
        value=value,
        reason_code=args.reason_code,
    )
    if args.json:
        print_json(d.__dict__)
    else:
        console.print(d.message)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, False)


def _known_agent(agent: str, also: Sequence[str] = ()) -> None:
    """An agent named on the command line exists: in the registry, or among ``also``."""
    from revstack.agents.engine import EngineError
    from revstack.agents.registry import specs

    names = [s.name for s in specs()]
    names += [a for a in also if a not in names]
    if agent not in names:
        raise EngineError(f"no agent {agent!r}; agents: {', '.join(names)}")


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.agent is not None:
        from revstack.metrics.activity import agents_seen

        # an agent no longer in the registry can still be rolled back if it ran
        _known_agent(args.agent, Warehouse(args.db).read(agents_seen))
    report = rollback(
        Warehouse(args.db),
        by=args.by,
        agent=args.agent,
        since=args.since,
        until=args.until,
        undo=args.undo,
        proposal=args.proposal,
        batch=args.batch,
        dry_run=args.dry_run,
    )
    if args.json:
        print_json(
            {
                "rollback_id": report.rollback_id,
                "dry_run": report.dry_run,
                "considered": report.considered,
                "restored": report.restored.to_dicts(),
                "conflicts": report.conflicts.to_dicts(),
            }
        )
        return 0
    verb = "would restore" if report.dry_run else "restored"
    console.print(
        f"{report.rollback_id}: {verb} {len(report.restored)} field(s); "
        f"{len(report.conflicts)} conflict(s) left as they are"
    )
    if not report.restored.is_empty():
        print_table(
            report.restored.to_dicts(),
            ["object_type", "record_id", "field", "from", "to"],
            "restore",
        )
    if not report.conflicts.is_empty():
        print_table(
            report.conflicts.to_dicts(),
            ["object_type", "record_id", "field", "agent_wrote", "now_holds"],
            "conflicts: changed since the agent wrote them",
        )
    if not report.dry_run and not report.restored.is_empty():
        console.print(f"undo with: revstack rollback --undo {report.rollback_id} --by {args.by}")
    return 0


def _read_anchor(path: str) -> dict[str, Any]:
    from revstack.data.errors import InputError, Problem

    try:
        kept = json.loads(Path(path).read_text(encoding="utf-8"))
        int(kept["seq"]), str(kept["hash"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not an anchor written by `revstack log anchor`",
            [Problem(file=path, message=str(exc))],
        ) from None
    return dict(kept)


def cmd_log_anchor(args: argparse.Namespace) -> int:
    kept = Warehouse(args.db).read(anchor)
    text = json.dumps(kept, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        console.print(f"anchored row {kept['seq']:,} in {args.out}: keep it outside the warehouse")
    else:
        print(text)
    return 0


def cmd_log_verify(args: argparse.Namespace) -> int:
    wh = Warehouse(args.db)
    kept = _read_anchor(args.anchor) if args.anchor else None
    with wh.connect() as con:
        result = verify(con, anchor=kept)
    if args.json:
        print_json(result.__dict__)
    elif result.ok:
        console.print(f"audit log ok: {result.rows:,} rows, hash chain intact")
    else:
        where = f" at row {result.first_bad_seq}" if result.first_bad_seq is not None else ""
        err_console.print(f"audit log BROKEN{where}: {result.problem}")
    return 0 if result.ok else 1


def cmd_log_show(args: argparse.Namespace) -> int:
    df = Warehouse(args.db).read(
        audit_rows,
        actor=args.actor,
        record=args.record,
        field=args.field,
        action=args.action,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    if args.json:
        print_json(df.to_dicts())
    else:
        print_table(
            df.to_dicts(),
            [
                "seq",
                "logged_at",
                "actor",
                "action",
                "object_type",
                "record_id",
                "field",
                "before",
                "after",
                "proposal_id",
            ],
        )
    return 0


def cmd_people_add(args: argparse.Namespace) -> int:
    add_person(Warehouse(args.db), args.name, args.role, by=args.by)
    console.print(f"{args.name} is now {'an' if args.role == 'admin' else 'a'} {args.role}")
    return 0


def cmd_people_list(args: argparse.Namespace) -> int:
    df = Warehouse(args.db).read(people)
    if args.json:
        print_json(df.to_dicts())
    else:
        print_table(df.to_dicts(), ["name", "role", "added_by", "added_at"])
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    from revstack.agents.registry import registry_rows

    rows = Warehouse(args.db).read(registry_rows)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        r["depends_on"] = ", ".join(r["depends_on"]) or "-"
        r["triggers"] = ", ".join(r["triggers"])
        r["implemented"] = "yes" if r["implemented"] else "not yet"
    print_table(
        rows,
        ["agent", "implemented", "mode", "contract_version", "owner", "depends_on", "triggers"],
    )
    return 0


def cmd_agents_mode(args: argparse.Namespace) -> int:
    from revstack.agents.engine import set_mode

    set_mode(Warehouse(args.db), agent=args.agent, mode=args.mode, by=args.by)
    console.print(f"{args.agent} is now in {args.mode} mode")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from revstack._output import progress_bar
    from revstack.agents.engine import EngineError, run_agents
    from revstack.agents.registry import specs
    from revstack.contracts import load_all

    bundle = load_all()
    all_specs = specs(bundle)
    if args.agent and args.agent not in {s.name for s in all_specs}:
        raise EngineError(
            f"no agent {args.agent!r}; agents: {', '.join(s.name for s in all_specs)}"
        )
    if args.schedule:
        from revstack.agents.engine import record_schedule

        record_schedule(Warehouse(args.db))
    with progress_bar(not args.json) as progress:
        results = run_agents(
            Warehouse(args.db),
            all_specs,
            only=args.agent,
            shadow=args.shadow,
            trigger="manual" if args.agent else "events",
            definitions=bundle.definitions,
            progress=progress,
        )
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items()) if v)
            said = "; ".join(x for x in (counts, r.message) if x)
            console.print(
                f"{r.agent:<16} {r.status:<10} {r.run_id or '':<8} {r.mode:<7} {said}",
                markup=False,
                soft_wrap=True,
            )
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_policy_set(args: argparse.Namespace) -> int:
    from revstack.agents.engine import set_policy
    from revstack.agents.registry import specs

    _known_agent(args.agent)
    spec = {s.name: s for s in specs()}.get(args.agent)
    contract_tier = None
    if spec is not None:
        tiers = spec.policy.filter(spec.policy["action_type"] == args.action)["tier"]
        contract_tier = int(cast(int, tiers.max())) if len(tiers) else None
    pid = set_policy(
        Warehouse(args.db),
        agent=args.agent,
        action_type=args.action,
        tier=args.tier,
        min_confidence=args.min_confidence,
        by=args.by,
        reason=args.reason,
        contract_tier=contract_tier,
    )
    console.print(
        f"{pid}: {args.agent}.{args.action} tier={args.tier} min_confidence={args.min_confidence}"
    )
    return 0


def cmd_export_changes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from revstack.agents.engine import export_changes

    written = export_changes(
        Warehouse(args.db), args.format, Path(args.out), since=args.since, until=args.until
    )
    if args.json:
        print_json(written)
    elif not written:
        console.print("no approved or applied changes in the window")
    else:
        for name, rows in written.items():
            console.print(f"{Path(args.out) / name}: {rows} record(s)")
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser(
        "agents", help="the registry: every agent, its contract, mode and dependencies"
    )
    asub = p.add_subparsers(dest="agents_command", metavar="SUBCOMMAND")
    common(p, reads=True)
    p.set_defaults(func=cmd_agents)
    pm = asub.add_parser("mode", help="put an agent in shadow or live mode (admins)")
    pm.add_argument("agent")
    pm.add_argument("mode", choices=["shadow", "live"])
    pm.add_argument("--by", required=True)
    common(pm)
    pm.set_defaults(func=cmd_agents_mode)

    p = sub.add_parser(
        "run", help="process pending events with every agent (or one) in dependency order"
    )
    p.add_argument("--agent", help="run just this agent, even without pending events")
    p.add_argument(
        "--shadow", action="store_true", help="propose and log only; write nothing to crm"
    )
    p.add_argument(
        "--schedule", action="store_true", help="record a schedule event first (what cron runs)"
    )
    common(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("export-changes", help="approved and applied changes as CSVs a CRM imports")
    p.add_argument("--format", required=True, choices=["salesforce", "hubspot"])
    p.add_argument("--out", required=True, help="directory for the update CSVs")
    p.add_argument("--since", type=when_arg)
    p.add_argument("--until", type=when_arg)
    common(p, reads=True)
    p.set_defaults(func=cmd_export_changes)

    p = sub.add_parser("policy", help="tier and threshold overrides (admins)")
    psub2 = p.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    ps2 = psub2.add_parser("set", help="override an action's tier and/or min_confidence")
    ps2.add_argument("agent")
    ps2.add_argument("action")
    ps2.add_argument("--tier", type=int, choices=[1, 2, 3])
    ps2.add_argument("--min-confidence", type=float)
    ps2.add_argument("--by", required=True)
    ps2.add_argument("--reason", required=True)
    common(ps2)
    ps2.set_defaults(func=cmd_policy_set)

    p = sub.add_parser("proposals", help="list proposals (default: pending)")
    p.add_argument("--status", default="pending", help="pending, applied, task, shadow, ... or all")
    p.add_argument("--agent")
    p.add_argument("--tier", type=int, choices=[1, 2, 3])
    p.add_argument("--limit", type=int, default=200)
    common(p, reads=True)
    p.set_defaults(func=cmd_proposals)

    for name, func, helptext in (
        ("approve", cmd_approve, "approve a proposal (--value V: an edit)"),
        ("reject", cmd_reject, "reject a proposal with a note"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("proposal_id", metavar="ID")
        p.add_argument("--by", required=True, help="the reviewer's name")
        p.add_argument("--note", required=name == "reject")
        p.add_argument(
            "--reason-code",
            help="why an edit or a rejection overrides the agent: wrong_value, wrong_record, "
            "stale_source, missing_approval, not_yet, policy, other (or your own code)",
        )
        if name == "approve":
            p.add_argument("--value", help="write this value instead (recorded as an override)")
        common(p)
        p.set_defaults(func=func)

    p = sub.add_parser("rollback", help="restore what an agent wrote in a time window")
    p.add_argument("--agent")
    p.add_argument("--since", type=when_arg, help="start of the window (ISO time, or 2h / 3d ago)")
    p.add_argument("--until", type=when_arg)
    p.add_argument("--undo", metavar="ROLLBACK_ID", help="undo an earlier rollback")
    p.add_argument("--proposal", metavar="ID", help="undo the write of one proposal (an unmerge)")
    p.add_argument("--batch", metavar="ID", help="undo every write of one batch decision")
    p.add_argument("--by", required=True, help="the admin doing it")
    p.add_argument(
        "--dry-run", action="store_true", help="show the diff and conflicts, change nothing"
    )
    common(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("log", help="the audit log")
    lsub = p.add_subparsers(dest="log_command", required=True, metavar="SUBCOMMAND")
    pv = lsub.add_parser("verify", help="recompute the hash chain; name the first bad row")
    pv.add_argument(
        "--anchor", metavar="FILE", help="an anchor from `log anchor`: check the log still holds it"
    )
    common(pv, reads=True)
    pv.set_defaults(func=cmd_log_verify)
    pa = lsub.add_parser("anchor", help="write the chain's head (to keep outside the warehouse)")
    pa.add_argument("--out", metavar="FILE", help="write it here (default: print it)")
    common(pa, reads=True)
    pa.set_defaults(func=cmd_log_anchor)
    ps = lsub.add_parser("show", help="search the log")
    for flag in ("--actor", "--record", "--field", "--action"):
        ps.add_argument(flag)
    ps.add_argument("--since", type=when_arg)
    ps.add_argument("--until", type=when_arg)
    ps.add_argument("--limit", type=int, default=100)
    common(ps, reads=True)
    ps.set_defaults(func=cmd_log_show)

    p = sub.add_parser("people", help="who may view, review and administer")
    psub = p.add_subparsers(dest="people_command", required=True, metavar="SUBCOMMAND")
    pa = psub.add_parser(
        "add", help="add or change a person (admins only; the first admin adds themselves)"
    )
    pa.add_argument("name")
    pa.add_argument("--role", required=True, choices=ROLES)
    pa.add_argument("--by", required=True)
    common(pa)
    pa.set_defaults(func=cmd_people_add)
    pl_ = psub.add_parser("list", help="everyone and their role")
    common(pl_, reads=True)
    pl_.set_defaults(func=cmd_people_list)
