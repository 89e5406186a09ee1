"""CLI commands of the hygiene layer: ``dedupe`` (any CSV) and ``unmerge``."""

from __future__ import annotations

import argparse
from pathlib import Path

from revstack._output import console, err_console, iso_date, print_json, progress_bar

__all__ = ["register"]


def cmd_dedupe(args: argparse.Namespace) -> int:
    from revstack.data.identity import dedupe_file, parse_fields

    fields = parse_fields(args.field or [])
    with progress_bar(not args.json) as progress:
        summary = dedupe_file(
            Path(args.input),
            id_col=args.id,
            name_col=args.name,
            fields=fields,
            out=Path(args.out),
            name_type=args.name_type,
            threshold=args.threshold,
            seed=args.seed,
            truth_col=args.truth,
            progress=progress,
            pairs_out=Path(args.pairs) if args.pairs else None,
            labels=Path(args.labels) if args.labels else None,
            ask=Path(args.ask) if args.ask else None,
            ask_n=args.ask_n,
            move_together=tuple(
                tuple(k.strip() for k in g.split(",")) for g in args.move_together or []
            ),
        )
    if args.json:
        print_json(summary)
        return 0
    for warning in summary["warnings"]:
        err_console.print(f"warning: {warning}")
    console.print(
        f"{summary['records']:,} records -> {summary['clusters']:,} entities "
        f"({summary['records_in_multi_record_clusters']:,} records in clusters of two or more; "
        f"{summary['candidate_pairs']:,} pairs compared) -> {summary['output']}"
    )
    if summary["asked"]:
        console.print(
            f"the pairs most worth an answer -> {summary['asked']} (fill in same/different, "
            "then run again with --labels)"
        )
    if "scores" in summary:
        s = summary["scores"]
        console.print(
            f"against {args.truth}: precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}"
        )
    return 0


def cmd_unmerge(args: argparse.Namespace) -> int:
    from revstack.agents.engine import EngineError, get_proposal, rollback
    from revstack.data.warehouse import Warehouse

    wh = Warehouse(args.db)
    found = wh.read(get_proposal, args.proposal_id)
    if found is None or found["action_type"] not in ("merge_accounts", "merge_contacts"):
        raise EngineError(f"{args.proposal_id} is not a merge proposal")
    report = rollback(wh, by=args.by, proposal=args.proposal_id, dry_run=args.dry_run)
    if args.json:
        print_json(
            {
                "rollback_id": report.rollback_id,
                "dry_run": report.dry_run,
                "restored": report.restored.to_dicts(),
                "conflicts": report.conflicts.to_dicts(),
            }
        )
        return 0
    for r in report.restored.iter_rows(named=True):
        console.print(
            f"{'would unmerge' if args.dry_run else 'unmerged'} {r['record_id']}: entity {r['from']} -> {r['to']} ({report.rollback_id})"
        )
    for r in report.conflicts.iter_rows(named=True):
        console.print(
            f"left as it is: {r['record_id']} now maps to {r['now_holds']} (changed since the merge)"
        )
    return 0


def cmd_enrich(args: argparse.Namespace) -> int:
    import datetime as dt

    from revstack.data.enrichment import FileProvider, load_enrichment
    from revstack.data.identity import parse_fields
    from revstack.data.warehouse import Warehouse

    columns = parse_fields(args.map or [], label="--map", kinds=None)
    provider = FileProvider(
        Path(args.file),
        name=args.provider,
        columns=columns,
        country=args.country,
        as_of=args.as_of or dt.date.today(),
    )
    summary = load_enrichment(Warehouse(args.db), provider)
    if args.json:
        print_json(summary)
    else:
        console.print(
            f"{summary['provider']}: {summary['stored']:,} companies stored for "
            f"{summary['accounts']:,} accounts ({summary['without_domain']:,} answers without a domain skipped); "
            f"run `revstack run --agent crm_hygiene` to propose from them"
        )
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    p = sub.add_parser("dedupe", help="find the duplicate records of any CSV file")
    p.add_argument("input", metavar="INPUT.csv")
    p.add_argument("--id", required=True, help="the column that identifies a record")
    p.add_argument("--name", required=True, help="the column holding the record's name")
    p.add_argument(
        "--field",
        action="append",
        metavar="KIND=COL",
        help="another column to compare, by kind: address, city, zip, phone, email, domain, person",
    )
    p.add_argument("--out", required=True, help="record_id,cluster_id,confidence CSV to write")
    p.add_argument("--name-type", default="org", help="org (default) or person: what --name holds")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="match probability that links records"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the random pairs the model learns from"
    )
    p.add_argument("--truth", help="a column of true entity ids: print precision / recall / F1")
    p.add_argument("--pairs", help="also write the scored pairs, with each field's level")
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="CSV of pairs a person marked: left_id,right_id,same (same/different, 1/0, yes/no)",
    )
    p.add_argument(
        "--ask",
        metavar="FILE",
        help="also write the pairs most worth a person's answer, as a labels file to fill in "
        "(same/different) and give back with --labels",
    )
    p.add_argument("--ask-n", type=int, default=20, help="how many pairs --ask writes (20)")
    p.add_argument(
        "--move-together",
        action="append",
        metavar="KIND,KIND",
        help="kinds that change at once (e.g. address,zip,phone for companies that move): their disagreements count once",
    )
    p.add_argument("--db", help=argparse.SUPPRESS)  # dedupe needs no warehouse
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=cmd_dedupe)

    p = sub.add_parser(
        "enrich", help="load a firmographics file (CSV or Parquet) as an enrichment provider"
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--provider", help="the provider's name (default: the file's name)")
    p.add_argument("--as-of", type=iso_date, help="when the data is from")
    p.add_argument("--country", help="the country of every company when the file has none")
    p.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COL",
        help="a column for a field where the usual names do not fit (domain, company_name, industry, employees, annual_revenue, country, city)",
    )
    common(p)
    p.set_defaults(func=cmd_enrich)

    p = sub.add_parser("unmerge", help="undo an approved merge: the record is its own entity again")
    p.add_argument(
        "proposal_id", metavar="ID", help="the merge_accounts or merge_contacts proposal"
    )
    p.add_argument("--by", required=True, help="the admin doing it")
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    common(p)
    p.set_defaults(func=cmd_unmerge)
