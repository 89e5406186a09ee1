"""Time the forecast agent's full run against its incremental run one week later.

The company at ``--db`` (a generated warehouse) is cut to its as-of minus a week
(tests/agents/_weeks.py), the forecast agent runs there with no cache (a full replay,
which stores the cache), the cache (with the stored as-of rows and open snapshots) is
carried into the company as of the full week, and the agent runs again (incremental).
Prints both wall times and their ratio, how many snapshots were reused, and where the
incremental run's time went. ``--check`` also runs a full replay on the later week and
says whether the live forecast, its drivers, the reliability, the backtest's agent rows
and the stored open snapshots are the same to the last digit (the baselines are
recomputed by both, and polars' parallel sums vary in the last bit from run to run).

    python bench/bench_forecast_incremental.py --db var/small3.duckdb --check
    python bench/bench_forecast_incremental.py --db var/mid7.duckdb
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.engine import run_agents  # noqa: E402
from revstack.agents.forecast import default_start  # noqa: E402
from revstack.agents.registry import specs  # noqa: E402
from revstack.data.inventory import data_as_of  # noqa: E402
from revstack.data.warehouse import Warehouse, frame, release_all  # noqa: E402
from tests.agents._weeks import carry_cache, cut  # noqa: E402

_FIRST = "SELECT min(changed_at) FROM crm.opportunity_history"
_PARTS = ("prepare", "fit", "_with_scores", "draw_snapshot", "fingerprint", "read", "to_rows")


def _run(wh: Warehouse, profile: bool = False) -> tuple[float, dict]:
    spec = [s for s in specs() if s.name == "forecast"]
    prof = cProfile.Profile() if profile else None
    clock = time.perf_counter()
    if prof:
        prof.enable()
    [result] = run_agents(wh, spec, only="forecast")
    if prof:
        prof.disable()
    seconds = time.perf_counter() - clock
    assert result.status == "succeeded", result.message
    with wh.connect() as con:
        md = frame(con, "SELECT metadata FROM ops.runs WHERE run_id = $r", {"r": result.run_id})
    release_all()
    if prof:
        stats = pstats.Stats(prof)
        rows = stats.stats.items()  # type: ignore[attr-defined]  # typeshed omits Stats.stats
        for (file, _, name), row in sorted(rows, key=lambda kv: -kv[1][3]):
            if name in _PARTS and "forecast" in file:
                print(f"    {name:<14} {row[3]:7.1f} s  ({Path(file).name})")
    return seconds, json.loads(md["metadata"][0])["agent"]


def _outputs(wh: Warehouse) -> dict:
    out = {}
    with wh.connect() as con:
        run = frame(con, "SELECT max(run_id) AS r FROM ops.forecasts")["r"][0]
        for t, where in (
            ("forecasts", ""),
            ("forecast_drivers", ""),
            ("forecast_reliability", ""),
            ("forecast_backtest", "AND method = 'agent'"),
            ("forecast_cache_open", ""),
        ):
            out[t] = frame(
                con,
                f"SELECT * EXCLUDE (run_id) FROM ops.{t} WHERE run_id = $r {where} ORDER BY ALL",
                {"r": run},
            )
    release_all()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--check", action="store_true", help="also a full replay of the later week")
    args = ap.parse_args()
    src = Path(args.db)
    src_wh = Warehouse(src)
    with src_wh.connect() as con:
        t1 = data_as_of(con)
        first = frame(con, _FIRST)[0, 0].date()
    release_all()
    assert t1 is not None
    # Both weeks must start the backtest in the same month (else it is a full replay).
    while default_start(first, t1) != default_start(first, t1 - dt.timedelta(days=7)):
        t1 -= dt.timedelta(days=7)
    t0 = t1 - dt.timedelta(days=7)
    load = os.getloadavg()[0]
    print(f"{src.name}: weeks to {t0} and {t1}; {dt.date.today()}, load {load:.1f}", flush=True)
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        before = cut(src, Path(tmp) / "before.duckdb", t0)
        full, _ = _run(before)
        print(f"  full run (week to {t0}): {full:.1f} s", flush=True)
        after = cut(src, Path(tmp) / "after.duckdb", t1)
        carry_cache(before, after)
        before.path.unlink()
        incr, md = _run(after, profile=True)
        c = md["cache"]
        print(
            f"  incremental run (one more week): {incr:.1f} s; {c['reused']} snapshots "
            f"reused, {c['recomputed']} computed; full replay: {c['full_replay']} ({c['why']})"
        )
        print(f"  ratio full / incremental: {full / incr:.1f}x", flush=True)
        if args.check:
            again = cut(src, Path(tmp) / "again.duckdb", t1)
            seconds, _ = _run(again)
            a, b = _outputs(after), _outputs(again)
            same = all(a[t].equals(b[t]) for t in a)
            print(f"  full replay of the later week: {seconds:.1f} s; same forecast: {same}")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
