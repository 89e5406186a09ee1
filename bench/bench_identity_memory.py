"""Resident memory of one identity resolution, step by step, and inside its clustering.

Resolves one kind of a company's records as the hygiene agent does (its fields and
settings) while a thread samples the process's RSS every 50 ms with the main thread's
innermost line in ``data/identity``. Prints each step's peak, the RSS when clustering
began, and the lines where RSS was highest; ``--out`` writes what
``cluster(..., detail=True)`` returned (record_id, cluster_id, confidence, component,
linkage) as Parquet, to compare two versions' outputs row for row.

``--capture DIR`` also keeps clustering's inputs (the scored pairs, the record ids and
every frame ``score_all`` was asked for and answered); ``--replay DIR`` then runs
``cluster`` alone on them, the scorer's answers given back as they were, so that
clustering can be measured again without the resolution's earlier steps (four minutes
and more on the large company's accounts).

    python bench/bench_identity_memory.py --db COPY.duckdb --kind accounts [--out F.parquet]
        [--capture DIR] [--limit-gb 16] [--cluster-from OLD.py]
    python bench/bench_identity_memory.py --replay DIR [--out F.parquet] [--cluster-from OLD.py]

``--cluster-from`` runs the ``cluster`` of another version's ``_cluster.py`` (``git show
main:data/identity/_cluster.py > OLD.py``) in place of this one's, the rest unchanged.

Read a copy of the company: the file is opened read-only, but keep the original safe.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.crm_hygiene._merge import ACCOUNT_FIELDS, CONTACT_FIELDS  # noqa: E402
from revstack.data.identity import _resolve, resolve  # noqa: E402
from revstack.data.identity._cluster import cluster  # noqa: E402

_SQL = {
    "accounts": "SELECT account_id AS record_id, * EXCLUDE (account_id) FROM crm.accounts",
    "contacts": """
        SELECT c.contact_id AS record_id, c.*,
               concat_ws(' ', c.first_name, c.last_name) AS full_name,
               coalesce(c.email, a.website) AS company_domain
        FROM crm.contacts c LEFT JOIN crm.accounts a USING (account_id)
    """,
}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Sampler(threading.Thread):
    """RSS every ``every`` s, the peak per step and per line of ``data/identity``."""

    def __init__(self, every: float, limit: float) -> None:
        super().__init__(daemon=True)
        self.every, self.limit = every, limit
        self.main = threading.main_thread().ident
        self.step = "start"
        self.start_of: dict[str, tuple[float, int]] = {}
        self.peak: dict[str, int] = defaultdict(int)
        self.lines: dict[str, int] = defaultdict(int)
        self.t0 = time.perf_counter()
        self.running = True

    def mark(self, step: str) -> None:
        self.step = step
        self.start_of[step] = (time.perf_counter() - self.t0, _rss())

    def _where(self) -> str:
        frame = sys._current_frames().get(self.main or 0)
        while frame is not None:
            name = frame.f_code.co_filename
            if "data/identity/" in name or ("cluster" in Path(name).name and "bench_" not in name):
                return f"{Path(name).name}:{frame.f_lineno} {frame.f_code.co_name}"
            frame = frame.f_back
        return "-"

    def run(self) -> None:
        said = 0.0
        while self.running:
            rss = _rss()
            if time.perf_counter() - said > 30:
                said = time.perf_counter()
                at = said - self.t0
                print(f"{at:7.1f} s  {_gb(rss)}  {self.step}  {self._where()}", flush=True)
            self.peak[self.step] = max(self.peak[self.step], rss)
            where = f"{self.step}: {self._where()}"
            self.lines[where] = max(self.lines[where], rss)
            if rss > self.limit:
                print(f"stopped at {rss / 1e9:.2f} GB in {self.step} {self._where()}", flush=True)
                os._exit(3)
            time.sleep(self.every)


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", help="the company (not needed with --replay)")
    ap.add_argument("--kind", choices=sorted(_SQL), default="accounts")
    ap.add_argument("--out")
    ap.add_argument("--capture")
    ap.add_argument("--replay")
    ap.add_argument("--limit-gb", type=float, default=16.0)
    ap.add_argument("--cluster-from")
    args = ap.parse_args()
    run_cluster = cluster
    if args.cluster_from:
        spec = importlib.util.spec_from_file_location("other_cluster", args.cluster_from)
        assert spec is not None and spec.loader is not None
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        run_cluster = other.cluster
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    sampler = Sampler(0.05, args.limit_gb * 1e9)
    sampler.start()
    saved: dict[str, Any] = {}
    clock, cpu = time.perf_counter(), os.times()

    def watched(
        pairs: pl.DataFrame, record_ids: pl.Series, threshold: float, score_all: Any, **kw: Any
    ) -> pl.DataFrame:
        sampler.mark("clustering")
        if args.capture:
            folder = Path(args.capture)
            folder.mkdir(parents=True, exist_ok=True)
            pairs.write_parquet(folder / "pairs.parquet")
            record_ids.to_frame("record_id").write_parquet(folder / "ids.parquet")
            inner = score_all
            calls = [0]

            def score_all(extra: pl.DataFrame) -> pl.DataFrame:
                out = inner(extra)
                extra.write_parquet(folder / f"asked{calls[0]}.parquet")
                out.write_parquet(folder / f"scored{calls[0]}.parquet")
                calls[0] += 1
                return out

        result = run_cluster(pairs, record_ids, threshold, score_all, **kw)
        saved["clusters"] = result
        sampler.mark("after clustering")
        return result

    if args.replay:
        folder = Path(args.replay)
        pairs = pl.read_parquet(folder / "pairs.parquet")
        ids = pl.read_parquet(folder / "ids.parquet")["record_id"]
        calls = [0]

        def replayed(extra: pl.DataFrame) -> pl.DataFrame:
            asked = pl.read_parquet(folder / f"asked{calls[0]}.parquet")
            key = ["left_id", "right_id"]  # asked in no fixed order
            if not extra.sort(key).equals(asked.sort(key)):
                raise SystemExit("clustering asked for other pairs than the captured run")
            out = pl.read_parquet(folder / f"scored{calls[0]}.parquet")
            calls[0] += 1
            return out

        sampler.mark("read")
        watched(pairs, ids, 0.5, replayed, detail=True)
    else:
        if not args.db:
            ap.error("give --db COMPANY, or --replay DIR")
        con = duckdb.connect(args.db, read_only=True)
        try:
            sampler.mark("reading")
            records = con.sql(_SQL[args.kind]).pl()
        finally:
            con.close()
        _resolve.cluster = watched  # type: ignore[assignment]

        def progress(step: str, done: int, total: int) -> None:
            if done < total and step != "clustering":
                sampler.mark(step)

        if args.kind == "accounts":
            resolve(
                records,
                ACCOUNT_FIELDS,
                move_together=(("address", "zip", "phone"),),
                progress=progress,
            )
        else:
            resolve(records, CONTACT_FIELDS, name_type="person", progress=progress)
    sampler.running = False
    sampler.join()
    end = os.times()
    for step, (at, rss) in sampler.start_of.items():
        print(f"{at:7.1f} s  {step:<17} began at {_gb(rss)}, peak {_gb(sampler.peak[step])}")
    base = sampler.start_of["clustering"][1]
    print(
        f"clustering: began at {_gb(base)}, peak {_gb(sampler.peak['clustering'])}, "
        f"+{_gb(sampler.peak['clustering'] - base)}"
    )
    for where, rss in sorted(sampler.lines.items(), key=lambda x: -x[1])[:12]:
        print(f"  {_gb(rss)}  {where}")
    print(
        f"wall {time.perf_counter() - clock:.1f} s, CPU "
        f"{end.user - cpu.user + end.system - cpu.system:.1f} s, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if args.out:
        saved["clusters"].write_parquet(args.out)


if __name__ == "__main__":
    main()
