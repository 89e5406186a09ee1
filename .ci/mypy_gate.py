"""Type-check gate: mypy's errors may only shrink from those in .ci/mypy-baseline.txt.

    python .ci/mypy_gate.py                 # fail on a new error or on a stale baseline
    python .ci/mypy_gate.py --update        # rewrite the baseline after fixing errors
    python .ci/mypy_gate.py --update --allow-new   # ...and accept new ones (say why in review)

Runs .ci/mypy_run.py (mypy on the installed module names) with the interpreter that runs
this script, so run it with the project's virtualenv (`make typecheck`). Each error
becomes a key without line numbers, ``path: [code] message``, so that editing a file does
not move its known errors; the baseline holds the sorted keys, one a line, with
``  # xN`` after a key that occurs N > 1 times. The gate fails when an error is not in
the baseline (or occurs more often than it says), and also when the baseline lists one
that no longer occurs: then `--update` shrinks it, which keeps the count going one way.
Standard library only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
RUNNER = ROOT / ".ci" / "mypy_run.py"
# Plain one-line output whatever the configuration says.
MYPY_FLAGS = [
    "--show-error-codes",
    "--no-pretty",
    "--no-color-output",
    "--no-error-summary",
    "--hide-error-context",
    "--hide-column-numbers",
    "--hide-error-end",
]
HEADER = """\
# mypy errors accepted for now; it may only shrink. One key a line (path: [code] message),
# "  # xN" when a key occurs N times. Written by `python .ci/mypy_gate.py --update`.
"""

_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+)(?::\d+)*: error: (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)
_LINE_REF = re.compile(r"\bline \d+\b")
_COUNT = re.compile(r"^(?P<key>.*?)(?:  # x(?P<count>\d+))?$")


def run_mypy() -> tuple[Counter[str], dict[str, list[str]]]:
    """Current errors: key -> occurrences, and key -> the raw lines (for the report)."""
    proc = subprocess.run(
        [sys.executable, str(RUNNER), *MYPY_FLAGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(
            f"mypy_gate: mypy stopped (exit {proc.returncode}); see above. "
            f"Is mypy installed for {sys.executable}? (make install)"
        )
    counts: Counter[str] = Counter()
    lines: dict[str, list[str]] = {}
    for raw in proc.stdout.splitlines():
        match = _ERROR.match(raw)
        if match is None:
            continue  # notes and anything else that is not an error
        message = _LINE_REF.sub("line N", match["message"].strip())
        key = f"{match['path']}: [{match['code'] or 'misc'}] {message}"
        counts[key] += 1
        lines.setdefault(key, []).append(raw)
    if proc.returncode == 1 and not counts:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("mypy_gate: mypy failed but printed no error this script can read")
    return counts, lines


def read_baseline() -> Counter[str]:
    counts: Counter[str] = Counter()
    if not BASELINE.exists():
        return counts
    for line in BASELINE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _COUNT.match(line)
        assert match is not None  # the pattern matches any line
        counts[match["key"]] += int(match["count"] or 1)
    return counts


def write_baseline(counts: Counter[str]) -> None:
    body = "".join(
        f"{key}  # x{n}\n" if n > 1 else f"{key}\n" for key, n in sorted(counts.items()) if n
    )
    BASELINE.write_text(HEADER + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline")
    parser.add_argument(
        "--allow-new", action="store_true", help="with --update: also add new errors"
    )
    args = parser.parse_args(argv)
    if args.allow_new and not args.update:
        parser.error("--allow-new only goes with --update")

    started = time.monotonic()
    current, raw = run_mypy()
    baseline = read_baseline()
    new = current - baseline
    gone = baseline - current
    took = f"{time.monotonic() - started:.0f}s"

    if args.update:
        if new and not args.allow_new:
            _report_new(new, raw)
            print(
                f"mypy_gate: refusing to add {sum(new.values())} error(s) to the baseline; "
                "fix them, or pass --allow-new as well if they must be accepted",
                file=sys.stderr,
            )
            return 1
        write_baseline(current)
        print(
            f"mypy_gate: baseline now {sum(current.values())} error(s) "
            f"({sum(gone.values())} removed, {sum(new.values())} added) in {took}"
        )
        return 0

    if new:
        _report_new(new, raw)
    if gone:
        print(f"\nmypy_gate: {sum(gone.values())} error(s) in the baseline no longer occur:")
        for key, n in sorted(gone.items()):
            print(f"  {key}" + (f"  (x{n})" if n > 1 else ""))
        print(
            "Well done. Shrink the baseline so that they cannot come back: "
            "python .ci/mypy_gate.py --update"
        )
    if new or gone:
        return 1
    print(f"mypy_gate: OK, {sum(current.values())} known error(s), none new ({took})")
    return 0


def _report_new(new: Counter[str], raw: dict[str, list[str]]) -> None:
    print(f"mypy_gate: {sum(new.values())} new mypy error(s), not in {BASELINE.name}:")
    for key in sorted(new):
        occurrences = raw.get(key, [])
        if new[key] < len(occurrences):
            print(f"  ({new[key]} more than the baseline's {len(occurrences) - new[key]} of:)")
        for line in occurrences:
            print(f"  {line}")
    print("Fix them (a `# type: ignore[code]` only where a library's types are wrong, with why).")


if __name__ == "__main__":
    sys.exit(main())
