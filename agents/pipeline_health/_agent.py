"""The pipeline health agent: risk signals on every open deal, with reasons and evidence.

Each run rebuilds every open deal's state as of the data's today and at each of the
past ``train_weeks`` Mondays (``agents.features``), then:

- learns the stage benchmarks from deals already won (how long they sat quiet and in
  each stage; definitions.yaml's quiet thresholds are the floor);
- fires the rules (gone quiet, close date pushed 3+ times, champion departed, thin
  multithreading, stage-age outlier, close date passed, amount cut, suspected phantom);
- trains the learned risk score on the past snapshots whose four-week outcome the CRM
  already shows (slipped out of the quarter or lost), calibrated on the latest weeks,
  and scores today's deals with reason codes;
- returns every fired signal as an ``ops.risk_flags`` row (reason and evidence rows),
  every open deal's risk as ``ops.risk_scores``, one ``flag_risk`` proposal per flagged
  deal (output only) and, for high-risk deals in commit or best case, a tier-2
  ``move_to_at_risk`` proposal one forecast category down. The contract starts the
  agent in shadow mode: everything is recorded, nothing written to the CRM.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import polars as pl

from revstack.agents.engine import Agent, AgentResult, Context, empty_proposals
from revstack.agents.features import TABLES, deal_states, frames_connection, weekly_moments
from revstack.agents.pipeline_health._evidence import evidence_for, model_reason
from revstack.agents.pipeline_health._risk_model import HORIZON_DAYS, feature_matrix, outcome_labels
from revstack.agents.pipeline_health._signals import learn_benchmarks, rule_flags
from revstack.contracts import load_definitions

__all__ = ["PipelineHealth", "HIGH_RISK", "MODEL_THRESHOLD"]

MODEL_THRESHOLD = 0.5  # the model raises its own flag at this calibrated risk
HIGH_RISK = 0.7  # ... and proposes moving a commit / best-case deal down at this one
_DOWN = {"commit": "best_case", "best_case": "pipeline"}
_MIN_TRAIN = 500


def _json(v: Any) -> str:
    return json.dumps(v)


class PipelineHealth(Agent):
    name = "pipeline_health"
    version = "1.0.0"

    def run(self, ctx: Context) -> AgentResult:
        d = ctx.definitions if ctx.definitions is not None else load_definitions()
        train_weeks = int(ctx.params.get("train_weeks", 104))
        seed = int(ctx.params.get("seed", 0))
        frames = {t: ctx.table(t) for t in TABLES}
        as_of = ctx.as_of
        h = dt.timedelta(days=HORIZON_DAYS)
        past = weekly_moments((as_of - dt.timedelta(weeks=train_weeks) - h).date(), as_of.date())
        past = [m for m in past if m < as_of]
        con = frames_connection(frames)
        try:
            states = deal_states(con, [*past, as_of], definitions=d, open_only=True)
            final = deal_states(con, as_of, definitions=d)
        finally:
            con.close()
        history = states.filter(pl.col("as_of") < as_of)
        now = states.filter(pl.col("as_of") == as_of)
        bench = learn_benchmarks(history, final.filter("is_won")["opportunity_id"], d)
        flags = rule_flags(now, d, bench)
        scores, model_meta = self._score(
            history, final, now, bench, d, seed, flags["opportunity_id"]
        )
        if not scores.is_empty():
            high = scores.filter(pl.col("risk") >= MODEL_THRESHOLD).select(
                "as_of",
                "opportunity_id",
                signal=pl.lit("model"),
                severity="risk",
                reason="reason",
            )
            flags = pl.concat([flags, high])
        flags = (
            flags.join(
                scores.select("opportunity_id", score="risk"), on="opportunity_id", how="left"
            )
            if not scores.is_empty()
            else flags.with_columns(score=pl.lit(None, pl.Float64))
        )
        evidence = (
            evidence_for(
                flags,
                now,
                frames["crm.opportunity_history"],
                frames["crm.activities"],
                frames["crm.opportunity_contacts"],
                frames["crm.contacts"],
            )
            if not flags.is_empty()
            else []
        )
        flag_rows = flags.with_columns(evidence=pl.Series(evidence, dtype=pl.String)).select(
            "opportunity_id",
            "signal",
            flagged_at="as_of",
            score="score",
            severity="severity",
            reason="reason",
            evidence="evidence",
        )
        proposals = self._proposals(ctx, flag_rows, scores)
        outputs = {"ops.risk_flags": flag_rows}
        if not scores.is_empty():
            outputs["ops.risk_scores"] = scores.select(
                "opportunity_id", scored_at="as_of", risk="risk", reasons="reasons"
            )
        counts = {k: int(v) for k, v in flag_rows.group_by("signal").len().iter_rows()}
        return AgentResult(
            proposals,
            {
                "open_deals": len(now),
                "flags": counts,
                "flagged_deals": flag_rows["opportunity_id"].n_unique(),
                "benchmarks": bench.to_dict(),
                "model": model_meta,
                "training_moments": len(past),
            },
            outputs,
        )

    def _score(
        self,
        history: pl.DataFrame,
        final: pl.DataFrame,
        now: pl.DataFrame,
        bench: Any,
        d: Any,
        seed: int,
        flagged: pl.Series,
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Train on past snapshots with CRM-visible outcomes; score today's open deals."""
        stages = [s.key for s in d.stages]
        labels = outcome_labels(history, final)
        train = history.join(labels, on=["as_of", "opportunity_id"])
        if len(train) > 100_000:  # enough for the trees; bounds the run's time and memory
            rng = np.random.default_rng(seed)
            train = train[np.sort(rng.choice(len(train), 100_000, replace=False))]
        y = train["label"].to_numpy() if len(train) else np.zeros(0)
        if len(train) < _MIN_TRAIN or now.is_empty() or len(np.unique(y)) < 2:
            return pl.DataFrame(), {
                "trained": False,
                "why": f"{len(train)} labelled past snapshots (needs {_MIN_TRAIN} "
                "with both outcomes)",
            }
        from revstack.agents.pipeline_health._risk_estimator import (
            RiskModel,  # scikit-learn: imported when needed
        )

        model = RiskModel(random_state=seed).fit(
            feature_matrix(train, bench, stages), y, time=train["as_of"].to_physical().to_numpy()
        )
        x = feature_matrix(now, bench, stages)
        risk = model.risk(x)
        # Reason codes cost a prediction per group: only for deals a manager will see.
        shown = np.flatnonzero(
            (risk >= MODEL_THRESHOLD) | now["opportunity_id"].is_in(flagged.implode()).to_numpy()
        )
        codes: list[list[tuple[str, float]]] = [[] for _ in range(len(now))]
        for i, c in zip(shown, model.reasons(x[shown]), strict=True):
            codes[i] = c
        rows = now.to_dicts()
        reason = [model_reason(float(r), c, s) for r, c, s in zip(risk, codes, rows, strict=True)]
        reasons = [_json([{"code": k, "points": round(p, 4)} for k, p in c]) for c in codes]
        scores = now.select("as_of", "opportunity_id").with_columns(
            risk=pl.Series(risk, dtype=pl.Float64).clip(0.0, 1.0),
            reason=pl.Series(reason, dtype=pl.String),
            reasons=pl.Series(reasons, dtype=pl.String),
        )
        return scores, {
            "trained": True,
            "n_train": model.n_train_,
            "train_base_rate": round(model.base_rate_, 4),
            "mean_risk_now": round(float(risk.mean()), 4),
        }

    def _proposals(self, ctx: Context, flags: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
        if flags.is_empty():
            return empty_proposals()
        per_deal = flags.group_by("opportunity_id").agg(
            signals=pl.col("signal").sort(),
            reasons=pl.col("reason").sort_by("signal"),
            score=pl.col("score").max(),
        )
        crm = ctx.table("crm.opportunities", ["opportunity_id", "forecast_category"])
        per_deal = per_deal.join(crm, on="opportunity_id", how="left")
        rows = []
        for r in per_deal.sort("opportunity_id").iter_rows(named=True):
            conf = float(r["score"]) if r["score"] is not None else 0.5
            rows.append(
                {
                    "action_type": "flag_risk",
                    "object_type": "opportunities",
                    "record_id": r["opportunity_id"],
                    "field": None,
                    "old_value": None,
                    # The signals, not the date: the same flags next week are not proposed again.
                    "new_value": _json(r["signals"]),
                    "confidence": conf,
                    "evidence": _json({"signals": r["signals"], "table": "ops.risk_flags"}),
                    "reason": "; ".join(r["reasons"]),
                }
            )
            down = _DOWN.get(r["forecast_category"] or "")
            if down and r["score"] is not None and r["score"] >= HIGH_RISK:
                rows.append(
                    {
                        "action_type": "move_to_at_risk",
                        "object_type": "opportunities",
                        "record_id": r["opportunity_id"],
                        "field": "forecast_category",
                        "old_value": _json(r["forecast_category"]),
                        "new_value": _json(down),
                        "confidence": conf,
                        "evidence": _json({"signals": r["signals"]}),
                        "reason": f"{conf:.0%} risk of slipping or being lost; move from "
                        f"{r['forecast_category']} to {down}",
                    }
                )
        return pl.DataFrame(rows, schema=empty_proposals().schema)
