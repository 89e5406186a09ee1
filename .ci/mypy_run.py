"""Run mypy over the revstack package under the module names it installs as.

pyproject's [tool.setuptools.package-dir] installs the top-level folders as subpackages
(``data/`` is ``revstack.data``), and the editable install resolves that with an import
hook that mypy cannot see. Pointed at the folders, plain mypy would call
``data/warehouse.py`` ``data.warehouse`` and fail to follow ``import revstack.data``.
So this script lists the files of every package in [tool.setuptools] packages, lets
mypy read its own configuration ([tool.mypy]) as usual, renames each source to its
installed module and runs the build. Errors carry the real paths (``data/warehouse.py``).

    .venv/bin/python .ci/mypy_run.py [mypy flags]

Extra arguments are mypy flags (not files). Exit status as mypy's: 0 clean, 1 errors,
2 blocking error. ``.ci/mypy_gate.py`` compares the errors with the baseline.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed_modules() -> dict[str, str]:
    """Each source file of the package (relative path) -> the module it installs as."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    modules: dict[str, str] = {}
    for package in setuptools["packages"]:
        mapped = max(
            (p for p in package_dir if package == p or package.startswith(p + ".")), key=len
        )
        folder = Path(package_dir[mapped], *package[len(mapped) :].split(".")[1:])
        for path in sorted(folder.glob("*.py")):
            module = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[os.path.normpath(path)] = module
    return modules


def main(argv: list[str]) -> int:
    try:
        from mypy.fscache import FileSystemCache
        from mypy.main import process_options, run_build
    except ImportError:
        print(f"mypy is not installed for {sys.executable} (make install)", file=sys.stderr)
        return 2

    os.chdir(ROOT)
    modules = installed_modules()
    fscache = FileSystemCache()
    # mypy parses the flags, reads [tool.mypy] and lists the files (under folder names)...
    sources, options = process_options([*argv, "--", *modules], fscache=fscache)
    # ...which become the installed names, so that `import revstack.data.x` resolves.
    for source in sources:
        source.module = modules[os.path.normpath(source.path or "")]
    _, messages, blockers = run_build(sources, options, fscache, 0.0, sys.stdout, sys.stderr)
    errors = [m for m in messages if ": error:" in m]
    if options.error_summary:
        files = {m.split(":", 1)[0] for m in errors}
        print(
            f"Found {len(errors)} errors in {len(files)} files "
            f"(checked {len(sources)} source files)"
            if errors
            else f"Success: no issues found in {len(sources)} source files"
        )
    if blockers:
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
