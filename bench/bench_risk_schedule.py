"""What refitting pipeline health's risk model on a schedule changes, on a generated company.

1. Flags: the model is fitted at ``--fit-at`` and stored in a copy of the warehouse; one,
   two and three weeks later the agent runs with it read back and with a full refit
   (``refit_weeks=0``) at the same as-of on the same data, and the flags are compared
   (by signal), with the mean risk difference and the ``move_to_at_risk`` proposals.
2. Truth: the walk-forward backtest over the same ``--eval-weeks`` Mondays with the
   model retrained every 13, 4 and 1 weeks; the model's precision, recall, precision@5
   per manager-week and PR-AUC (deal-weeks not already lost).

Prints each as it is measured, with the load.

    python bench/bench_risk_schedule.py --db var/mid.duckdb --fit-at 2026-08-27 [--eval-weeks 26]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.engine import AgentResult, Context  # noqa: E402
from revstack.agents.pipeline_health import PipelineHealth  # noqa: E402
from revstack.agents.registry import specs  # noqa: E402
from revstack.contracts import load_all  # noqa: E402
from revstack.data.warehouse import Warehouse, release_all  # noqa: E402
from revstack.metrics.pipeline_backtest import (  # noqa: E402
    in_memory_copy,
    run_backtest,
    signal_quality,
)

_MODEL = ("ops.risk_models", "ops.risk_model_trees")


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _flags(wh: Warehouse, fit_at: dt.datetime) -> None:
    bundle = load_all()
    spec = next(s for s in specs(bundle) if s.name == "pipeline_health")

    def run(as_of: dt.datetime, **params: int) -> AgentResult:
        ctx = Context(
            wh,
            agent=spec.name,
            reads=spec.reads,
            as_of=as_of,
            definitions=bundle.definitions,
            params={**spec.params, **params},
        )
        clock = time.perf_counter()
        out = PipelineHealth().run(ctx)
        release_all()
        print(
            f"  run at {as_of:%Y-%m-%d}, model {out.metadata['model'].get('source')}: "
            f"{time.perf_counter() - clock:.1f} s ({_load()})",
            flush=True,
        )
        return out

    fitted = run(fit_at, refit_weeks=0)
    with wh.transaction() as con:  # what the engine stores after the run
        for table in _MODEL:
            con.execute(f"DELETE FROM {table}")  # names: the agent's outputs
            con.register("_rows", fitted.outputs[table])
            con.execute(f"INSERT INTO {table} BY NAME SELECT *, 'R-fit' AS run_id FROM _rows")
            con.unregister("_rows")
    release_all()
    for k in (1, 2, 3):
        at = fit_at + dt.timedelta(weeks=k)
        back, full = run(at), run(at, refit_weeks=0)
        fb, ff = back.outputs["ops.risk_flags"], full.outputs["ops.risk_flags"]
        key = ["opportunity_id", "signal"]
        only_back, only_full = fb.join(ff, on=key, how="anti"), ff.join(fb, on=key, how="anti")
        risks = back.outputs["ops.risk_scores"].join(
            full.outputs["ops.risk_scores"], on="opportunity_id", suffix="_full"
        )
        moves = [int((r.proposals["action_type"] == "move_to_at_risk").sum()) for r in (full, back)]
        row = {
            "weeks_since_fit": k,
            "as_of": at.date().isoformat(),
            "flags_full_read_back": [len(ff), len(fb)],
            "deals_full_read_back": [
                ff["opportunity_id"].n_unique(),
                fb["opportunity_id"].n_unique(),
            ],
            "model_flags_full_read_back": [int((f["signal"] == "model").sum()) for f in (ff, fb)],
            "only_full": dict(only_full.group_by("signal").len().sort("signal").iter_rows()),
            "only_read_back": dict(only_back.group_by("signal").len().sort("signal").iter_rows()),
            "mean_abs_risk_difference": round(
                float((risks["risk"] - risks["risk_full"]).abs().mean()), 4
            ),
            "move_to_at_risk_full_read_back": moves,
        }
        print(json.dumps(row), flush=True)


def _truth(wh: Warehouse, eval_weeks: int) -> None:
    definitions = load_all().definitions
    with wh.connect() as con:
        mem = in_memory_copy(con)
    release_all()
    for every in (13, 4, 1):
        clock = time.perf_counter()
        bt = run_backtest(mem, definitions, eval_weeks=eval_weeks, retrain_weeks=every)
        m = signal_quality(bt).filter(signal="model").to_dicts()[0]
        keep = ("flagged", "precision", "recall", "precision_at_k", "pr_auc", "base_rate")
        print(
            json.dumps(
                {
                    "retrain_weeks": every,
                    "weeks": f"{bt.setup['first_week']}..{bt.setup['last_week']}",
                    **{k: round(m[k], 4) if isinstance(m[k], float) else m[k] for k in keep},
                    "seconds": round(time.perf_counter() - clock, 1),
                    "load": round(os.getloadavg()[0], 1),
                }
            ),
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True, help="a generated warehouse (copied)")
    ap.add_argument("--fit-at", type=dt.datetime.fromisoformat, required=True)
    ap.add_argument("--eval-weeks", type=int, default=26)
    ap.add_argument("--skip-flags", action="store_true")
    ap.add_argument("--skip-truth", action="store_true")
    args = ap.parse_args()
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {_load()}, {os.cpu_count()} cores")
    (ROOT / "var").mkdir(exist_ok=True)  # a fresh clone has none
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as tmp:
        path = Path(tmp) / "schedule.duckdb"
        shutil.copy(args.db, path)
        wh = Warehouse(path)
        if not args.skip_flags:
            print("flags: a model read back k weeks after its fit against a full refit")
            _flags(wh, args.fit_at)
        if not args.skip_truth:
            print(f"truth: backtest over {args.eval_weeks} Mondays, model retrained every N weeks")
            _truth(wh, args.eval_weeks)
        release_all()


if __name__ == "__main__":
    main()
