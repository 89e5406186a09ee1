"""The forecast agent: P10/P50/P90 of won revenue per period and segment. Output only.

Each run forecasts the current month and quarter for the company, every region, team
and rep: won so far, plus the open deals (a calibrated win probability each, drawn
together with company and team correlation), plus revenue from deals not created yet
(a seasonal time series), combined with the reps' calls by the weight that did best in
the backtest, with the range sized by where past actuals fell in past ranges. To know that, each run has the rolling backtest on the data it has
(``revstack.agents.forecast``), and stores it next to the live snapshot: the agent and the
baselines (the rep commit filled as a team fills it, filled at CRM rates, and the calls
alone; stage-weighted with CRM and with historical rates; seasonal naive) at every past
snapshot point, with the actual. Snapshots of periods that
were over at the last run come from that run's cache when nothing they saw has changed
(``_cache``); the rest are replayed, and the metadata's ``cache`` says how many of each
and why it was a full replay when it was. A deal model whose training rows are the ones
a stored model was fitted on is read back instead of fitted (``_stored``); the
metadata's ``models`` counts both. The as-of deal rows of the last run's moments are
taken from that run when its cache is reused (``_states``); the metadata's ``states``
says how many moments were and why not.

Parameters (``ctx.params``): ``refit_months`` (6, as ``revstack forecast backtest``, so
the figures in docs/forecast.md are of what a run does; how 12 compares is under Known
limits there), ``draws`` (backtest, 1000), ``live_draws`` (4000), ``seed`` (0), ``bag``
(3).
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from revstack.agents.engine import Agent, AgentResult, Context, empty_proposals
from revstack.agents.forecast import _cache, _sample, _states, _stored
from revstack.agents.forecast._accuracy import accuracy, deal_calibration
from revstack.agents.forecast._backtest import COMBINE_WITH, default_start, prepare, run_forecast
from revstack.agents.forecast._inputs import load
from revstack.agents.forecast._outputs import to_outputs

__all__ = ["ForecastAgent"]


class ForecastAgent(Agent):
    name = "forecast"
    version = "0.1.0"

    def run(self, ctx: Context) -> AgentResult:
        inp = load(ctx)
        if inp.history.is_empty():
            return AgentResult(
                empty_proposals(),
                {"forecast": "no deals in the CRM yet"},
                note="nothing to forecast: no deals in the CRM yet",
            )
        first = cast(dt.datetime, inp.history["changed_at"].min()).date()
        too_short = (
            f"nothing to forecast: the CRM's history runs {(inp.as_of.date() - first).days} "
            f"days ({first} to {inp.as_of.date()}), and the forecast learns from its first "
            "quarter (90 days at least) before it forecasts a period"
        )
        start = default_start(first, inp.as_of)
        if start > inp.as_of.date():
            return AgentResult(empty_proposals(), {"forecast": too_short}, note=too_short)
        p = ctx.params
        kw = {
            "refit_months": int(p.get("refit_months", 6)),
            "draws": int(p.get("draws", 1000)),
            "live_draws": int(p.get("live_draws", 4000)),
            "seed": int(p.get("seed", 0)),
            "bag": int(p.get("bag", 3)),
        }
        settings = {
            "agent": self.version,
            "params": kw,
            "eval_from": start.isoformat(),
            "combine_with": COMBINE_WITH,
        }
        sample = _sample.owners(inp.deals, inp.users)
        sampled = None
        if sample is not None:  # a large company's past snapshots are a sample's (``_sample``)
            sampled = {
                "seed": _sample.SEED,
                "above": _sample.SAMPLE_ABOVE,
                "to": _sample.SAMPLE_TO,
                "owners": len(sample),
            }
            settings["backtest_sample"] = sampled
        reuse, why = _cache.reuse_of(_cache.read(ctx), inp, start, settings)
        stored = _stored.read(ctx)
        # The as-of rows of the last run's moments, when its cache is reused (``_states``).
        pre = prepare(inp, kept=_states.read(ctx) if reuse is not None else None)
        fc = run_forecast(
            inp,
            prepared=pre,
            refit_months=kw["refit_months"],
            draws=kw["draws"],
            live_draws=kw["live_draws"],
            seed=kw["seed"],
            bag=kw["bag"],
            reuse=reuse,
            models=stored,
        )
        # Only the stored states and their note are read below: the deal rows (gigabytes
        # on a large company) are let go before the outputs are built.
        kept_states, states_note = pre["states"], pre["states_note"]
        del pre
        if fc.agent.is_empty():  # no period starts after the training stretch
            return AgentResult(empty_proposals(), {"forecast": too_short}, note=too_short)
        outputs = {
            **to_outputs(fc),
            **_cache.to_rows(
                fc, inp.as_of, start, _cache.fingerprint_parts(inp, inp.as_of, settings)
            ),
            **_stored.to_rows(
                fc.models, stored, {dt.date.fromisoformat(f["fit_at"]) for f in fc.params["fits"]}
            ),
            # Not when the stored rows hold every fixed point this run asked about: they
            # stand for the next run as they are (``_states.states_at``).
            **(_states.to_rows(inp, kept_states) if states_note["store"] else {}),
        }
        scores = accuracy(fc.agent, fc.baselines)
        headline = [
            {
                "period_kind": r["period_kind"],
                "offset": r["offset"],
                "mape": r["agent"]["mape"],
                "rep_commit_mape": r["baselines"].get("rep_commit", {}).get("mape"),
                "rep_commit_submitted_mape": r["baselines"]
                .get("rep_commit_submitted", {})
                .get("mape"),
                "coverage": r["range"].get("coverage"),
            }
            for r in scores
            if r["offset"] == "all"
        ]
        calibration = {
            k: {"brier": v["brier"], "brier_base_rate": v["brier_base_rate"]}
            for k, v in deal_calibration(fc.deals).items()
        }
        metadata = {
            "history_rebuilt": inp.rebuilt_history,
            "fits": fc.params["fits"],
            # What this run took from the last one's backtest, and why not more.
            "cache": {
                "full_replay": reuse is None,
                "why": why,
                "reused": fc.params["reused"],
                "recomputed": fc.params["recomputed"],
                # Of those, past snapshots of periods still open drawn again (the rest
                # were drawn from the same deals, model and loadings by the last run).
                "redrawn": fc.params["redrawn"],
            },
            # Deal models: fitted in this run, read back from the last run's, or this
            # process's own from an earlier week; and stored ones that failed their checks.
            "models": {**fc.params["models"], "unreadable": sorted(stored.unreadable.values())},
            # Snapshot moments whose as-of deal rows were the last run's, moments computed,
            # and deals recomputed at stored moments since their contacts changed.
            "states": states_note,
            "backtest": headline,
            "deal_calibration": calibration,
            # How each live snapshot was combined with the reps' commit (weight, biases, scale).
            "combination": fc.params.get("live", []),
        }
        if sampled is None:
            return AgentResult(empty_proposals(), metadata, outputs)
        # whose past snapshots the backtest scored (``_sample``); said with the run, as
        # ranges learned that way are measured only on smaller shares (docs/forecast.md)
        metadata["backtest_sample"] = sampled
        note = _sample.SAMPLED_WARNING.format(**sampled)
        return AgentResult(empty_proposals(), metadata, outputs, note=note)
