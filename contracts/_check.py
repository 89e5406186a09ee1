"""Contracts checked against the warehouse and each other; every problem, not the first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from revstack.contracts._load import default_dir, load_contract, load_definitions
from revstack.contracts._model import AgentContract, Definitions
from revstack.data.errors import ContractError

__all__ = ["ContractProblem", "check_all", "catalog"]

_CATALOG = """
SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns
WHERE table_catalog = current_database()
"""
# Agents write the CRM mirror and the identity map; everything else is the engine's.
_WRITABLE_SCHEMAS = ("crm", "foundation")
# ops tables that hold the engine's own record: no agent output may land in them.
ENGINE_TABLES = frozenset(
    f"ops.{t}"
    for t in (
        "audit_log",
        "audit_log_guard",
        "proposals",
        "runs",
        "events",
        "event_consumption",
        "field_leases",
        "people",
        "policy",
        "agent_modes",
        "record_state",
        "imports",
        "import_files",
        "schema_version",
        "dq_snapshots",
        "dq_metrics",
        "identity_labels",
    )
)


@dataclass(frozen=True)
class ContractProblem:
    file: str
    key_path: str
    problem: str


def catalog(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, column in con.execute(_CATALOG).fetchall():
        out.setdefault(table, set()).add(column)
    return out


def _check_definitions(
    d: Definitions, cat: dict[str, set[str]], file: str
) -> list[ContractProblem]:
    problems = []
    opp = cat.get("crm.opportunities", set())
    for i, stage in enumerate(d.stages):
        for j, c in enumerate(stage.entry_criteria):
            if hasattr(c, "field") and c.field not in opp:
                problems.append(
                    ContractProblem(
                        file,
                        f"stages[{i}].entry_criteria[{j}].field",
                        f"crm.opportunities has no column {c.field!r}",
                    )
                )
    for obj, fields in d.required_fields.items():
        for k, f in enumerate(fields):
            if f not in cat.get(f"crm.{obj}", set()):
                problems.append(
                    ContractProblem(
                        file, f"required_fields.{obj}[{k}]", f"crm.{obj} has no column {f!r}"
                    )
                )
    return problems


def _check_contract(
    c: AgentContract, cat: dict[str, set[str]], file: str, agents: set[str]
) -> list[ContractProblem]:
    p: list[ContractProblem] = []
    for table, cols in c.reads.items():
        if table.startswith("truth."):
            p.append(
                ContractProblem(
                    file, f"reads.{table}", "truth.* is ground truth: no agent may read it"
                )
            )
        elif table not in cat:
            p.append(ContractProblem(file, f"reads.{table}", f"unknown table {table}"))
        elif cols != "*":
            p += [
                ContractProblem(file, f"reads.{table}", f"{table} has no column {col!r}")
                for col in cols
                if col not in cat[table]
            ]
    for table, fields in c.writes.items():
        if table.split(".")[0] not in _WRITABLE_SCHEMAS:
            p.append(
                ContractProblem(
                    file,
                    f"writes.{table}",
                    f"agents may write only {', '.join(s + '.*' for s in _WRITABLE_SCHEMAS)}",
                )
            )
        elif table not in cat:
            p.append(ContractProblem(file, f"writes.{table}", f"unknown table {table}"))
        else:
            p += [
                ContractProblem(
                    file, f"writes.{table}.{f}", f"the warehouse has no column {table}.{f}"
                )
                for f in fields
                if f not in cat[table]
            ]
    for i, table in enumerate(c.outputs):
        if not table.startswith("ops.") or table in ENGINE_TABLES:
            p.append(
                ContractProblem(
                    file,
                    f"outputs[{i}]",
                    f"{table}: outputs go to ops tables made for them, not the engine's own",
                )
            )
        elif table not in cat:
            p.append(ContractProblem(file, f"outputs[{i}]", f"unknown table {table}"))
        elif "run_id" not in cat[table]:
            p.append(
                ContractProblem(
                    file, f"outputs[{i}]", f"{table} has no run_id column to tag outputs with"
                )
            )
    p += [
        ContractProblem(file, f"replaces[{i}]", f"{table} is not declared under outputs")
        for i, table in enumerate(c.replaces)
        if table not in c.outputs
    ]
    for i, a in enumerate(c.actions):
        for w in a.writes:
            table, _, field = w.rpartition(".")
            if field not in c.writes.get(table, {}):
                p.append(
                    ContractProblem(
                        file, f"actions[{i}].writes", f"{w} is not declared under writes"
                    )
                )
    for dep in c.depends_on:
        if dep not in agents:
            p.append(ContractProblem(file, "depends_on", f"unknown agent {dep!r}"))
    return p


def _cycles(contracts: dict[str, AgentContract], files: dict[str, str]) -> list[ContractProblem]:
    state: dict[str, int] = {}
    problems: list[ContractProblem] = []

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2 or name not in contracts:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            problems.append(
                ContractProblem(
                    files[name], "depends_on", f"dependency cycle: {' -> '.join(cycle)}"
                )
            )
            return
        state[name] = 1
        for dep in contracts[name].depends_on:
            visit(dep, [*path, name])
        state[name] = 2

    for name in sorted(contracts):
        visit(name, [])
    return problems[:1]


def _all(exc: ContractError) -> list[ContractProblem]:
    found = getattr(exc, "all_problems", [(exc.key_path, exc.problem)])
    return [ContractProblem(exc.file, k, p) for k, p in found]


def check_all(
    con: duckdb.DuckDBPyConnection, directory: Path | None = None
) -> list[ContractProblem]:
    """Every problem in definitions.yaml and agents/*.yaml under ``directory``."""
    base = directory or default_dir()
    cat = catalog(con)
    problems: list[ContractProblem] = []
    try:
        problems += _check_definitions(
            load_definitions(base / "definitions.yaml"), cat, str(base / "definitions.yaml")
        )
    except ContractError as exc:
        problems += _all(exc)
    loaded: dict[str, AgentContract] = {}
    files: dict[str, str] = {}
    paths = sorted((base / "agents").glob("*.yaml"))
    if not paths:
        problems.append(
            ContractProblem(str(base / "agents"), "(directory)", "no agent contracts found")
        )
    for path in paths:
        try:
            loaded[path.stem] = load_contract(path)
            files[path.stem] = str(path)
        except ContractError as exc:
            problems += _all(exc)
    names = {p.stem for p in paths}
    for name, c in loaded.items():
        problems += _check_contract(c, cat, files[name], names)
    return problems + _cycles(loaded, files)
