"""How a forecast scores against what happened: ``accuracy`` takes the backtest frames
(from the agent's run or from ``revstack forecast backtest``) and returns, per period
kind and snapshot point, each method's point scores, the agent's range scores, its CRPS
skill against each baseline and its MAPE over each baseline's with a 90% interval from
resampling periods. ``deal_calibration`` scores the deal probabilities (Brier,
reliability). The agent stores these with every run, so they live with it; reading the
generator's truth instead of the CRM's actuals is ``revstack.metrics.forecast``'s job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from revstack.agents.forecast._scores import (
    brier,
    mape_ratio,
    point_scores,
    range_scores,
    reliability,
)

__all__ = ["accuracy", "deal_calibration", "summary_table"]


# A snapshot at which the calls are in: this share of the reps with a call or deals in
# the period had called by its moment (``rep_commit``'s ``reps`` and ``reps_submitted``).
CALLS_IN = 0.8


def _calls_in(ga: pl.DataFrame, gb: pl.DataFrame) -> dict[str, Any] | None:
    """The agent against the rep commit on the snapshots at which the calls are in,
    with the share of the snapshots that qualify."""
    c = gb.filter(pl.col("method") == "rep_commit")
    if c.is_empty() or "reps" not in c.columns:
        return None
    m = c.join(
        ga.select("period_start", "offset", "segment", "p50"),
        on=["period_start", "offset", "segment"],
        how="inner",
    )
    inn = m.filter(pl.col("reps_submitted") >= CALLS_IN * pl.col("reps"))
    return {
        "threshold": CALLS_IN,
        "snapshots": len(inn),
        "share": len(inn) / len(m) if len(m) else None,
        "mape_ratio": mape_ratio(
            inn["period_start"].to_numpy(),
            inn["actual"].to_numpy(),
            inn["p50"].to_numpy(),
            inn["value"].to_numpy(),
        ),
    }


def _scored(df: pl.DataFrame, segment_kind: str) -> pl.DataFrame:
    return df.filter((pl.col("segment_kind") == segment_kind) & pl.col("actual").is_not_null())


def accuracy(
    agent: pl.DataFrame, base: pl.DataFrame, *, segment_kind: str = "company"
) -> list[dict[str, Any]]:
    """One record per period kind and snapshot offset (and "all" offsets): each method's
    point scores, the agent's range scores, its CRPS skill against each baseline and its
    MAPE over each baseline's (``mape_ratio``: the P50 against the baseline on the
    snapshots both forecast, with its interval); over all points of a kind, also that
    ratio to the rep commit on the snapshots at which the calls are in (``calls_in``)."""
    a, b = _scored(agent, segment_kind), _scored(base, segment_kind)
    out: list[dict[str, Any]] = []
    if a.is_empty():
        return out
    groups = [
        (k, o)
        for k, o in a.select("period_kind", "offset")
        .unique()
        .sort("period_kind", "offset")
        .iter_rows()
    ]
    groups += [(k, None) for k in sorted(a["period_kind"].unique().to_list())]
    for kind, offset in groups:
        ga = a.filter(pl.col("period_kind") == kind)
        gb = b.filter(pl.col("period_kind") == kind)
        if offset is not None:
            ga, gb = ga.filter(pl.col("offset") == offset), gb.filter(pl.col("offset") == offset)
        rec: dict[str, Any] = {
            "period_kind": kind,
            "offset": "all" if offset is None else offset,
            "segment_kind": segment_kind,
            "periods": ga["period_start"].n_unique(),
        }
        act = ga["actual"].to_numpy()
        rec["agent"] = point_scores(act, ga["p50"].to_numpy())
        rec["agent_expected"] = point_scores(act, ga["expected"].to_numpy())
        # Over all points a period has several snapshots: they are not independent draws.
        rec["range"] = range_scores(
            act,
            ga["p10"].to_numpy(),
            ga["p50"].to_numpy(),
            ga["p90"].to_numpy(),
            crps=ga["crps"].to_numpy(),
            period=ga["period_start"].to_numpy() if offset is None else None,
        )
        rec["baselines"], rec["crps_skill"], rec["mape_ratio"] = {}, {}, {}
        keyed = ga.select("period_start", "offset", "segment", "crps", "p50")
        for method in sorted(gb["method"].unique().to_list()):
            m = gb.filter(pl.col("method") == method).join(
                keyed, on=["period_start", "offset", "segment"], how="inner"
            )
            rec["baselines"][method] = point_scores(m["actual"].to_numpy(), m["value"].to_numpy())
            # A point forecast's CRPS is its absolute error.
            base_crps = (
                float(np.mean(np.abs(m["value"].to_numpy() - m["actual"].to_numpy())))
                if len(m)
                else None
            )
            rec["crps_skill"][method] = (
                (1.0 - float(m["crps"].mean()) / base_crps) if base_crps else None
            )
            rec["mape_ratio"][method] = mape_ratio(
                m["period_start"].to_numpy(),
                m["actual"].to_numpy(),
                m["p50"].to_numpy(),
                m["value"].to_numpy(),
            )
        if offset is None:
            rec["calls_in"] = _calls_in(ga, gb)
        out.append(rec)
    return out


def deal_calibration(deals: pl.DataFrame, *, bins: int = 10) -> dict[str, Any]:
    """Brier score of the deal probabilities (and of the base rate, for scale) and the
    reliability curve, per period kind."""
    out: dict[str, Any] = {}
    for kind in sorted(deals["period_kind"].unique().to_list()) if len(deals) else []:
        d = deals.filter(pl.col("period_kind") == kind)
        p, y = d["p"].to_numpy(), d["won"].to_numpy().astype(float)
        out[kind] = {
            "predictions": len(d),
            "won_share": float(y.mean()),
            "brier": brier(p, y),
            "brier_base_rate": brier(np.full(len(y), y.mean()), y),
            "reliability": reliability(p, y, bins=bins).to_dicts(),
        }
    return out


def summary_table(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The accuracy records flattened for a person: one row per kind, offset and method
    (a baseline's row carries the agent's MAPE over its own, ``mape_ratio``, with the
    interval ``ratio_low``–``ratio_high``)."""
    rows = []
    for r in records:
        methods = {"agent": r["agent"], **r["baselines"]}
        for method, s in methods.items():
            row = {
                "period_kind": r["period_kind"],
                "offset": str(r["offset"]),
                "method": method,
                **{
                    k: s.get(k)
                    for k in ("n", "mape", "wape", "bias", "over_share", "within_5", "within_10")
                },
            }
            if method == "agent":
                rg = r["range"]
                row.update(
                    coverage=rg.get("coverage"),
                    crps=rg.get("crps"),
                    relative_width=rg.get("relative_width"),
                )
            else:
                ratio = r.get("mape_ratio", {}).get(method) or {}
                row.update(
                    coverage=None,
                    crps=None,
                    relative_width=None,
                    crps_skill=r["crps_skill"].get(method),
                    mape_ratio=ratio.get("ratio"),
                    ratio_low=ratio.get("low"),
                    ratio_high=ratio.get("high"),
                )
            rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
