"""Fixtures shared by every test package."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from revstack.data.warehouse import Warehouse, release_all

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Put back the process's ``__main__`` after each test. Streamlit's AppTest runs a
    page as ``__main__`` and leaves it there, and a process started with ``spawn``
    afterwards in the same worker runs its parent's ``__main__`` file first: the
    dashboard's app, which opens ``var/revstack.duckdb`` under the working directory."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """A fresh, migrated warehouse file."""
    warehouse = Warehouse(tmp_path / "wh.duckdb", busy_timeout=5)
    with warehouse.connect():
        pass
    release_all()  # let go of the file now, not after the idle linger
    return warehouse


def _built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A warehouse file built by ``build(path)`` once per test session: a file to copy,
    never to write.

    Under pytest-xdist every worker runs the session fixtures it needs, so two workers
    each generated the small company and each ran the agents on it: the same files
    (generation and runs are seeded), built twice. The first worker to ask builds the
    file in the directory the session's workers share, under an exclusive lock; the
    others wait for it. Each fixture hands its tests a copy of its own, as before: tests
    add ops rows, and a DuckDB file has one writing process."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: nothing to share
        path = factory.mktemp(f"built-{name}") / f"{name}.duckdb"
        build(path)
        release_all()
        return path
    shared = factory.getbasetemp().parent / "built-once"  # the workers' common parent
    shared.mkdir(exist_ok=True)
    built, done = shared / f"{name}.duckdb", shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            built.unlink(missing_ok=True)  # a build that died half way starts again
            build(built)
            release_all()
            done.touch()
    return built


def _copy(factory: pytest.TempPathFactory, built: Path) -> Path:
    mine = factory.mktemp(built.stem) / built.name
    shutil.copy(built, mine)
    return mine


@pytest.fixture(scope="session")
def _small_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated small company (seed 3), as built: never written."""
    from revstack.data.generator import generate

    return _built_once(
        tmp_path_factory, "small", lambda path: generate(Warehouse(path), scale="small", seed=3)
    )


@pytest.fixture(scope="session")
def small_company(_small_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One generated small company (seed 3) for every test that only reads it or adds ops rows."""
    return Warehouse(_copy(tmp_path_factory, _small_built))


def revstack_cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    """``revstack ARGS --db DB`` in a process of its own, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "revstack", *args, "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # a guard against a hang, not a speed check: `run` on the small company took
        # 66 s in CI and over 300 s on this 2-core machine at load 11
        timeout=1200,
    )


@pytest.fixture(scope="session")
def _small_run_built(_small_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small company (copied) with three people, after `revstack run --json`, all
    through the command line; what the run printed is kept beside it as ``.json``.

    Built through the CLI so that the one run of all five agents on the small company
    serves both the tests that read its state and the CLI's end-to-end test
    (tests/test_cli.py), which before made and ran a company of its own."""

    def build(path: Path) -> None:
        shutil.copy(_small_built, path)
        for name, role in (("ana", "admin"), ("rev", "reviewer"), ("vic", "viewer")):
            added = revstack_cli("people", "add", name, "--role", role, "--by", "ana", db=path)
            assert added.returncode == 0, added.stderr
        run = revstack_cli("run", "--json", db=path)
        assert run.returncode == 0, run.stderr
        path.with_suffix(".json").write_text(run.stdout)

    return _built_once(tmp_path_factory, "small_run", build)


@pytest.fixture(scope="session")
def small_run(_small_run_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small company (copied) with three people, audited, after `revstack run`: a file
    to copy, never to write."""
    return _copy(tmp_path_factory, _small_run_built)


@pytest.fixture(scope="session")
def hygiene_built(_small_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small company (copied) with three people after one engine run of the hygiene
    agent alone: a file to copy, never to write. The hygiene tests (its proposals, its
    questions about pairs, its stored identity resolution) each made a company of their
    own and ran the agent on it; the run is the same, so it is made once."""
    from revstack.agents.engine import add_person, run_agents
    from revstack.agents.registry import specs

    def build(path: Path) -> None:
        shutil.copy(_small_built, path)
        wh = Warehouse(path)
        add_person(wh, "ana", "admin", by="ana")
        add_person(wh, "rev", "reviewer", by="ana")
        add_person(wh, "vic", "viewer", by="ana")
        [result] = run_agents(wh, specs(), only="crm_hygiene")
        assert result.status == "succeeded", result.message

    return _built_once(tmp_path_factory, "hygiene", build)


def copy_of(factory: pytest.TempPathFactory, built: Path) -> Warehouse:
    """A private copy of a file a session fixture built, for a module's fixture."""
    return Warehouse(_copy(factory, built))


@pytest.fixture(scope="session")
def forecast_company(_small_run_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """A copy of the small company after a run of the forecast agent (its outputs stored).

    The copy is small_run's: the forecast ran there after the other four agents, and it
    stored what a run of the forecast alone on the small company stores (every forecast
    table equal but for run ids, floats to 9 significant digits), so the forecast's
    tests no longer wait for a second full replay of the same company."""
    return Warehouse(_copy(tmp_path_factory, _small_run_built))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if os.environ.get("CI"):  # CI always has shared/ beside the clone: missing is a failure
            pytest.fail(f"real data not found at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


REAL_EXPORTS = {"salesforce_sample": "salesforce", "maven_crm": "maven"}
"""The real exports in shared/data the whole stack runs on, and their formats."""


@pytest.fixture(scope="session")
def real_export_run(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``built(folder)``: the real export ``folder`` (one of REAL_EXPORTS) imported with
    `revstack ingest`, audited, with one admin, after `revstack run --json`: a file to
    copy, never to write. Beside it, ``.json`` holds the audit's score, and the run's
    exit code and what it printed.

    The agents' tests (every agent finishes on it), the CLI's (`revstack run` exits 0)
    and the dashboard's (every page works on it) each imported the export and ran the
    agents on it; the same import and run, made once."""
    from revstack.agents.engine import add_person
    from revstack.contracts import load_definitions
    from revstack.metrics.quality import audit

    def built(folder: str) -> Path:
        def build(path: Path) -> None:
            ingested = revstack_cli(
                "ingest", REAL_EXPORTS[folder], str(shared_data / folder), db=path
            )
            assert ingested.returncode == 0, ingested.stderr
            wh = Warehouse(path)
            score = audit(wh, load_definitions()).score
            add_person(wh, "ana", "admin", by="ana")
            release_all()
            run = revstack_cli("run", "--json", db=path)
            said = {"audit_score": score, "exit": run.returncode, "stderr": run.stderr}
            path.with_suffix(".json").write_text(json.dumps({**said, "stdout": run.stdout}))

        return _built_once(tmp_path_factory, folder, build)

    return built


# DuckDB 2's nanobind module reports "leaked function" objects when the interpreter
# shuts down after a long test session (a reference-count issue inside the binding,
# not ours). The report lands after pytest's summary and buries it, so once pytest
# has written everything and every other plugin has finished, leave without the
# interpreter teardown, keeping pytest's exit status.
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import sys

    if _EXIT in config.stash and os.environ.get("REVSTACK_KEEP_TEARDOWN") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT])


_EXIT = pytest.StashKey[int]()
