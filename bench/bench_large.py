"""The large company end to end, each step in its own process under a memory watchdog.

Generates `revstack generate --scale large --seed 99` (or reuses a kept one with
``--from DIR``), then runs, on a fresh copy of the generated file, ``revstack audit`` and
``revstack run --agent NAME`` for each of the five agents, one process at a time. A
watchdog samples the resident memory of the step's whole process tree every 0.5 s,
prints progress every ``--every`` seconds, and kills the tree when it passes
``--limit-gb`` (default 16). Each step's wall time, CPU (user+sys of the tree, from
wait4) and peak RSS are printed; a killed step prints "stopped at X GB after Y s".

The agents run in dependency order on one copy, as `revstack run` orders them
(crm_hygiene; outbound and pipeline_health, which depend on it; deal_prep and
forecast, which depend on both): each sees what the ones before it wrote, as in a
company's first `revstack run`. A step that was stopped wrote nothing (an agent's
writes are one transaction), and the steps after it run on without its output.
``--isolated`` runs each agent on its own fresh copy instead.

    python bench/bench_large.py --keep var/large            # generate, keep, run
    python bench/bench_large.py --from var/large [--steps audit,crm_hygiene]

The generated file is ``DIR/large.duckdb``; copies go to ``DIR/work.duckdb``. Keep DIR
outside the repository: the large file is several GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_REVSTACK = Path(sys.executable).with_name("revstack")
AGENTS = ["crm_hygiene", "outbound", "pipeline_health", "deal_prep", "forecast"]
DEPENDS = {
    "crm_hygiene": [],
    "outbound": ["crm_hygiene"],
    "pipeline_health": ["crm_hygiene"],
    "deal_prep": ["crm_hygiene", "pipeline_health"],
    "forecast": ["crm_hygiene", "pipeline_health"],
}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _tree(root: int) -> list[int]:
    """``root`` and every process below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the name in parentheses may hold spaces; the parent follows the last ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE
        except OSError:
            continue
    return total


def run_step(label: str, argv: list[str], limit: int, every: float) -> dict:
    """Run ``argv`` in a new process group under the watchdog; its figures."""
    _say(f"{label}: {' '.join(argv[1:])}  (load {_load()}, limit {limit / 1e9:.0f} GB)")
    env = {**os.environ, "REVSTACK_PROGRESS": "1"}
    clock = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    peak, killed, last = 0, None, clock
    done = threading.Event()
    stopped: list[float] = []

    def watch() -> None:
        nonlocal peak, killed, last
        while not done.wait(0.5):
            rss = _rss(_tree(proc.pid))
            peak = max(peak, rss)
            now = time.perf_counter()
            if rss > limit and killed is None:
                killed = rss
                stopped.append(now - clock)
                os.killpg(proc.pid, signal.SIGKILL)
                return
            if now - last >= every:
                last = now
                _say(
                    f"  {label}: {now - clock:6.0f} s, RSS {rss / 1e9:5.2f} GB "
                    f"(peak {peak / 1e9:.2f}), load {_load()}"
                )

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - clock
    done.set()
    watcher.join()
    # wait4's usage covers the child and the descendants it waited for; its maxrss is
    # the largest single process, the watchdog's peak the whole tree's sum
    result = {
        "label": label,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_gb": max(peak, usage.ru_maxrss * 1024) / 1e9,
        "code": os.waitstatus_to_exitcode(status),
        "stopped": None if killed is None else (killed / 1e9, stopped[0]),
        "load": _load(),
    }
    _say(_line(result))
    return result


def _line(r: dict) -> str:
    head = f"{r['label']:<16} {r['wall']:7.1f} s wall {r['cpu']:7.1f} s CPU  peak {r['peak_gb']:5.2f} GB"
    if r["stopped"]:
        gb, after = r["stopped"]
        return f"{head}  stopped at {gb:.1f} GB after {after:.0f} s  (load {r['load']})"
    status = "ok" if r["code"] == 0 else f"exit {r['code']}"
    return f"{head}  {status}  (load {r['load']})"


def _copy(src: Path, dst: Path) -> None:
    for suffix in ("", ".wal"):
        target = Path(f"{dst}{suffix}")
        if target.exists():
            target.unlink()
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", target)
    tmp = Path(f"{dst}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="generate into DIR/large.duckdb and keep it")
    ap.add_argument("--from", dest="from_", type=Path, help="reuse DIR/large.duckdb")
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--scale", default="large", choices=["small", "mid", "large"])
    ap.add_argument("--limit-gb", type=float, default=16.0)
    ap.add_argument("--every", type=float, default=15.0, help="seconds between progress lines")
    ap.add_argument(
        "--steps",
        default=",".join(["audit", *AGENTS]),
        help="comma-separated: audit and agent names, run in this order",
    )
    ap.add_argument("--isolated", action="store_true", help="each agent on its own copy")
    args = ap.parse_args()
    if (args.keep is None) == (args.from_ is None):
        ap.error("give one of --keep DIR (generate) or --from DIR (reuse)")
    folder: Path = args.keep or args.from_
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{args.scale}.duckdb"
    work = folder / "work.duckdb"
    limit = int(args.limit_gb * 1e9)
    steps = [s for s in args.steps.split(",") if s]
    unknown = set(steps) - {"audit", *AGENTS}
    if unknown:
        ap.error(f"unknown steps: {sorted(unknown)}")
    order = [a for a in AGENTS if a in steps]
    print(
        f"bench_large: {args.scale} seed {args.seed}, limit {args.limit_gb:g} GB, "
        f"{os.cpu_count()} cores, load {_load()}"
    )
    print(
        "agents in dependency order on "
        + ("a fresh copy each" if args.isolated else "one fresh copy, each after the ones before")
        + ": "
        + "; ".join(f"{a} (after {', '.join(DEPENDS[a]) or 'nothing'})" for a in order)
    )
    results = []
    if args.keep is not None:
        for suffix in ("", ".wal"):
            Path(f"{source}{suffix}").unlink(missing_ok=True)
        argv = [str(_REVSTACK), "generate", "--scale", args.scale, "--seed", str(args.seed)]
        results.append(run_step("generate", [*argv, "--db", str(source)], limit, args.every))
        if results[-1]["code"] != 0:
            raise SystemExit("generation failed")
    if not source.exists():
        raise SystemExit(f"{source}: no generated company")
    _copy(source, work)
    for step in steps:
        if step == "audit":
            argv = [str(_REVSTACK), "audit", "--db", str(work)]
        else:
            if args.isolated:
                _copy(source, work)
            argv = [str(_REVSTACK), "run", "--agent", step, "--db", str(work)]
        results.append(run_step(step, argv, limit, args.every))
    print(f"\nsummary (limit {args.limit_gb:g} GB; peak = the process tree's RSS, sampled 0.5 s)")
    for r in results:
        print("  " + _line(r))
    ran = [r for r in results if r["label"] in AGENTS]
    if ran:
        print(f"  agents together: {sum(r['wall'] for r in ran):.1f} s wall")


if __name__ == "__main__":
    main()
