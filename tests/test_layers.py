"""The package's shape, read from the source: one namespace, imports one way, no cycles,
private modules kept at home, agents that never meet except through the engine.

The graph counts every import, also those inside functions: a lazy import that closes a
cycle is still a cycle, it only fails later.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each design folder installs as a subpackage of revstack (pyproject's package-dir).
FOLDERS = {
    "revstack": "revstack",
    "data": "revstack.data",
    "contracts": "revstack.contracts",
    "agents": "revstack.agents",
    "metrics": "revstack.metrics",
    "dashboard": "revstack.dashboard",
}
# Imports point down this list: data <- contracts <- agents <- metrics <- dashboard / CLI.
LAYERS = ["revstack.data", "revstack.contracts", "revstack.agents", "revstack.metrics"]
TOP = ("revstack.dashboard", "cli")
OLD_NAMES = {"data", "agents", "metrics", "contracts", "dashboard"}


def _module_name(folder: str, path: Path) -> str:
    rel = path.relative_to(ROOT / folder).with_suffix("").parts
    parts = [FOLDERS[folder], *rel]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[tuple[str, Path]]:
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield _module_name(folder, path), path


MODULES = dict(_sources())


def _imports(path: Path) -> Iterator[tuple[str, str | None, int]]:
    """(module, name imported from it or None, line) for every absolute import."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    """Module -> the revstack modules it imports (``from pkg import sub`` counts as sub)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for module, member, _ in _imports(path):
            if module.split(".")[0] != "revstack":
                continue
            target = f"{module}.{member}" if f"{module}.{member}" in MODULES else module
            if target != name:
                edges[name].add(target)
    return edges


def _layer(module: str) -> str:
    for top in (*LAYERS, "revstack.dashboard"):
        if module == top or module.startswith(top + "."):
            return top
    return "cli"  # revstack itself and its modules: the command line


def _package(module: str) -> str:
    """The package a module belongs to (a package is its own)."""
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def test_every_folder_is_one_subpackage_of_revstack() -> None:
    assert all(name == "revstack" or name.startswith("revstack.") for name in MODULES)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {v: k for k, v in FOLDERS.items()}
    # every folder with an __init__ is listed, so the wheel leaves none behind
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert set(config["packages"]) == packages


def test_imports_point_one_way() -> None:
    order = {layer: i for i, layer in enumerate(LAYERS)}
    wrong = []
    for module, targets in _graph().items():
        here = _layer(module)
        for target in targets:
            there = _layer(target)
            if here in TOP and there in TOP and here != there:
                wrong.append(f"{module} -> {target}: the dashboard and the CLI are peers")
            elif here not in TOP and (there in TOP or order[there] > order[here]):
                wrong.append(f"{module} -> {target}: {here} may not import {there}")
    assert wrong == []


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    cycles, state = [], dict.fromkeys(MODULES, 0)  # 0 new, 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif state.get(nxt) == 0:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(MODULES):
        if state[module] == 0:
            visit(module, [module])
    assert cycles == []


def test_private_modules_and_names_stay_in_their_package() -> None:
    wrong = []
    for name, path in MODULES.items():
        home = _package(name)
        for module, member, line in _imports(path):
            if module.split(".")[0] != "revstack":
                continue
            parts = module.split(".") + ([member] if member else [])
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if not (home == owner or home.startswith(owner + ".")):
                        wrong.append(f"{path.relative_to(ROOT)}:{line} imports {'.'.join(parts)}")
                    break
    assert wrong == []


def test_agents_meet_only_through_the_engine_and_the_warehouse() -> None:
    agents = {p.parent.name for p in (ROOT / "agents").glob("*/_agent.py")} - {"engine"}
    assert len(agents) == 5
    wrong = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        for mine in agents
        for theirs in agents - {mine}
        if module.startswith(f"revstack.agents.{mine}")
        and target.startswith(f"revstack.agents.{theirs}")
    ]
    assert wrong == []


def test_only_the_dashboard_imports_streamlit() -> None:
    wrong = [
        name
        for name, path in MODULES.items()
        if _layer(name) != "revstack.dashboard"
        and any(m.split(".")[0] == "streamlit" for m, _, _ in _imports(path))
    ]
    assert wrong == []


@pytest.mark.parametrize("folder", ["tests", "bench"])
def test_nothing_imports_the_old_top_level_names(folder: str) -> None:
    paths = [p for _, p in MODULES.items()] + sorted((ROOT / folder).rglob("*.py"))
    wrong = [
        f"{p.relative_to(ROOT)}:{line} imports {module}"
        for p in paths
        for module, _, line in _imports(p)
        if module.split(".")[0] in OLD_NAMES
    ]
    assert wrong == []


def test_ruff_bans_every_private_module_of_the_engine() -> None:
    banned = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    banned = banned["flake8-tidy-imports"]["banned-api"]
    private = {
        f"revstack.agents.engine.{p.stem}"
        for p in (ROOT / "agents" / "engine").glob("_*.py")
        if p.stem != "__init__"
    }
    assert private and private <= set(banned)


def test_every_agent_is_a_package_of_the_same_shape() -> None:
    from revstack.agents.registry import IMPLEMENTATIONS

    for name, factory in IMPLEMENTATIONS.items():
        folder = ROOT / "agents" / name
        assert (folder / "__init__.py").is_file() and (folder / "_agent.py").is_file(), name
        assert factory.__module__ == f"revstack.agents.{name}._agent"
        package = __import__(f"revstack.agents.{name}", fromlist=["__all__"])
        assert factory.__name__ in package.__all__
        assert getattr(package, factory.__name__) is factory
    # nothing else sits loose beside them but the engine, the registry and shared helpers
    loose = {p.stem for p in (ROOT / "agents").glob("*.py")}
    assert loose == {"__init__", "registry", "features", "_features_sql", "_cite", "_llm", "_trees"}
