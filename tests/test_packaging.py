"""The wheel a user installs: one name in site-packages, everything it needs inside it.

Built from this checkout with the installed setuptools (no download), unpacked, and
imported from a folder where the checkout is not on the path, so a module that only
works from the repository fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [built] = out.glob("revstack-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tops = {n.split("/")[0] for n in names}
        dist_info = next(t for t in tops if t.endswith(".dist-info"))
        top_level = z.read(f"{dist_info}/top_level.txt").decode().split()
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
    assert tops == {"revstack", dist_info}
    assert top_level == ["revstack"]
    assert "revstack = revstack.cli:main" in entry_points
    # what the code reads with importlib.resources travels with it
    for needed in (
        "revstack/data/migrations/001_initial.sql",
        "revstack/data/mappings/salesforce.yaml",
        "revstack/contracts/definitions.yaml",
        "revstack/contracts/agents/crm_hygiene.yaml",
        "revstack/dashboard/app.py",
        "revstack/dashboard/app_pages/approvals.py",
    ):
        assert needed in names, needed
    # and nothing of the repository's own tooling does
    assert not [n for n in names if n.startswith(("revstack/tests", "revstack/bench"))]


def test_every_module_imports_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    modules = sorted(
        ".".join(p.relative_to(site).with_suffix("").parts).removesuffix(".__init__")
        for p in (site / "revstack").rglob("*.py")
        if "app_pages" not in p.parts and p.name != "app.py" and p.name != "__main__.py"
    )
    script = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "files = {m: importlib.import_module(m).__file__ for m in mods}\n"
        "old = sorted(n for n in ('data', 'agents', 'metrics', 'contracts', 'dashboard') if n in sys.modules)\n"
        "from importlib import resources\n"
        "n_sql = len([f for f in resources.files('revstack.data.migrations').iterdir() if f.name.endswith('.sql')])\n"
        "print(json.dumps({'files': files, 'old': old, 'n_sql': n_sql}))\n"
    )
    # The site folder first on the path, and a working directory with no checkout in it.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert len(result["files"]) == len(modules) > 100
    outside = [m for m, f in result["files"].items() if not f.startswith(str(site))]
    assert outside == []
    assert result["old"] == []
    assert result["n_sql"] == len(list((ROOT / "data" / "migrations").glob("*.sql")))
