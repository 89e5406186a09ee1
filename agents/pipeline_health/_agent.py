"""The pipeline health agent: risk signals on every open deal, with reasons and evidence.

Each run rebuilds every open deal's state as of the data's today (``agents.features``),
then:

- learns the stage benchmarks from deals already won (how long they sat quiet and in
  each stage; definitions.yaml's quiet thresholds are the floor);
- fires the rules (gone quiet, close date pushed 3+ times, champion departed, thin
  multithreading, stage-age outlier, close date passed, amount cut, suspected phantom);
- trains the learned risk score on the open deals' states at each of the past
  ``train_weeks`` Mondays whose four-week outcome the CRM already shows (slipped out of
  the quarter or lost), calibrated on the latest weeks, and scores today's deals with
  reason codes. The fitted model and the benchmarks it was fitted with are stored
  (``_stored``); later runs read them back instead of rebuilding the past Mondays and
  refitting, until the model is ``refit_weeks`` old (default 4) or the history it was
  fitted on changed. The run's metadata says which (``model.source``);
- returns every fired signal as an ``ops.risk_flags`` row (reason and evidence rows),
  every open deal's risk as ``ops.risk_scores``, one ``flag_risk`` proposal per flagged
  deal (output only) and, for high-risk deals in commit or best case, a tier-2
  ``move_to_at_risk`` proposal one forecast category down. The contract starts the
  agent in shadow mode: everything is recorded, nothing written to the CRM.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from revstack.agents.engine import Agent, AgentResult, Context, WarehouseQueries, empty_proposals
from revstack.agents.features import (
    STATE_SCHEMA,
    TABLES,
    deal_states_in,
    states_query,
    typed,
    weekly_moments,
)
from revstack.agents.pipeline_health import _stored
from revstack.agents.pipeline_health._evidence import evidence_for, model_reason
from revstack.agents.pipeline_health._risk_model import (
    HORIZON_DAYS,
    OUTCOME_COLUMNS,
    feature_matrix,
    outcome_labels,
)
from revstack.agents.pipeline_health._signals import Benchmarks, learn_benchmarks, rule_flags
from revstack.contracts import load_definitions

__all__ = ["PipelineHealth", "HIGH_RISK", "MODEL_THRESHOLD"]

MODEL_THRESHOLD = 0.5  # the model raises its own flag at this calibrated risk
HIGH_RISK = 0.7  # ... and proposes moving a commit / best-case deal down at this one
_DOWN = {"commit": "best_case", "best_case": "pipeline"}
_MIN_TRAIN = 500
_MAX_TRAIN = 100_000  # enough for the trees; bounds the run's time and memory
# The estimator's settings (RiskModel's defaults): part of the stored model's key.
_MODEL = {"max_iter": 150, "learning_rate": 0.1, "calibration_share": 0.25, "rows": _MAX_TRAIN}


def _json(v: Any) -> str:
    return json.dumps(v)


class PipelineHealth(Agent):
    name = "pipeline_health"
    version = "1.0.0"

    def run(self, ctx: Context) -> AgentResult:
        d = ctx.definitions if ctx.definitions is not None else load_definitions()
        train_weeks = int(ctx.params.get("train_weeks", 104))
        refit_weeks = int(ctx.params.get("refit_weeks", 4))
        seed = int(ctx.params.get("seed", 0))
        # The activities are never held whole (23.7M rows on the large company): the
        # deal states are computed in the warehouse (``deal_states_in``), the history
        # digest reads their rows' hashes in parts, and the evidence reads the flagged
        # deals' rows. The other tables the states read are held for those two.
        frames = {t: ctx.table(t) for t in TABLES if t != "crm.activities"}
        hashed: dict[str, _stored.RowHashes] = {}

        def digest(through: dt.datetime) -> str:
            if not hashed:
                hashed["crm.activities"] = _stored.activity_hashes(ctx)
            return _stored.inputs_digest(frames, through, hashed)

        as_of = ctx.as_of
        key = _stored.model_key(d, train_weeks=train_weeks, seed=seed, model=_MODEL)
        stored, why = _stored.read(ctx)
        if stored is not None:
            why = _stale(stored, key, as_of, refit_weeks, digest)
        if stored is not None and not why:
            # Read back: only today's states are needed (the rules, the scores).
            now = _states_now(ctx, frames, as_of, d)
            bench, fitted, training = stored.bench, stored, stored.training_moments
            flags = rule_flags(now, d, bench)
            scores, model_meta = _scores(stored.scorer, now, bench, d, flags["opportunity_id"])
            model_meta |= {
                "source": "read back",
                "fitted_at": stored.fit_as_of.isoformat(),
                "fitted_by_run": stored.run_id,
            }
            note = (
                f"risk model read back: fitted at {stored.fit_as_of:%Y-%m-%d} by run "
                f"{stored.run_id}, refitted every {refit_weeks} weeks"
            )
        else:
            note = ""
            h = dt.timedelta(days=HORIZON_DAYS)
            past = weekly_moments(
                (as_of - dt.timedelta(weeks=train_weeks) - h).date(), as_of.date()
            )
            past = [m for m in past if m < as_of]
            # what closed_outcomes gives, from the history alone, in the warehouse
            final = deal_states_in(
                ctx, as_of, definitions=d, history_only=True, columns=OUTCOME_COLUMNS
            )
            train, y, untrained, bench, now = _refit_states(ctx, past, as_of, final, seed, d)
            flags = rule_flags(now, d, bench)
            training = len(past)
            model, model_meta = self._fit(train, y, untrained, bench, d, seed)
            fitted = None
            scores = pl.DataFrame()
            if model is not None:
                from revstack.agents.pipeline_health._risk_estimator import RiskScorer

                scorer = RiskScorer.of(model)
                fitted = _stored.StoredModel(key, digest(as_of), as_of, training, bench, scorer, "")
                scores, score_meta = _scores(scorer, now, bench, d, flags["opportunity_id"])
                model_meta |= score_meta | {
                    "source": "fitted",
                    "refit_because": why,
                    "fitted_at": as_of.isoformat(),
                }
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
                # a flagged deal's evidence reads its own rows alone
                frames["crm.opportunity_history"],
                ctx.table(
                    "crm.activities",
                    any_of={"opportunity_id": flags["opportunity_id"].unique().sort().to_list()},
                ),
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
        if fitted is not None:
            # The model this run used (read back or fitted) replaces the stored one.
            outputs |= _stored.to_rows(fitted)
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
                "training_moments": training,
            },
            outputs,
            note,
        )

    def _fit(
        self,
        train: pl.DataFrame,
        y: np.ndarray,
        untrained: dict[str, Any] | None,
        bench: Benchmarks,
        d: Any,
        seed: int,
    ) -> tuple[Any, dict[str, Any]]:
        """Train on past snapshots with CRM-visible outcomes (None when there are too few)."""
        if untrained is not None:
            return None, untrained
        stages = [s.key for s in d.stages]
        from revstack.agents.pipeline_health._risk_estimator import (
            RiskModel,  # scikit-learn: imported when needed
        )

        model = RiskModel(random_state=seed).fit(
            feature_matrix(train, bench, stages), y, time=train["as_of"].to_physical().to_numpy()
        )
        return model, {
            "trained": True,
            "n_train": model.n_train_,
            "train_base_rate": round(model.base_rate_, 4),
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


# What the labels read of the states (the history's columns alone).
_HISTORY = ["as_of", "opportunity_id", "stage", "close_date", "is_won", "days_in_stage"]
# What the benchmarks read of the won deals' past weeks, and today's states.
_PAST = """
SELECT as_of, opportunity_id, stage, days_since_two_way, days_in_stage
FROM ({}) ORDER BY as_of, opportunity_id
"""
# The directions of an answer (the states' SQL: a completed inbound or two-way touch).
_ANSWERED = ("inbound", "two_way")
_NOW = "SELECT * FROM states WHERE as_of = $t ORDER BY as_of, opportunity_id"
# The rows whose whole states are built: the sample's and today's open deals'.
_PAIRS = """
SELECT unnest($t::TIMESTAMP[]) AS as_of, unnest($ids::VARCHAR[]) AS opportunity_id
"""
# The training sample's whole rows, in the sample's order.
_SAMPLE = """
SELECT s.*, k.i FROM states s
JOIN (SELECT unnest($as_of::TIMESTAMP[]) AS as_of, unnest($ids::VARCHAR[]) AS opportunity_id,
             unnest($i::BIGINT[]) AS i) k USING (as_of, opportunity_id)
ORDER BY k.i
"""


def _sample(
    ctx: Context, moments: list[dt.datetime], final: pl.DataFrame, seed: int, d: Any
) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any] | None, pl.DataFrame, pl.Series]:
    """The labelled past snapshots the model trains on (at most ``_MAX_TRAIN``, drawn with
    ``seed``: keys, the history's columns and the label), their labels, why there is no
    model (None when there is one), the past states' history columns, and the deals open
    at the last of ``moments`` (the run's as-of).

    The labels and the draw read the stage and close date alone, so the states are built
    from the history alone (the activity and buying-role tables empty): on the large
    company every open deal at 108 Mondays is 18M rows, and their activity figures
    spilled 22 GB without finishing."""
    states = deal_states_in(
        ctx, moments, definitions=d, open_only=True, history_only=True, columns=_HISTORY
    )
    history = states.filter(pl.col("as_of") < moments[-1])
    ids_now = states.filter(pl.col("as_of") == moments[-1])["opportunity_id"]
    del states
    labels = outcome_labels(history, final)
    # In the history's order, always (a join's default order is not promised): the seeded
    # sample draws row positions.
    train = history.join(labels, on=["as_of", "opportunity_id"], maintain_order="left")
    if len(train) > _MAX_TRAIN:
        rng = np.random.default_rng(seed)
        train = train[np.sort(rng.choice(len(train), _MAX_TRAIN, replace=False))]
    y = train["label"].to_numpy() if len(train) else np.zeros(0)
    untrained = None
    if len(train) < _MIN_TRAIN or ids_now.is_empty() or len(np.unique(y)) < 2:
        untrained = {
            "trained": False,
            "why": f"{len(train)} labelled past snapshots (needs {_MIN_TRAIN} with both outcomes)",
        }
    return train, y, untrained, history, ids_now


def _refit_states(
    ctx: Context,
    past: list[dt.datetime],
    as_of: dt.datetime,
    final: pl.DataFrame,
    seed: int,
    d: Any,
) -> tuple[pl.DataFrame, np.ndarray, dict[str, Any] | None, Benchmarks, pl.DataFrame]:
    """What a refit reads of the open deals' states at the ``past`` Mondays and at
    ``as_of``: the training sample's whole rows with their labels (``_sample``'s keys and
    labels when there is no model), the labels, why there is no model (None when there
    is one), the benchmarks and today's states. ``final``: every deal at ``as_of``, the
    history's columns (``OUTCOME_COLUMNS``).

    The labels and the draw read the history alone; the activity and buying-role figures
    are then built only for the deals whose rows are read: the sample's and today's open
    deals', and for the won deals' past weeks the days since the last answer the quiet
    benchmark reads. A deal's state reads nothing of another's, so these rows are those
    of every deal's states."""
    train, y, untrained, history, ids_now = _sample(ctx, [*past, as_of], final, seed, d)
    won = final.filter("is_won")["opportunity_id"]
    # The quiet benchmark reads the won deals' days since the last answer: their history
    # and their answers alone (the last answer is the last of the answers), no roles.
    was_open = history.filter(pl.col("opportunity_id").is_in(won.implode()))["opportunity_id"]
    query, params, _ = states_query(past, definitions=d, open_only=True)
    answers: dict[str, tuple[str, Sequence[Any]]] = {t: (c[0], []) for t, c in TABLES.items()}
    answers["crm.opportunity_history"] = ("opportunity_id", was_open.unique().sort().to_list())
    answers["crm.activities"] = ("direction", list(_ANSWERED))
    with ctx.warehouse(TABLES, rows=answers) as wh:
        bench = learn_benchmarks(typed(wh.frame(_PAST.format(query), params)), won, d)
    sample = train.select("as_of", "opportunity_id")
    sample = sample if untrained is None else sample.clear()
    wanted = pl.concat(
        [sample, ids_now.to_frame().select(pl.lit(as_of).alias("as_of"), "opportunity_id")]
    )
    deals = wanted["opportunity_id"].unique().sort().to_list()
    del history
    query, params, rows = states_query(
        [*past, as_of],
        definitions=d,
        open_only=True,
        deals=deals,
        at_rows=True,
    )
    with ctx.warehouse(TABLES, rows=rows) as wh:
        pairs = {"t": wanted["as_of"].to_list(), "ids": wanted["opportunity_id"].to_list()}
        wh.keep("at_rows", _PAIRS, pairs)
        wh.keep("states", query, params)
        now = typed(wh.frame(_NOW, {"t": as_of})).select(list(STATE_SCHEMA))
        if untrained is None:
            train = _whole_rows(train, wh)
    return train, y, untrained, bench, now


def _whole_rows(train: pl.DataFrame, wh: WarehouseQueries) -> pl.DataFrame:
    """The sample's whole state rows in its order, with its labels, from the warehouse's
    ``states`` (kept by the caller, holding at least the sample's deals)."""
    keys = {
        "as_of": train["as_of"].to_list(),
        "ids": train["opportunity_id"].to_list(),
        "i": list(range(len(train))),
    }
    rows = typed(wh.frame(_SAMPLE, keys).drop("i")).select(list(STATE_SCHEMA))
    return rows.with_columns(label=train["label"])


def _stale(
    stored: _stored.StoredModel,
    key: str,
    as_of: dt.datetime,
    refit_weeks: int,
    digest: Callable[[dt.datetime], str],
) -> str:
    """Why the stored model cannot be used at ``as_of`` ('' when it can); ``digest``:
    ``inputs_digest`` of the CRM now."""
    if stored.key != key:
        return "the settings, definitions or library versions changed"
    if stored.fit_as_of > as_of:
        return f"it was fitted at {stored.fit_as_of:%Y-%m-%d}, after this run's as-of"
    age = as_of - stored.fit_as_of
    if age >= dt.timedelta(weeks=refit_weeks):
        return f"fitted {age.days} days before (refit every {refit_weeks} weeks)"
    if digest(stored.fit_as_of) != stored.inputs:
        return f"the history up to its fit ({stored.fit_as_of:%Y-%m-%d}) changed"
    return ""


def _states_now(
    ctx: Context, frames: dict[str, pl.DataFrame], as_of: dt.datetime, d: Any
) -> pl.DataFrame:
    """The open deals' states at ``as_of``, rebuilt from those deals' rows only (a deal's
    state reads nothing of any other deal, and one whose history row in force at as_of
    closed it has none)."""
    closed = [s.key for s in d.stages if s.closed]
    h = frames["crm.opportunity_history"]
    in_force = (
        h.filter(pl.col("changed_at") <= as_of)
        .sort("opportunity_id", "changed_at", "history_id")
        .group_by("opportunity_id")
        .last()
    )
    ids = in_force.filter(~pl.col("stage").is_in(closed))["opportunity_id"].sort().to_list()
    return deal_states_in(ctx, [as_of], definitions=d, open_only=True, deals=ids)


def _scores(
    scorer: Any, now: pl.DataFrame, bench: Benchmarks, d: Any, flagged: pl.Series
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Today's open deals scored, with reason codes for the deals a manager will see."""
    if now.is_empty():
        return pl.DataFrame(), {"mean_risk_now": None}
    stages = [s.key for s in d.stages]
    x = feature_matrix(now, bench, stages)
    risk = scorer.risk(x)
    # Reason codes cost a prediction per group: only for deals a manager will see.
    shown = np.flatnonzero(
        (risk >= MODEL_THRESHOLD) | now["opportunity_id"].is_in(flagged.implode()).to_numpy()
    )
    codes: list[list[tuple[str, float]]] = [[] for _ in range(len(now))]
    for i, c in zip(shown, scorer.reasons(x[shown]), strict=True):
        codes[i] = c
    # A reason names the deal's figures only where it has codes: only those rows as dicts.
    rows: list[dict[str, Any]] = [{} for _ in range(len(now))]
    for i, r in zip(shown, now[shown].iter_rows(named=True), strict=True):
        rows[i] = r
    reason = [model_reason(float(r), c, s) for r, c, s in zip(risk, codes, rows, strict=True)]
    reasons = [_json([{"code": k, "points": round(p, 4)} for k, p in c]) for c in codes]
    scores = now.select("as_of", "opportunity_id").with_columns(
        risk=pl.Series(risk, dtype=pl.Float64).clip(0.0, 1.0),
        reason=pl.Series(reason, dtype=pl.String),
        reasons=pl.Series(reasons, dtype=pl.String),
    )
    return scores, {
        "trained": True,
        "n_train": scorer.n_train,
        "train_base_rate": round(scorer.base_rate, 4),
        "mean_risk_now": round(float(risk.mean()), 4),
    }
