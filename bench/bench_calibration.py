"""Does calibration make confidence mean what it says? Measured against truth over
simulated quarters, per action, pooled over seeds.

Each seed is a 13-week simulation (``revstack simulate``: weekly imports, the agents,
two seeded reviewers working samples) kept in ``--dir`` and reused when there. The
engine calibrates each action on the decisions people made in earlier weeks, so every
proposal measured here was scored by a map fitted before it existed: an out-of-sample
test. Judged against the generator's truth (``metrics.verdicts``), not the reviewers.
Per action it prints, for the proposals of runs that used a map: how many truth judged,
the share right, the agent's mean score and the mean calibrated confidence, and the
expected calibration error (10 bins) and Brier score of each, with 90% intervals from
resampling proposals within each seed.

    python bench/bench_calibration.py --seeds 1 2 3 7 [--weeks 13] [--scale small] [--dir var/calibration]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

_CALIBRATED = """
SELECT p.proposal_id, p.agent, p.action_type, p.confidence,
       coalesce(p.raw_confidence, p.confidence) AS raw_confidence, c.judged AS fitted_on
FROM ops.proposals p JOIN ops.calibrations c USING (run_id, action_type)
"""


# What a graduation report holds, in the pooled table's order: all proposals under
# review, the graduated band under review, then what went through on its own after.
_GRADUATED = (
    ("precision_under_review", "under review"),
    ("precision_under_review_in_band", "same band under review"),
    ("precision_after_automatic", "after, automatic"),
    ("precision_after_reviewed", "after, to a person"),
)


def _simulated(folder: Path, scale: str, seed: int, weeks: int, agents: list[str]) -> Path:
    from revstack._simulate import simulate
    from revstack.data.warehouse import Warehouse, release_all

    db = folder / f"{scale}{seed}w{weeks}.duckdb"
    if db.exists():
        return db
    part = db.with_suffix(".partial.duckdb")
    for stale in (part, *(Path(f"{part}.{x}") for x in ("wal", "lock", "want"))):
        stale.unlink(missing_ok=True)
    t = time.perf_counter()
    report = simulate(Warehouse(part), weeks=weeks, seed=seed, scale=scale, agents=agents)
    db.with_suffix(".json").write_text(json.dumps(report, default=str, indent=1))
    release_all()  # closed (checkpointed) before it is renamed, or its WAL is left behind
    part.rename(db)
    for x in ("lock", "want"):
        Path(f"{part}.{x}").unlink(missing_ok=True)
    print(f"  seed {seed}: simulated in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return db


def _judged(db: Path, seed: int) -> pl.DataFrame:
    from revstack.data.warehouse import Warehouse, frame
    from revstack.metrics.verdicts import truth_verdicts

    with Warehouse(db).connect() as con:
        truth = truth_verdicts(con).rename({"correct": "right_"})
        rows = frame(con, _CALIBRATED)
    return rows.join(truth.select("proposal_id", "right_"), on="proposal_id").with_columns(
        seed=pl.lit(seed)
    )


def _measures(g: pl.DataFrame) -> dict[str, float]:
    from revstack.metrics.calibration import expected_calibration_error

    y = g["right_"].cast(pl.Float64).to_numpy()
    raw, cal = g["raw_confidence"].to_numpy(), g["confidence"].to_numpy()
    return {
        "ece_raw": expected_calibration_error(raw, y),
        "ece_cal": expected_calibration_error(cal, y),
        "brier_raw": float(np.mean((raw - y) ** 2)),
        "brier_cal": float(np.mean((cal - y) ** 2)),
    }


def _interval(
    g: pl.DataFrame, draws: int, rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    parts = [s for _, s in g.group_by("seed", maintain_order=True)]
    out: dict[str, list[float]] = {}
    for _ in range(draws):
        boot = pl.concat([s[rng.integers(0, len(s), len(s))] for s in parts])
        for k, v in _measures(boot).items():
            out.setdefault(k, []).append(v)
    return {k: (float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95))) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 7])
    ap.add_argument("--weeks", type=int, default=13)
    ap.add_argument("--scale", default="small")
    ap.add_argument("--agents", default="crm_hygiene,pipeline_health")
    ap.add_argument("--dir", default="var/calibration")
    ap.add_argument("--draws", type=int, default=500)
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    judged = pl.concat(
        [
            _judged(_simulated(folder, args.scale, s, args.weeks, args.agents.split(",")), s)
            for s in args.seeds
        ]
    )
    judged = judged.sort("agent", "action_type", "seed", "proposal_id")  # a seeded draw's order
    rng = np.random.default_rng(0)
    print(
        f"{args.scale}, seeds {' '.join(map(str, args.seeds))}, {args.weeks} weeks; "
        "proposals scored by a map fitted on earlier weeks, judged by truth"
    )
    print(
        "| action | judged | right | mean score | mean calibrated | ECE score [90%] | "
        "ECE calibrated [90%] | Brier score | Brier calibrated |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (agent, action), g in judged.group_by("agent", "action_type", maintain_order=True):
        m, iv = _measures(g), _interval(g, args.draws, rng)
        print(
            f"| {agent}.{action} | {len(g):,} | {g['right_'].mean():.1%} | "
            f"{g['raw_confidence'].mean():.1%} | {g['confidence'].mean():.1%} | "
            f"{m['ece_raw'] * 100:.1f} [{iv['ece_raw'][0] * 100:.1f}–{iv['ece_raw'][1] * 100:.1f}] | "
            f"{m['ece_cal'] * 100:.1f} [{iv['ece_cal'][0] * 100:.1f}–{iv['ece_cal'][1] * 100:.1f}] | "
            f"{m['brier_raw']:.3f} | {m['brier_cal']:.3f} |"
        )
    _graduations(folder, args)
    print(f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)


def _graduations(folder: Path, args: argparse.Namespace) -> None:
    """Precision against truth of each graduated action, under review and after, summed
    over the seeds' simulation reports (Wilson 95% intervals)."""
    from revstack.agents.engine import wilson

    tally: dict[str, list[float]] = {}
    seeds: dict[str, set[int]] = {}
    print("\n| seed | human decisions | one card at a time | fewer | waiting at the end |")
    print("|---|---|---|---|---|")
    for s in args.seeds:
        report = json.loads((folder / f"{args.scale}{s}w{args.weeks}.json").read_text())
        people, cards = report["human_decisions"], report["decisions_one_card_at_a_time"]
        print(
            f"| {s} | {people:,} | {cards:,} | {cards / max(people, 1):.1f}× | "
            f"{report['waiting_at_end']:,} |"
        )
        for g in report["graduations"]:
            t = tally.setdefault(g["action"], [0.0] * (2 * len(_GRADUATED)))
            seeds.setdefault(g["action"], set()).add(s)
            for i, (key, _) in enumerate(_GRADUATED):
                if g.get(key):
                    t[2 * i] += g[key]["proposals"]
                    t[2 * i + 1] += g[key]["proposals"] * g[key]["precision"]
    print(
        "\n| graduated action | graduated in | "
        + " | ".join(f"{title} [95%]" for _, title in _GRADUATED)
        + " |"
    )
    print("|---|---|" + "---|" * len(_GRADUATED))
    for action, t in sorted(tally.items()):
        k = len(seeds[action])
        cells = []
        for n, r in zip(t[::2], t[1::2], strict=True):
            n = int(n)
            lo_hi = wilson(round(r), n) if n else None
            cells.append(
                f"{r / n:.1%} of {n:,} [{lo_hi[0]:.1%}–{lo_hi[1]:.1%}]" if n and lo_hi else "–"
            )
        print(f"| {action} | {k} of {len(args.seeds)} seeds | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
