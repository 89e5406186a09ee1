"""Every agent against truth on several generated companies, pooled over seeds.

For each seed: `revstack generate --scale small`, `revstack run` (all five agents, as
`make demo`'s first run does) and `revstack metrics --agent NAME --json` for each agent,
in child processes on a fresh warehouse file. Then one row per measure, pooled over the
seeds, with a 95% interval: Wilson on the pooled counts where a measure is a share of
counted things (pairs, proposals, deals, periods), a bootstrap over seeds (resampling
whole companies, seeded) where it is a ratio of errors (forecast MAPE ratios) or a share
the report gives without its counts (pipeline health's precision and recall). The
held-out seeds are also shown on their own. Peak RSS is the largest child's.

    python bench/bench_agents_pooled.py [--seeds 0 1 2 3 7] [--held-out 11 12] [--scale small]
        [--revstack "COMMAND"]   # another checkout's CLI, to compare before and after
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.engine import wilson  # noqa: E402

AGENTS = ["crm_hygiene", "pipeline_health", "deal_prep", "outbound", "forecast"]
REVSTACK = [sys.executable, "-m", "revstack.cli"]


def _cli(*args: str) -> str:
    out = subprocess.run([*REVSTACK, *args], check=True, capture_output=True, text=True)
    return out.stdout


def _company(scale: str, seed: int, folder: Path) -> dict[str, Any]:
    """Generate, run every agent, and read each agent's measures (JSON)."""
    db = str(folder / f"{scale}-{seed}.duckdb")
    _cli("generate", "--db", db, "--scale", scale, "--seed", str(seed))
    t = time.perf_counter()
    _cli("run", "--db", db)
    seconds = time.perf_counter() - t
    measures = {
        a: json.loads(_cli("metrics", "--db", db, "--agent", a, "--json"))["measures"]
        for a in AGENTS
    }
    return {"seed": seed, "run_seconds": seconds, "m": measures}


def _counts(c: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """(successes, trials) per counted measure, and (value, 1) per reported share."""
    m = c["m"]
    out: dict[str, tuple[float, float]] = {}
    truth = m["crm_hygiene"]["truth"]
    for kind in ("accounts", "contacts"):
        d = truth["duplicates"][kind]
        out[f"hygiene {kind} duplicate pairs: precision"] = (
            d["correct_pairs"],
            d["predicted_pairs"],
        )
        out[f"hygiene {kind} duplicate pairs: recall"] = (d["correct_pairs"], d["true_pairs"])
    for p in truth["duplicates"]["merge_proposals"]:
        out[f"hygiene {p['kind']} merge proposals right"] = (p["correct"], p["proposals"])
    enrich: dict[str, list[float]] = {}
    for e in truth["enrichment"]:
        k = f"hygiene {e['action_type']} right"
        got = enrich.setdefault(k, [0.0, 0.0])
        got[0] += e["correct"]
        got[1] += e["proposals"]
    out.update({k: (v[0], v[1]) for k, v in enrich.items()})
    for cls in ("phantom_deal", "stage_violation", "wrong_firmographics"):
        d = truth["defects"].get(cls)
        if not d:
            continue
        out[f"hygiene {cls}: recall"] = (d["found"], d["injected"])
        if d.get("proposals"):
            out[f"hygiene {cls}: precision"] = (
                round(d["precision"] * d["proposals"]),
                d["proposals"],
            )
    ph = m["pipeline_health"]
    if ph and ph.get("available"):
        model = ph["side_by_side_live"]["model"]
        out["pipeline health at-risk model: precision (share)"] = (model["precision"], 1)
        out["pipeline health at-risk model: recall (share)"] = (model["recall"], 1)
        out["pipeline health at-risk model: precision@5 per manager-week (share)"] = (
            model["precision_at_k"],
            1,
        )
    dp = m["deal_prep"]
    out["deal prep meetings briefed"] = (
        dp["coverage"]["briefed"],
        dp["coverage"]["upcoming_meetings"],
    )
    out["deal prep citations matching the record"] = (
        dp["citations"]["matched"],
        dp["citations"]["cites"],
    )
    ob = m["outbound"]
    drafts, blocked = ob["drafts"]["drafts"], ob["blocked"]["any"]
    out["outbound candidates blocked by a guardrail"] = (blocked, drafts + blocked)
    for r in m["forecast"]["backtest_company"]:
        if r["period_kind"] != "quarter" or r["offset"] not in (0, "all"):
            continue
        when = "day 1" if r["offset"] == 0 else "all submission days"
        rep = r["baselines"].get("rep_commit") or {}
        if rep.get("mape"):
            out[f"forecast quarters, {when}: P50 MAPE / rep commit MAPE (ratio)"] = (
                r["agent"]["mape"],
                rep["mape"],
            )
        rng_ = r["range"]
        out[f"forecast quarters, {when}: P10-P90 coverage"] = (
            round(rng_["coverage"] * rng_["n"]),
            rng_["n"],
        )
    return out


def _pooled(rows: list[dict[str, tuple[float, float]]], key: str, draws: int) -> str:
    have = [r[key] for r in rows if key in r]
    if not have:
        return ""
    num = np.array([h[0] for h in have], dtype=float)
    den = np.array([h[1] for h in have], dtype=float)
    rng = np.random.default_rng(0)
    if "(ratio)" in key or "(share)" in key:
        value = num.sum() / den.sum() if "(ratio)" in key else float(num.mean())
        boot = []
        for _ in range(draws):
            i = rng.integers(0, len(have), len(have))
            boot.append(num[i].sum() / den[i].sum() if "(ratio)" in key else num[i].mean())
        lo, hi = np.quantile(boot, [0.025, 0.975])
        fmt = "{:.2f}×" if "(ratio)" in key else "{:.1%}"
        return (
            f"{fmt.format(value)} [{fmt.format(lo)}–{fmt.format(hi)}] "
            f"(bootstrap over {len(have)} seeds)"
        )
    s, n = int(num.sum()), int(den.sum())
    if n == 0:
        return "no cases"
    lo, hi = wilson(s, n) or (0.0, 1.0)
    return f"{s / n:.1%} of {n:,} [{lo:.1%}–{hi:.1%}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 7])
    ap.add_argument("--held-out", type=int, nargs="*", default=[11, 12])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--revstack", help="the command that runs revstack (default: this one)")
    args = ap.parse_args()
    if args.revstack:
        REVSTACK[:] = shlex.split(args.revstack)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    companies = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [*args.seeds, *args.held_out]:
            companies.append(_company(args.scale, seed, Path(tmp)))
            print(
                f"seed {seed}: agents ran in {companies[-1]['run_seconds']:.0f} s",
                file=sys.stderr,
            )
    rows = [_counts(c) for c in companies]
    tuned = [r for c, r in zip(companies, rows, strict=True) if c["seed"] in args.seeds]
    held = [r for c, r in zip(companies, rows, strict=True) if c["seed"] in args.held_out]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    seeds = " ".join(str(s) for s in args.seeds)
    print(
        f"{args.scale}, seeds {seeds} (+ held out {' '.join(map(str, args.held_out))}); "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {load:.1f} at start, "
        f"{time.perf_counter() - start:.0f} s in all, peak RSS {peak:.2f} GB (largest child)"
    )
    print(f"\n| measure | seeds {seeds} | held out | all |\n|---|---|---|---|")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    for k in keys:
        print(
            f"| {k} | {_pooled(tuned, k, args.draws)} | {_pooled(held, k, args.draws)} | "
            f"{_pooled(rows, k, args.draws)} |"
        )


if __name__ == "__main__":
    main()
