"""Instruction count of one engine step, which a busy machine cannot move (printed by valgrind).

The step of bench_engine.py (half tier 1 applied, half tier 2 queued with leases, one
audit row each) on a fresh warehouse, with DuckDB on one thread; callgrind counts only
between the start and the end of the step (the run's transaction before COMMIT):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \
        .venv/bin/python bench/bench_engine_instructions.py [--proposals 20000]

and read ``Collected : N`` from valgrind's output. Takes about a minute at 20k.
Compare two checkouts by running each one's copy of this script.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import revstack.agents.engine._run as run_module  # noqa: TID251 - counts the step's instructions
from revstack.agents.engine import run_agents
from revstack.data.warehouse import Warehouse, release_all
from tests.agents._workload import SPEC, seed_accounts


def _callgrind(switch: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", switch, str(os.getpid())], check=True, stdout=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=20_000)
    args = parser.parse_args()
    step = run_module._commit

    def counted(con: Any, *rest: Any, **kwargs: Any) -> Any:
        con.execute("SET threads = 1")  # one thread: the count does not depend on scheduling
        _callgrind("on")
        try:
            return step(con, *rest, **kwargs)
        finally:
            _callgrind("off")

    run_module._commit = counted
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        seed_accounts(wh, args.proposals // 2)
        run_agents(wh, [SPEC], only="bumper")
        release_all()


if __name__ == "__main__":
    main()
