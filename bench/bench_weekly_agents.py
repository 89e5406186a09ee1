"""Time the weekly run of single agents on mid, without the forecast's first run.

A weekly `revstack run` (bench/bench_weekly_run.py) needs a first run of all five agents,
and the forecast's first run is a full replay (about 1,000 s on mid under load). This
bench makes the weekly state the other agents see without it: ``--from-start DIR`` (a
``--keep`` directory of bench_weekly_run.py: the cut company and the replay's side file)
runs hygiene (with a schedule event), outbound, pipeline health and deal prep once, each
`revstack run --agent` in its own process, loads the next week's CRM changes and keeps
the file as ``--keep FILE``. ``--weekly FILE`` then times, on a copy, the first look
after the import (change detection, as `revstack run` starts) and the weekly run of each
of ``--agents`` in a new process (`revstack run --agent NAME --json`): the agent's
seconds (reading, computing, the engine's commit), the process's wall time, CPU time
(start included; steadier than wall time when others share the machine) and peak RSS
(the child's own, sampled: wait4's figure is at least the bench's own high-water mark).

    python bench/bench_weekly_agents.py --from-start var/w --keep var/weekly.duckdb
    python bench/bench_weekly_agents.py --weekly var/weekly.duckdb
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_dedupe_scale import measured  # noqa: E402

from revstack.agents.engine import detect_changes, record_schedule  # noqa: E402
from revstack.data.clock import now_utc  # noqa: E402
from revstack.data.generator import DEFAULT_AS_OF, Replay  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402

_REVSTACK = Path(sys.executable).with_name("revstack")
FIRST = ("crm_hygiene", "outbound", "pipeline_health", "deal_prep")


def _agent(db: Path, agent: str, *extra: str) -> dict:
    """`revstack run --agent` in a child process: its result, wall time, CPU (start
    included; steadier than wall on a shared machine) and its own peak RSS
    (``bench_dedupe_scale.measured``: not the high-water mark it inherits from here)."""
    out = db.with_suffix(f".{agent}.json")
    run = measured(
        [str(_REVSTACK), "run", "--agent", agent, "--json", "--db", str(db), *extra],
        math.inf,
        stdout=out,
    )
    if run["rc"] != 0:
        raise SystemExit(f"revstack run --agent {agent} failed")
    [result] = json.loads(out.read_text())
    out.unlink()
    return {**result, "wall": run["wall"], "peak_gb": run["peak_gb"], "cpu": run["cpu"]}


def _first_look(db: Path) -> dict[str, float]:
    """What `revstack run --schedule` does before any agent, timed: the schedule event and
    change detection in its transaction (the identity rows of new records, 0.2-0.4 s on
    mid, are left out: their function is the engine's own)."""
    wh = Warehouse(db)
    clock = time.perf_counter()
    record_schedule(wh)
    seconds: dict[str, float] = {"schedule": time.perf_counter() - clock}
    clock = time.perf_counter()
    with wh.transaction() as con:
        seconds["events"] = detect_changes(con, now=now_utc())
        seconds["change detection"] = time.perf_counter() - clock
    seconds["with commit"] = time.perf_counter() - clock
    release_all()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-start", type=Path, help="a bench_weekly_run.py --keep directory")
    ap.add_argument("--keep", type=Path, help="where --from-start keeps the weekly state")
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF)
    ap.add_argument("--weekly", type=Path, help="time the weekly runs on a copy of this file")
    ap.add_argument("--agents", default="crm_hygiene,outbound,deal_prep")
    args = ap.parse_args()
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    if args.from_start:
        if not args.keep:
            raise SystemExit("--from-start needs --keep FILE")
        scratch = tempfile.TemporaryDirectory(prefix="replay-", dir=args.keep.parent)
        side = Path(scratch.name) / "company.duckdb"
        shutil.copy(args.from_start / "company.duckdb", side)
        db = args.keep
        shutil.copy(args.from_start / "start.duckdb", db)
        for agent in FIRST:
            r = _agent(db, agent, *(["--schedule"] if agent == FIRST[0] else []))
            print(f"first run {agent:<16} {r['seconds']:7.1f} s", flush=True)
        at = dt.datetime.combine(args.as_of, dt.time()) - dt.timedelta(weeks=1)
        replay = Replay(Warehouse(db), side, at, scratch)
        rows = replay.advance(at + dt.timedelta(weeks=1))
        replay.close()
        release_all()
        print(f"advance to {at + dt.timedelta(weeks=1):%Y-%m-%d}: {sum(rows.values()):,} rows")
    weekly = args.weekly or args.keep
    if weekly is None:
        raise SystemExit("--weekly FILE or --from-start DIR --keep FILE")
    (ROOT / "var").mkdir(exist_ok=True)  # a fresh clone has none
    with tempfile.TemporaryDirectory(prefix="bench-agents-", dir=ROOT / "var") as tmp:
        db = Path(tmp) / "weekly.duckdb"
        shutil.copy(weekly, db)
        look = _first_look(db)
        events = int(look.pop("events"))
        times = ", ".join(f"{k} {v:.2f} s" for k, v in look.items())
        print(f"first look: {events:,} events; {times}", flush=True)
        for agent in args.agents.split(","):
            r = _agent(db, agent)
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()) if v)
            print(
                f"  {agent:<16} {r['seconds']:7.1f} s agent, {r['wall']:6.1f} s wall, "
                f"{r['cpu']:6.1f} s CPU, peak RSS {r['peak_gb']:.2f} GB  {counts}",
                flush=True,
            )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
