"""The limit of one machine: N reviewers deciding at once, with and without a scheduled run.

Printed, never asserted. A warehouse of ``--accounts`` accounts run through the workload
agent (tests/agents/_workload.py: "bumper"), so every account has one pending tier-2
card (set its industry); each configuration starts from a copy of that file. Two models
of a team:

- threads: one process, each reviewer a thread, all sharing the process's handle on the
  file (the dashboard: one Streamlit server, a session thread per reviewer);
- processes: each reviewer its own process deciding in a loop (a script, or a CLI kept
  warm); the processes hand revstack's file lock back and forth.

Each reviewer decides its own cards (no two reviewers share one): approves most, rejects
about one in ten with a note, for ``--seconds``, waiting ``--think`` seconds (mean,
exponential) between decisions (0: back to back, the most load a team can put on the
file). With ``--run`` on (the default measures both), a separate process plays the
scheduled run (``revstack run --schedule`` from cron): it adds ``--run-accounts`` new
accounts and runs the workload agent over every account (each run records one tier-1
apply per account and a card per new account), pauses ``--run-gap`` seconds and again.

Per configuration: decisions and decisions/s, decision latency p50/p95/max, decisions that
needed more than one attempt (write conflicts re-run by the engine), decisions that failed
(by error), the wait for the file lock (time in ``Warehouse._open_root`` outside DuckDB's
attach, summed; and per decision the time getting a cursor, which in threads includes
waiting behind another thread's open), and the scheduled runs' durations beside a run
alone. The library is timed through wrappers, never changed. Afterwards every decision
that reported success is checked against ops.proposals and the audit log (exactly one
person's row each, none extra) and the audit chain is verified; a lost or doubled
decision is printed as LOST.

    python bench/bench_concurrency.py [--accounts 40000] [--reviewers 1,5,20,50]
        [--models threads,processes] [--run both|on|off] [--seconds 15] [--think 0]
        [--run-accounts 1000] [--run-gap 1.0] [--seed 7]

The machine's load average is printed with the figures (other work shares it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import polars as pl

import revstack.agents.engine._decide as decide_module  # noqa: TID251 - counts a decision's attempts (the engine's retries) without changing them
import revstack.data.warehouse as warehouse_module
from revstack.agents.engine import add_person, decide, run_agents, verify
from revstack.data.warehouse import Warehouse, registered, release_all, scalar
from tests.agents._workload import SPEC, seed_accounts

_NOTE = "bench: not this industry"
_REJECT_SHARE = 0.1


# -- instruments (wrappers that time the library; its behaviour is unchanged) ---------


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM). Not getrusage's ru_maxrss: a
    spawned child inherits the parent's high-water mark across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Probe:
    """Per thread: a decision's attempts and time getting a cursor; per process: opens of
    the file and the time spent waiting for revstack's lock on it."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        self.opens = 0
        self.flock_wait = 0.0  # seconds in _open_root outside DuckDB's attach
        self.attach = 0.0  # seconds in DuckDB's attach (the open's fixed cost)
        self.conflicts: Counter[str] = Counter()

    def reset(self) -> None:
        self.local.attempts = 0
        self.local.acquire = 0.0

    def install(self) -> None:
        probe = self
        acquire, open_root = Warehouse._acquire, Warehouse._open_root
        attach, work = warehouse_module._attach, decide_module._decide

        def timed_attach(path: Path) -> duckdb.DuckDBPyConnection:
            t = time.perf_counter()
            try:
                return attach(path)
            finally:
                probe.local.last_attach = time.perf_counter() - t

        def timed_open(self: Warehouse) -> Any:
            probe.local.last_attach = 0.0
            t = time.perf_counter()
            handle = open_root(self)
            took, opened = time.perf_counter() - t, probe.local.last_attach
            with probe.lock:
                probe.opens += 1
                probe.flock_wait += took - opened
                probe.attach += opened
            return handle

        def timed_acquire(self: Warehouse) -> duckdb.DuckDBPyConnection:
            t = time.perf_counter()
            try:
                return acquire(self)
            finally:
                probe.local.acquire = getattr(probe.local, "acquire", 0.0) + (
                    time.perf_counter() - t
                )

        def counted(*args: Any, **kwargs: Any) -> Any:
            probe.local.attempts = getattr(probe.local, "attempts", 0) + 1
            try:
                return work(*args, **kwargs)
            except duckdb.Error as exc:
                with probe.lock:
                    probe.conflicts[type(exc).__name__] += 1
                raise

        warehouse_module._attach = timed_attach
        Warehouse._open_root = timed_open  # type: ignore[method-assign]
        Warehouse._acquire = timed_acquire  # type: ignore[method-assign]
        decide_module._decide = counted

    def totals(self) -> dict[str, Any]:
        return {
            "rss_mb": _peak_rss_mb(),
            "opens": self.opens,
            "flock_wait": self.flock_wait,
            "attach": self.attach,
            "conflicts": dict(self.conflicts),
        }


# -- one reviewer ------------------------------------------------------------------


def _review(
    probe: _Probe,
    wh: Warehouse,
    name: str,
    cards: list[str],
    seed: int,
    seconds: float,
    think: float,
) -> dict[str, Any]:
    """Decide ``cards`` in order for ``seconds``; every decision's outcome and timings."""
    rng = random.Random(seed)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    deadline = time.perf_counter() + seconds
    for pid in cards:
        if time.perf_counter() >= deadline:
            break
        approve = rng.random() >= _REJECT_SHARE
        probe.reset()
        t = time.perf_counter()
        try:
            d = decide(wh, pid, approve=approve, by=name, note=None if approve else _NOTE)
        except Exception as exc:
            failed.append(
                {
                    "id": pid,
                    "error": type(exc).__name__,
                    "message": str(exc)[:200],
                    "ms": (time.perf_counter() - t) * 1000,
                }
            )
        else:
            done.append(
                {
                    "id": pid,
                    "by": name,
                    "outcome": d.outcome,
                    "changed": d.changed,
                    "ms": (time.perf_counter() - t) * 1000,
                    "acquire_ms": probe.local.acquire * 1000,
                    "attempts": probe.local.attempts,
                }
            )
        if think:  # a reviewer's pause, not past the end (it would dilute the rate)
            time.sleep(min(rng.expovariate(1 / think), max(0.0, deadline - time.perf_counter())))
    return {"done": done, "failed": failed}


def _reviewer_process(
    path: str,
    name: str,
    cards: list[str],
    seed: int,
    seconds: float,
    think: float,
    ready: Any,
    start: Any,
    out: str,
) -> None:
    """A reviewer in its own process: ready, wait for the start, decide, write results."""
    probe = _Probe()
    probe.install()
    wh = Warehouse(path)
    ready.put(name)
    start.wait()
    result = _review(probe, wh, name, cards, seed, seconds, think)
    release_all()
    result["process"] = probe.totals()
    Path(out).write_text(json.dumps(result))


def _scheduled_runs(
    path: str,
    new_accounts: int,
    gap: float,
    ready: Any,
    start: Any,
    stop: Any,
    out: str,
) -> None:
    """The scheduled run (cron's `revstack run --schedule`): new accounts, the agent, a pause."""
    probe = _Probe()
    probe.install()
    wh = Warehouse(path)
    runs = _run_loop(probe, wh, new_accounts, gap, ready, start, stop.is_set)
    Path(out).write_text(json.dumps(runs))


def _run_loop(
    probe: _Probe,
    wh: Warehouse,
    new_accounts: int,
    gap: float,
    ready: Any,
    start: Any,
    stopped: Callable[[], bool],
    most: int | None = None,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    if ready is not None:
        ready.put("run")
        start.wait()
    while not stopped() and (most is None or len(runs) < most):
        before = probe.flock_wait
        t = time.perf_counter()
        try:
            with wh.connect() as con:
                first = int(scalar(con, "SELECT count(*) FROM crm.accounts"))
                con.execute(
                    "INSERT INTO crm.accounts (account_id, name, employees, source) "
                    "SELECT 'S' || ($first + i), 'New company ' || i, i, 'bench' "
                    "FROM range($n) t(i)",
                    {"first": first, "n": new_accounts},
                )
            [result] = run_agents(wh, [SPEC], only="bumper")
            status, counts = result.status, result.counts
        except Exception as exc:  # a failed run is a figure here, not the end of the bench
            status, counts = f"{type(exc).__name__}: {str(exc)[:120]}", {}
        runs.append(
            {
                "seconds": time.perf_counter() - t,
                "flock_wait": probe.flock_wait - before,
                "status": status,
                "counts": counts,
            }
        )
        release_all()
        if not stopped() and (most is None or len(runs) < most):
            time.sleep(gap)
    release_all()
    return runs


# -- a configuration -----------------------------------------------------------------


def _cards(path: Path) -> list[str]:
    wh = Warehouse(path)
    with wh.connect() as con:
        ids = [
            r[0]
            for r in con.execute(
                "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' ORDER BY 1"
            ).fetchall()
        ]
    release_all()
    return ids


def _configuration(
    base: Path,
    tmp: Path,
    model: str,
    n: int,
    with_run: bool,
    args: argparse.Namespace,
    index: int,
) -> dict[str, Any]:
    path = tmp / f"c{index}.duckdb"
    shutil.copy(base, path)
    cards = _cards(path)
    random.Random(args.seed * 1000 + index).shuffle(cards)
    names = [f"r{i:02d}" for i in range(n)]
    share = {name: cards[i::n] for i, name in enumerate(names)}
    ctx = mp.get_context("spawn")
    ready, start, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    children: list[Any] = []
    run_out = tmp / f"c{index}-run.json"
    if with_run:
        children.append(
            ctx.Process(
                target=_scheduled_runs,
                args=(
                    str(path),
                    args.run_accounts,
                    args.run_gap,
                    ready,
                    start,
                    stop,
                    str(run_out),
                ),
            )
        )
    outs = {name: tmp / f"c{index}-{name}.json" for name in names}
    if model == "processes":
        for i, name in enumerate(names):
            children.append(
                ctx.Process(
                    target=_reviewer_process,
                    args=(
                        str(path),
                        name,
                        share[name],
                        args.seed * 100_000 + index * 100 + i,
                        args.seconds,
                        args.think,
                        ready,
                        start,
                        str(outs[name]),
                    ),
                )
            )
    for c in children:
        c.start()
    for _ in children:  # every process imported and ready: start them together
        ready.get(timeout=600)
    probe = _PROBE
    before = probe.totals()
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    start.set()
    if model == "threads":
        wh = Warehouse(path)

        def one(i: int, name: str) -> None:
            results[name] = _review(
                probe,
                wh,
                name,
                share[name],
                args.seed * 100_000 + index * 100 + i,
                args.seconds,
                args.think,
            )

        threads = [threading.Thread(target=one, args=(i, name)) for i, name in enumerate(names)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    else:
        for c in children[1 if with_run else 0 :]:
            c.join()
    elapsed = time.perf_counter() - t0
    stop.set()
    for c in children:
        c.join()
    release_all()
    load_after = os.getloadavg()[0]
    after = probe.totals()
    process_totals: list[dict[str, Any]] = []
    if model == "processes":
        for name in names:
            data = json.loads(outs[name].read_text())
            process_totals.append(data.pop("process"))
            results[name] = data
    else:
        process_totals.append(
            {
                "opens": after["opens"] - before["opens"],
                "flock_wait": after["flock_wait"] - before["flock_wait"],
                "attach": after["attach"] - before["attach"],
                "rss_mb": after["rss_mb"],
                "conflicts": {
                    k: v - before["conflicts"].get(k, 0) for k, v in after["conflicts"].items()
                },
            }
        )
    runs = json.loads(run_out.read_text()) if with_run else []
    check = _check(path, results)
    path.unlink()
    return {
        "model": model,
        "n": n,
        "with_run": with_run,
        "elapsed": elapsed,
        "results": results,
        "process": process_totals,
        "runs": runs,
        "check": check,
        "load": (load_before, load_after),
    }


_PERSON_ROWS = """
SELECT proposal_id, count(*) AS n FROM ops.audit_log
WHERE actor_kind = 'person' AND proposal_id IS NOT NULL GROUP BY proposal_id
"""


def _check(path: Path, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every reported decision in ops.proposals and in the log exactly once; nothing extra."""
    done = [d for r in results.values() for d in r["done"]]
    failed = [f["id"] for r in results.values() for f in r["failed"]]
    ok = pl.DataFrame(
        {
            "proposal_id": [d["id"] for d in done],
            "by": [d["by"] for d in done],
            "outcome": [d["outcome"] for d in done],
        },
        schema={"proposal_id": pl.String, "by": pl.String, "outcome": pl.String},
    )
    bad = pl.DataFrame({"proposal_id": failed}, schema={"proposal_id": pl.String})
    wh = Warehouse(path)
    with wh.connect() as con, registered(con, "ok", ok), registered(con, "bad", bad):
        wrong_row = int(
            scalar(
                con,
                "SELECT count(*) FROM ok LEFT JOIN ops.proposals p USING (proposal_id) "
                "WHERE p.status IS DISTINCT FROM ok.outcome OR p.decided_by IS DISTINCT FROM ok.by",
            )
        )
        log = f"({_PERSON_ROWS})"
        missing = int(
            scalar(
                con,
                f"SELECT count(*) FROM ok LEFT JOIN {log} a USING (proposal_id) WHERE a.n IS NULL",
            )
        )
        doubled = int(
            scalar(
                con,
                f"SELECT count(*) FROM ok JOIN {log} a USING (proposal_id) WHERE a.n > 1",
            )
        )
        extra = int(scalar(con, f"SELECT count(*) FROM {log} a ANTI JOIN ok USING (proposal_id)"))
        decided_anyway = int(
            scalar(
                con,
                "SELECT count(*) FROM bad JOIN ops.proposals p USING (proposal_id) "
                "WHERE p.status <> 'pending'",
            )
        )
        chain = verify(con)
    release_all()
    return {
        "reported": len(done),
        "not_changed": sum(1 for d in done if not d["changed"]),
        "wrong_row": wrong_row,
        "missing_from_log": missing,
        "doubled_in_log": doubled,
        "extra_in_log": extra,
        "failed_but_decided": decided_anyway,
        "chain_ok": chain.ok,
        "chain_rows": chain.rows,
        "chain_problem": chain.problem,
    }


# -- the whole bench -------------------------------------------------------------------

_PROBE = _Probe()


def _build(base: Path, accounts: int, reviewers: int) -> None:
    wh = Warehouse(base)
    seed_accounts(wh, accounts)
    add_person(wh, "ana", "admin", by="ana")
    for i in range(reviewers):
        add_person(wh, f"r{i:02d}", "reviewer", by="ana")
    run_agents(wh, [SPEC], only="bumper")
    release_all()


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def _report(cfg: dict[str, Any], alone: list[float]) -> str:
    done = [d for r in cfg["results"].values() for d in r["done"]]
    failed = [f for r in cfg["results"].values() for f in r["failed"]]
    ms = [d["ms"] for d in done] or [0.0]
    acq = [d["acquire_ms"] for d in done] or [0.0]
    retried = sum(1 for d in done if d["attempts"] > 1)
    extra = sum(d["attempts"] - 1 for d in done)
    errors = Counter(f["error"] for f in failed)
    flock = sum(p["flock_wait"] for p in cfg["process"])
    opens = sum(p["opens"] for p in cfg["process"])
    conflicts: Counter[str] = Counter()
    for p in cfg["process"]:
        conflicts.update(p["conflicts"])
    per_reviewer = sorted(len(r["done"]) for r in cfg["results"].values())
    rss = sorted(p["rss_mb"] for p in cfg["process"])
    memory = (
        f"peak RSS per reviewer process median {statistics.median(rss):.0f} MB, "
        f"{sum(rss) / 1024:.1f} GB for the {len(rss)}"
        if cfg["model"] == "processes"
        else f"peak RSS of the one process {rss[0]:.0f} MB (the whole bench so far)"
    )
    lines = [
        f"{cfg['model']:9s} N={cfg['n']:<2d} run={'on ' if cfg['with_run'] else 'off'} "
        f"{len(done):5d} decisions in {cfg['elapsed']:.1f}s = {len(done) / cfg['elapsed']:6.1f}/s; "
        f"latency ms p50 {_q(ms, 0.5):.0f} p95 {_q(ms, 0.95):.0f} max {max(ms):.0f}; "
        f"load {cfg['load'][0]:.1f}->{cfg['load'][1]:.1f}",
        f"    retried {retried} ({extra} extra attempts; conflicts {dict(conflicts)}); "
        f"failed {len(failed)} {dict(errors)}; per reviewer min {per_reviewer[0]} "
        f"median {statistics.median(per_reviewer):.0f} max {per_reviewer[-1]}",
        f"    file lock: {opens} opens, {flock:.1f}s waiting for revstack's lock in total; "
        f"getting a cursor per decision p50 {_q(acq, 0.5):.0f} p95 {_q(acq, 0.95):.0f} "
        f"max {max(acq):.0f} ms; {memory}",
    ]
    if failed:
        lines.append(f"    first failure: {failed[0]['error']}: {failed[0]['message']}")
    if cfg["with_run"]:
        runs = cfg["runs"]
        secs = [r["seconds"] for r in runs]
        bad = [r["status"] for r in runs if r["status"] != "succeeded"]
        lines.append(
            f"    scheduled runs: {len(runs)}"
            + (
                f", median {statistics.median(secs):.2f}s max {max(secs):.2f}s "
                f"(alone: median {statistics.median(alone):.2f}s), waiting for the lock "
                f"{sum(r['flock_wait'] for r in runs):.1f}s in total, max "
                f"{max(r['flock_wait'] for r in runs):.1f}s in one run"
                if runs
                else ""
            )
            + (f"; NOT succeeded: {bad}" if bad else "")
        )
    c = cfg["check"]
    lost = (
        c["wrong_row"]
        or c["missing_from_log"]
        or c["doubled_in_log"]
        or c["extra_in_log"]
        or not c["chain_ok"]
    )
    lines.append(
        ("    !!! LOST OR DOUBLED DECISIONS !!! " if lost else "    check: ")
        + f"{c['reported']} reported decisions; wrong in ops.proposals {c['wrong_row']}, "
        f"missing from the log {c['missing_from_log']}, twice in the log {c['doubled_in_log']}, "
        f"in the log but not reported {c['extra_in_log']}, reported failed but decided "
        f"{c['failed_but_decided']}, unchanged {c['not_changed']}; audit chain "
        + ("verifies" if c["chain_ok"] else f"BROKEN at {c['chain_problem']}")
        + f" ({c['chain_rows']:,} rows)"
    )
    return "\n".join(lines)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=40_000)
    parser.add_argument("--reviewers", default="1,5,20,50")
    parser.add_argument("--models", default="threads,processes")
    parser.add_argument("--run", choices=("both", "on", "off"), default="both")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--think", type=float, default=0.0)
    parser.add_argument("--run-accounts", type=int, default=1000)
    parser.add_argument("--run-gap", type=float, default=1.0)
    parser.add_argument("--alone", type=int, default=3, help="scheduled runs timed alone")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.reviewers.split(",")]
    models = args.models.split(",")
    runs = {"both": [False, True], "on": [True], "off": [False]}[args.run]
    _PROBE.install()
    print(
        f"bench_concurrency {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC: "
        f"{args.accounts:,} accounts, one pending card each; reviewers {sizes}, models "
        f"{models}, {args.seconds:.0f}s each, think {args.think}s, seed {args.seed}; "
        f"scheduled run: {args.run_accounts} new accounts, gap {args.run_gap}s ({_load()})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name:
        tmp = Path(name)
        base = tmp / "base.duckdb"
        t = time.perf_counter()
        _build(base, args.accounts, max(sizes))
        print(f"built the warehouse in {time.perf_counter() - t:.1f}s", flush=True)
        alone: list[float] = []
        if True in runs:
            path = tmp / "alone.duckdb"
            shutil.copy(base, path)
            solo = _run_loop(
                _PROBE,
                Warehouse(path),
                args.run_accounts,
                0.0,
                None,
                None,
                lambda: False,
                args.alone,
            )
            alone = [r["seconds"] for r in solo]
            path.unlink()
            print(
                f"scheduled run alone: {', '.join(f'{s:.2f}' for s in alone)} s "
                f"({solo[-1]['counts']}; {_load()})",
                flush=True,
            )
        configs = [(m, n, w) for m in models for n in sizes for w in runs]
        for i, (model, n, with_run) in enumerate(configs):
            print(
                f"[{i + 1}/{len(configs)}] {model} N={n} run={'on' if with_run else 'off'} ...",
                file=sys.stderr,
                flush=True,
            )
            cfg = _configuration(base, tmp, model, n, with_run, args, i)
            print(_report(cfg, alone), flush=True)
    print(f"done ({_load()})")


if __name__ == "__main__":
    main()
