"""The ``revstack`` command line.

Each command is a small function ``cmd_<name>(args) -> int``. Library errors are
``RevstackError``s: printed as one line on stderr, exit code from the error.
``--debug`` (or ``REVSTACK_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from revstack._output import console, err_console, iso_date, print_json, progress_bar
from revstack.data.errors import InputError, RevstackError
from revstack.data.warehouse import Warehouse, default_db_path

Command = Callable[[argparse.Namespace], int]


def _warehouse(args: argparse.Namespace) -> Warehouse:
    return Warehouse(args.db)


# -- commands ----------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from revstack.data.inventory import warehouse_status

    status = warehouse_status(_warehouse(args))
    if args.json:
        print_json(status)
        return 0
    console.print(f"warehouse  {status['path']}  (schema version {status['schema_version']})")
    console.print(f"as of      {status['as_of'] or '-'}")
    for table, rows in status["tables"].items():
        console.print(f"  {table:<32} {rows:>12,}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from revstack.data.generator import generate

    with progress_bar(not args.json) as progress:
        summary = generate(
            _warehouse(args),
            scale=args.scale,
            seed=args.seed,
            as_of=args.as_of,
            replace=args.replace,
            progress=progress,
        )
    if args.report:
        summary["realism"] = _realism_report(args)
    if args.json:
        print_json(summary)
    else:
        rows = summary["rows"]
        console.print(
            f"generated {args.scale} company (seed {args.seed}, as of {summary['as_of']}) "
            f"in {summary['seconds']:.1f}s into {args.db}"
        )
        for table, n in rows.items():
            console.print(f"  {table:<32} {n:>12,}")
        if args.report:
            _print_realism(summary["realism"])
    return 0


def _realism_report(args: argparse.Namespace) -> list[dict]:
    """The realism table (issue #17): each tell, its target and the real data's figure."""
    from revstack.data.generator import realism

    shared = Path(args.shared)
    return realism(_warehouse(args), shared if shared.is_dir() else None).to_dicts()


def _print_realism(table: list[dict]) -> None:
    from revstack._output import print_table
    from revstack.data.generator import figure_text

    rows = [
        {
            "tell": r["tell"],
            "measure": r["measure"],
            "figure": figure_text(r["figure"], r["measure"]),
            "target": r["target"],
            "real": figure_text(r["real"], r["measure"]),
            "ok": {None: "", True: "pass", False: "FAIL"}[r["ok"]],
        }
        for r in table
    ]
    print_table(rows, ["tell", "measure", "figure", "target", "real", "ok"], title="realism")


def cmd_ingest(args: argparse.Namespace) -> int:
    from revstack.data.ingest import ingest

    as_of = dt.datetime.combine(args.as_of, dt.time()) if args.as_of else None
    with progress_bar(not args.json) as progress:
        summary = ingest(
            _warehouse(args),
            args.format,
            Path(args.directory),
            mapping=Path(args.mapping) if args.mapping else None,
            as_of=as_of,
            progress=progress,
        )
    if args.json:
        print_json(summary)
    else:
        console.print(
            f"import {summary['import_id']}: {args.format} export from {args.directory} "
            f"(as of {summary['as_of']})"
        )
        for table, n in summary["rows"].items():
            console.print(f"  {table:<32} {n:>12,}")
    return 0


def cmd_contracts_check(args: argparse.Namespace) -> int:
    from revstack.contracts import check_all

    with _warehouse(args).connect() as con:
        problems = check_all(con, Path(args.dir) if args.dir else None)
    if args.json:
        print_json({"ok": not problems, "problems": [_problem_dict(p) for p in problems]})
    elif problems:
        for p in problems:
            err_console.print(f"{p.file}: {p.key_path}: {p.problem}", markup=False)
        err_console.print(f"{len(problems)} problem(s) in contracts")
    else:
        console.print("contracts ok: definitions and every agent contract are valid")
    return 0 if not problems else 2


def _problem_dict(p: object) -> dict[str, str]:
    return {k: str(getattr(p, k)) for k in ("file", "key_path", "problem")}


def cmd_audit(args: argparse.Namespace) -> int:
    from revstack.contracts import load_definitions
    from revstack.metrics.quality import audit, render_report

    definitions = load_definitions(Path(args.definitions) if args.definitions else None)
    report = audit(_warehouse(args), definitions, store=not args.no_store)
    if args.json:
        print_json(report.to_dict())
    else:
        render_report(report, console)
    return 0


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _sign_in_configured() -> bool:
    """Streamlit's own OpenID Connect login is set up: an [auth] table in a secrets file
    Streamlit reads (the project's .streamlit/ or the user's)."""
    import tomllib

    for path in (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"):
        try:
            if "auth" in tomllib.loads(path.read_text(encoding="utf-8")):
                return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def cmd_app(args: argparse.Namespace) -> int:
    import getpass
    from importlib import resources

    from revstack.agents.engine import people

    signin = _sign_in_configured()
    if args.address not in _LOOPBACK and not signin and not args.insecure_no_sign_in_on_network:
        raise InputError(
            f"--address {args.address}: without sign-in configured (an [auth] table in "
            ".streamlit/secrets.toml) the dashboard serves this machine only; "
            "--insecure-no-sign-in-on-network serves it anyway, to anyone who can reach it"
        )
    env = {**os.environ, "REVSTACK_DB": str(Path(args.db).resolve())}
    mode = "sign-in"
    if not signin:
        who = args.as_ or getpass.getuser()
        if not args.db.exists():
            raise InputError(f"{args.db}: no warehouse there (revstack generate, or ingest)")
        team = Warehouse(args.db).read(people)
        if who not in team["name"].to_list():
            raise InputError(
                f"--as {who}: not a person in this warehouse; "
                f"`revstack people add {who} --role reviewer --by ADMIN`, or --as one of "
                f"{', '.join(team['name'].to_list()) or '(nobody yet)'}"
            )
        env["REVSTACK_AS"] = who
        mode = f"local mode, as {who}"
    app = resources.files("revstack.dashboard") / "app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    console.print(
        f"revstack dashboard ({mode}) on http://{args.address}:{args.port} "
        f"(warehouse {args.db}); Ctrl-C stops it"
    )
    sys.stdout.flush()
    # Streamlit takes this process's place, so a service manager's SIGTERM reaches the
    # server itself: nothing is left serving and holding the port after the stop.
    os.execve(sys.executable, command, env)


# -- parser ------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True, reads: bool = False) -> None:
    """The options every command has; ``reads``: the command only reads the warehouse, so
    a missing file is a mistyped path to name, not a warehouse to create."""
    p.set_defaults(reads_only=reads)
    p.add_argument(
        "--db",
        type=Path,
        default=default_db_path(),
        help="warehouse file (default: $REVSTACK_DB, else var/revstack.duckdb)",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revstack", description="An AI agent stack for Revenue Operations."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="schema version, data as-of date and row counts")
    _common(p, reads=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("generate", help="build a realistic sample company with ground truth")
    p.add_argument("--scale", default="small", choices=["small", "mid", "large"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--as-of", type=iso_date, default=None, help="the company's 'today' (YYYY-MM-DD)"
    )
    p.add_argument("--replace", action="store_true", help="replace data already in the warehouse")
    p.add_argument(
        "--report", action="store_true", help="print the realism table (docs/generator.md)"
    )
    p.add_argument(
        "--shared",
        default="../shared/data",
        help="public real data to compare with (default ../shared/data; skipped if absent)",
    )
    _common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("ingest", help="load a CRM export (salesforce, hubspot, maven)")
    p.add_argument("format", metavar="FORMAT")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--mapping", help="column mapping YAML for a custom export")
    p.add_argument("--as-of", type=iso_date, default=None, help="the export's 'today' (YYYY-MM-DD)")
    _common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("contracts", help="canonical definitions and agent contracts")
    csub = p.add_subparsers(dest="contracts_command", required=True, metavar="SUBCOMMAND")
    pc = csub.add_parser("check", help="validate definitions and every contract")
    pc.add_argument("--dir", help="a directory of edited contracts (default: the shipped ones)")
    _common(pc, reads=True)
    pc.set_defaults(func=cmd_contracts_check)

    p = sub.add_parser("audit", help="measure data quality and store a snapshot")
    p.add_argument("--definitions", help="definitions.yaml to audit against")
    p.add_argument("--no-store", action="store_true", help="measure without storing a snapshot")
    _common(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("app", help="start the dashboard")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument(
        "--address", default="127.0.0.1", help="where to listen (default: this machine only)"
    )
    p.add_argument(
        "--as",
        dest="as_",
        metavar="NAME",
        help="without sign-in configured, the one person the dashboard acts as "
        "(default: your operating-system user name)",
    )
    p.add_argument(
        "--insecure-no-sign-in-on-network",
        action="store_true",
        help="serve on a non-loopback --address without sign-in: anyone who reaches it acts",
    )
    _common(p, json_flag=False)
    p.set_defaults(func=cmd_app)

    from revstack import (
        _engine_cmds,
        _forecast_cmds,
        _hygiene_cmds,
        _metrics_cmds,
        _outbound_cmds,
        _pipeline_cmds,
        _prep_cmds,
        _review_cmds,
        _simulate_cmds,
    )

    for module in (
        _engine_cmds,
        _hygiene_cmds,
        _metrics_cmds,
        _pipeline_cmds,
        _prep_cmds,
        _review_cmds,
        _outbound_cmds,
        _forecast_cmds,
        _simulate_cmds,
    ):
        module.register(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("REVSTACK_DEBUG") == "1"
    try:
        if getattr(args, "reads_only", False) and not Path(args.db).is_file():
            raise InputError(
                f"{args.db}: no such warehouse (`revstack generate` or `revstack ingest` "
                "makes one; --db or $REVSTACK_DB says where it is)"
            )
        return int(args.func(args))
    except RevstackError as exc:
        if debug:
            raise
        err_console.print(f"revstack {args.command}: error: {exc}", markup=False, soft_wrap=True)
        if isinstance(exc, InputError) and len(exc.problems) > 1:
            for problem in exc.problems[:50]:
                err_console.print(f"  {problem}", markup=False, soft_wrap=True)
            if len(exc.problems) > 50:
                err_console.print(f"  ... {len(exc.problems) - 50} more", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print(f"revstack {args.command}: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
