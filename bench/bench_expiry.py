"""Tier-3 task expiry at a run's start: N tasks, all past their days, marked expired
with their audit rows in one unit of work (docs/engine.md, Decisions). Printed, never
asserted.

    python bench/bench_expiry.py [--tasks 2000 20000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from revstack.agents.engine import run_agents
from revstack.agents.engine._expiry import expire_tasks  # noqa: TID251 - the unit alone
from revstack.agents.engine._units import in_transaction  # noqa: TID251 - times one unit
from revstack.data import clock
from revstack.data.warehouse import Warehouse, release_all
from tests.agents._workload import seed_accounts
from tests.agents.test_task_expiry import SPEC, START


def _load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[2_000, 20_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    now = START + dt.timedelta(days=SPEC.expiry["call_account"] + 1)
    for n in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp) / "base.duckdb"
            wh = Warehouse(base)
            seed_accounts(wh, n)  # one task per account (the expiry test's caller agent)
            with clock.using(clock.SimulatedClock(START)):
                run_agents(wh, [SPEC], only="caller")
            release_all()
            for i in range(args.repeat):
                path = Path(tmp) / f"copy{i}.duckdb"
                shutil.copy(base, path)
                copy = Warehouse(path)
                t = time.perf_counter()
                k = in_transaction(copy, lambda con, w=now: expire_tasks(con, [SPEC], now=w))
                took = time.perf_counter() - t
                release_all()
                path.unlink()
                print(f"{n:>8,} tasks: {k:,} expired in {took:.3f} s ({_load()})", flush=True)


if __name__ == "__main__":
    main()
