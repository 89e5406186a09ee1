"""Loading YAML into typed objects, with errors that name file, key path and problem."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from revstack.contracts._model import AgentContract, Definitions
from revstack.data.errors import ContractError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["Bundle", "load_all", "load_contract", "load_definitions", "default_dir"]

M = TypeVar("M", bound=BaseModel)


def default_dir() -> Path:
    return Path(str(resources.files("revstack.contracts")))


def _key_path(loc: tuple[Any, ...], raw: Any) -> str:
    """('stages', 3, 'entry_criteria', 1, 'FieldCriterion', 'op') -> stages[3].entry_criteria[1].op"""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, dict) and part in node:
            out += ("." if out else "") + str(part)
            node = node[part]
        elif isinstance(node, dict) or node is None:
            # union branch names (FieldCriterion...) and missing keys
            if part[:1].isupper():
                continue
            out += ("." if out else "") + str(part)
            node = None
        else:
            continue
    return out or "(top)"


def _problem(err: ErrorDetails) -> str:
    kind, loc = err["type"], err["loc"]
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    if kind == "missing":
        return f"required field {loc[-1]!r} is missing"
    if kind == "literal_error" and loc and loc[-1] == "tier":
        return f"tier must be 1, 2 or 3, got {err.get('input')!r}"
    if kind in ("greater_than_equal", "less_than_equal") and loc and "confidence" in str(loc[-1]):
        return f"{loc[-1]} must be within 0..1, got {err.get('input')!r}"
    return (
        f"{err['msg']} (got {err.get('input')!r})"
        if "input" in err and not isinstance(err.get("input"), dict | list)
        else err["msg"]
    )


def _parse(path: Path, model: type[M]) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContractError(str(path), "(file)", "no such file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ContractError(
            str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from exc
    if not isinstance(raw, dict):
        raise ContractError(str(path), "(top)", "expected a mapping of keys at the top")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # An unknown key usually explains the "missing" one beside it: name it first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        found = [(_key_path(e["loc"], raw), _problem(e)) for e in errors]
        error = ContractError(str(path), *found[0])
        error.all_problems = found  # type: ignore[attr-defined]
        raise error from exc


def load_definitions(path: Path | None = None) -> Definitions:
    """The canonical definitions (the shipped file unless ``path`` is given)."""
    return _parse(path or default_dir() / "definitions.yaml", Definitions)


def load_contract(path: Path) -> AgentContract:
    contract = _parse(path, AgentContract)
    if contract.agent != path.stem:
        raise ContractError(
            str(path), "agent", f"agent {contract.agent!r} must match the file name {path.stem!r}"
        )
    return contract


@dataclass(frozen=True)
class Bundle:
    directory: Path
    definitions: Definitions
    contracts: dict[str, AgentContract]


def load_all(directory: Path | None = None) -> Bundle:
    """definitions.yaml and every agents/*.yaml in ``directory`` (default: the shipped ones)."""
    base = directory or default_dir()
    definitions = load_definitions(base / "definitions.yaml")
    files = sorted((base / "agents").glob("*.yaml"))
    if not files:
        raise ContractError(str(base / "agents"), "(directory)", "no agent contracts found")
    return Bundle(base, definitions, {p.stem: load_contract(p) for p in files})
