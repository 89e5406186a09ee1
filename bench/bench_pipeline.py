"""Time the pipeline health pieces on a generated mid company (seed 1 unless --db).

Prints: deal_states for one moment and for every Monday of the last N weeks (the shared
features module), one agent run that fits the risk model (read, features, benchmarks,
training, scoring, evidence; the engine's commit not included), one that reads that
model back as a weekly run between refits does (the model's rows stored in the
warehouse first, as the engine would), and the walk-forward backtest.

    python bench/bench_pipeline.py [--db var/mid.duckdb] [--weeks 196] [--eval-weeks 52]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.engine import Context  # noqa: E402
from revstack.agents.features import deal_states, weekly_moments  # noqa: E402
from revstack.agents.pipeline_health import PipelineHealth  # noqa: E402
from revstack.agents.registry import specs  # noqa: E402
from revstack.contracts import load_all  # noqa: E402
from revstack.data.generator import generate  # noqa: E402
from revstack.data.inventory import data_as_of  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402
from revstack.metrics.pipeline_backtest import in_memory_copy, run_backtest  # noqa: E402


def _timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"{label:<52} {time.perf_counter() - t:8.1f} s  (load {os.getloadavg()[0]:.1f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="a generated warehouse (default: generate mid seed 1)")
    ap.add_argument("--weeks", type=int, default=196)
    ap.add_argument("--eval-weeks", type=int, default=52)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = Path(args.db) if args.db else Path(tmp.name) / "mid.duckdb"
    wh = Warehouse(path)
    if not args.db:
        _timed("generate mid seed 1", lambda: generate(wh, scale="mid", seed=1))
    bundle = load_all()
    with wh.connect() as con:
        as_of = data_as_of(con)
        moments = weekly_moments((as_of - dt.timedelta(weeks=args.weeks)).date(), as_of.date())
        one = _timed(
            "deal_states, 1 moment, open deals", lambda: deal_states(con, as_of, open_only=True)
        )
        many = _timed(
            f"deal_states, {len(moments)} weekly moments, open deals",
            lambda: deal_states(con, moments, open_only=True),
        )
        _timed("deal_states, 1 moment, every deal", lambda: deal_states(con, as_of))
    print(f"  rows: {len(one):,} and {len(many):,}")
    release_all()
    spec = next(s for s in specs(bundle) if s.name == "pipeline_health")
    ctx = Context(
        wh,
        agent=spec.name,
        reads=spec.reads,
        as_of=as_of,
        definitions=bundle.definitions,
        params={"refit_weeks": 0},  # fit, whatever the warehouse has stored
    )
    result = _timed(
        "agent run, fitting (without the engine's commit)", lambda: PipelineHealth().run(ctx)
    )
    print(
        f"  flags: {len(result.outputs['ops.risk_flags']):,}, proposals: {len(result.proposals):,}"
    )
    with wh.transaction() as con:  # what the engine stores after a run: the model's rows
        for table in ("ops.risk_models", "ops.risk_model_trees"):
            con.execute(f"DELETE FROM {table}")  # names: the agent's outputs
            con.register("_rows", result.outputs[table])
            con.execute(f"INSERT INTO {table} BY NAME SELECT *, 'bench' AS run_id FROM _rows")
            con.unregister("_rows")
    release_all()
    ctx = Context(
        wh, agent=spec.name, reads=spec.reads, as_of=as_of, definitions=bundle.definitions
    )
    again = _timed("agent run, model read back", lambda: PipelineHealth().run(ctx))
    same = again.outputs["ops.risk_flags"].equals(result.outputs["ops.risk_flags"])
    print(f"  model: {again.metadata['model']['source']}, flags identical: {same}")
    with wh.connect() as con:
        mem = in_memory_copy(con)
    bt = _timed(
        f"backtest, {args.eval_weeks} weeks",
        lambda: run_backtest(mem, bundle.definitions, eval_weeks=args.eval_weeks),
    )
    print(f"  scored rows: {len(bt.scored):,}")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


if __name__ == "__main__":
    main()
