"""Time a weekly `revstack run` of all five agents, the way a simulated week runs it.

A company is generated (``--scale``, ``--seed``) and cut back ``--weeks`` weeks
(``Replay``, as `revstack simulate` does); `revstack run --schedule --json` runs every
agent once in its own process (the first run, timed), the replay loads the next week
of CRM changes, and `revstack run --schedule --json` runs again in a new process (the
weekly run, timed): a cron job starts a new process each week, so nothing fitted in
the first run's memory helps the second. Prints per agent seconds and the run's
status, each run's wall time and peak RSS, and the forecast's cache note; progress on
stderr.

The company is generated and cut in a child process too, so this process does not keep
the generator's memory beside the runs. A run's peak RSS is its process tree's, sampled,
or wait4's ``ru_maxrss`` where that is above this process's own peak
(``bench_dedupe_scale.measured``): a child started by fork and exec inherits its
parent's high-water mark (a parent that once peaked at 13 GB sees every child at 13 GB
or more), so below that wait4's figure says nothing of the child.

``--keep DIR`` keeps the cut company before the first run with the replay's side file
(``DIR/start.duckdb``, ``DIR/company.duckdb``) and the warehouse just before the weekly
run (``DIR/weekly.duckdb``). ``--from DIR`` times the weekly run again on a copy of the
latter (what a change to an agent's weekly path is measured with, as long as what the
first run stored is the same); ``--from-start DIR`` runs the first week and the weekly
run again from the cut company, without generating it.

    python bench/bench_weekly_run.py --scale mid --seed 7 --as-of 2026-09-24 --keep var/w
    python bench/bench_weekly_run.py --from var/w
    python bench/bench_weekly_run.py --from-start var/w
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_dedupe_scale import measured  # noqa: E402

from revstack.data.generator import DEFAULT_AS_OF, Replay  # noqa: E402
from revstack.data.warehouse import Warehouse, frame, release_all  # noqa: E402

_REVSTACK = Path(sys.executable).with_name("revstack")


def _say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def _generate_and_cut(
    db: Path, side: Path, scale: str, seed: int, as_of: dt.date, weeks: int
) -> dt.datetime:
    """In a child process: generate the company into ``db``, cut it back, and move the
    replay's side file to ``side``; returns the moment the warehouse stands at."""
    replay = Replay.start(Warehouse(db), scale=scale, seed=seed, as_of=as_of, weeks=weeks)
    release_all()
    shutil.move(replay.source, side)
    replay.close()
    return replay.at


def _run(db: Path, label: str) -> dict:
    """`revstack run --schedule --json` in a child process: its results, wall time, CPU
    and peak RSS (``bench_dedupe_scale.measured``: the child's own, not what it
    inherited from this process)."""
    _say(f"{label}: revstack run --schedule on {db.name}")
    out = db.with_suffix(".run.json")
    run = measured(
        [str(_REVSTACK), "run", "--schedule", "--json", "--db", str(db)], math.inf, stdout=out
    )
    if run["rc"] != 0:
        raise SystemExit(f"{label}: revstack run exited {run['rc']}")
    results = json.loads(out.read_text())
    with Warehouse(db).connect() as con:
        md = frame(
            con,
            "SELECT agent, metadata FROM ops.runs WHERE run_id IN (SELECT unnest($ids))",
            {"ids": [r["run_id"] for r in results if r["run_id"]]},
        )
    release_all()
    return {
        **run,
        "results": results,
        "metadata": {a: json.loads(m or "{}") for a, m in md.iter_rows()},
    }


def _show(label: str, run: dict) -> None:
    print(
        f"{label}: {run['wall']:.1f} s wall, {run['cpu']:.1f} s CPU, "
        f"peak RSS {run['peak_gb']:.2f} GB, load {os.getloadavg()[0]:.1f}"
    )
    for r in run["results"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()) if v)
        print(
            f"  {r['agent']:<16} {r['status']:<9} {r['seconds']:7.1f} s  "
            f"events {r['events']:>7}  {counts or r['message']}"
        )
    fc = run["metadata"].get("forecast", {}).get("agent", {})
    if "cache" in fc:
        c = fc["cache"]
        print(
            f"  forecast cache: {c.get('reused')} reused, {c.get('recomputed')} computed, "
            f"full replay {c.get('full_replay')} ({c.get('why')})"
        )
    ph = run["metadata"].get("pipeline_health", {}).get("agent", {}).get("model", {})
    if ph:
        src = ph.get("source")
        when = ph.get("fitted_at", "")
        why = ph.get("refit_because") or ""
        print(f"  pipeline health risk model: {src} (fitted at {when}) {why}".rstrip())
    for k in ("models", "deal_models"):
        if k in fc:
            print(f"  forecast deal models: {fc[k]}")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="mid", choices=["small", "mid", "large"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF)
    ap.add_argument("--weeks", type=int, default=1, help="weeks cut back before the first run")
    ap.add_argument("--keep", type=Path, help="keep the warehouse before the weekly run here")
    ap.add_argument("--from", dest="from_", type=Path, help="time the weekly run of a --keep")
    ap.add_argument("--from-start", type=Path, help="first and weekly run from a --keep's start")
    args = ap.parse_args()
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    (ROOT / "var").mkdir(exist_ok=True)  # a fresh clone has none
    with tempfile.TemporaryDirectory(prefix="bench-weekly-", dir=ROOT / "var") as tmp:
        db = Path(tmp) / "weekly.duckdb"
        if args.from_:
            shutil.copy(args.from_ / "weekly.duckdb", db)
            print(f"weekly run of {args.from_}")
        else:
            wh = Warehouse(db)
            if args.from_start:
                # The company is whatever the kept start is: --scale and --seed say nothing.
                print(f"first and weekly run from {args.from_start}, as of {args.as_of}")
                scratch = tempfile.TemporaryDirectory(prefix="revstack-replay-")
                side = Path(scratch.name) / "company.duckdb"
                shutil.copy(args.from_start / "company.duckdb", side)
                shutil.copy(args.from_start / "start.duckdb", db)
                at = dt.datetime.combine(args.as_of, dt.time()) - dt.timedelta(weeks=args.weeks)
                replay = Replay(wh, side, at, scratch)
            else:
                print(
                    f"{args.scale} seed {args.seed}, as of {args.as_of}, "
                    f"cut back {args.weeks} weeks"
                )
                clock = time.perf_counter()
                _say(f"generating {args.scale} seed {args.seed} and cutting it back")
                scratch = tempfile.TemporaryDirectory(prefix="revstack-replay-")
                side = Path(scratch.name) / "company.duckdb"
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    at = pool.apply(
                        _generate_and_cut,
                        (db, side, args.scale, args.seed, args.as_of, args.weeks),
                    )
                replay = Replay(wh, side, at, scratch)
                print(f"generate and cut: {time.perf_counter() - clock:.1f} s", flush=True)
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(db, args.keep / "start.duckdb")
                    shutil.copy(replay.source, args.keep / "company.duckdb")
            try:
                _show("first run", _run(db, "first run"))
                for _ in range(args.weeks):
                    clock = time.perf_counter()
                    rows = replay.advance(replay.at + dt.timedelta(weeks=1))
                    release_all()
                    print(
                        f"advance to {replay.at:%Y-%m-%d}: {sum(rows.values()):,} rows, "
                        f"{time.perf_counter() - clock:.1f} s",
                        flush=True,
                    )
                    if replay.at < dt.datetime.combine(args.as_of, dt.time()):
                        _show("intermediate run", _run(db, "intermediate run"))
            finally:
                replay.close()
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(db, args.keep / "weekly.duckdb")
        _show("weekly run", _run(db, "weekly run"))
    print(
        f"load at the end {os.getloadavg()[0]:.1f}; this process's own peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB"
    )


if __name__ == "__main__":
    main()
