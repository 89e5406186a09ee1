"""``revstack metrics --agent NAME``: what the engine recorded about an agent and, where
its measures exist, how it does against truth and reviewers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from revstack._output import console, print_json
from revstack.data.warehouse import Warehouse

__all__ = ["register"]


def cmd_metrics(args: argparse.Namespace) -> int:
    from revstack.agents.registry import specs
    from revstack.contracts import load_definitions
    from revstack.metrics.agents import agent_report

    definitions = load_definitions(Path(args.definitions) if args.definitions else None)
    known = {s.name for s in specs()}
    with Warehouse(args.db).connect() as con:
        report = agent_report(con, args.agent, definitions, known=known)
    if args.json:
        print_json(report)
        return 0
    console.print(f"[bold]{report['agent']}[/bold]")
    for row in report["engine"]["actions"]:
        console.print(
            f"  {row['action_type']:<24} proposals {row['proposals']:>9,}  auto {row['auto_applied']:>8,}"
            f"  pending {row['pending']:>8,}  override rate "
            + ("-" if row["override_rate"] is None else f"{row['override_rate']:.1%}")
        )
    if report["measures"] is None:
        console.print("  no measures against truth for this agent yet")
    else:
        console.print(json.dumps(report["measures"], indent=2, default=str), markup=False)
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser("metrics", help="an agent's measures: engine outcomes and against truth")
    p.add_argument("--agent", required=True)
    p.add_argument("--definitions", help="definitions.yaml to measure against")
    common(p, reads=True)
    p.set_defaults(func=cmd_metrics)
