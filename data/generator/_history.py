"""What the CRM records about each deal over time: one history row per change (stage,
amount, close date, forecast category), close-date slips, and the planted stage
violations. Each history row holds the deal's full state from then on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._config import RATES, stage_table
from revstack.data.generator._deals import Deals
from revstack.data.generator._util import Clock

__all__ = ["Violations", "plant_violations", "history", "VIOLATION_KINDS"]

# kind: (stage it sits in, what it lacks)
VIOLATION_KINDS = [
    (3, "in proposal without an economic buyer"),
    (3, "in proposal with fewer than 2 engaged contacts"),
    (4, "in negotiation with fewer than 3 engaged contacts"),
    (4, "in negotiation without a champion"),
    (2, "in discovery without a close date"),
]
_KIND_P = np.array([0.3, 0.2, 0.2, 0.15, 0.15])
_STAGES = [s["key"] for s in stage_table()]
_PROB = {s["key"]: float(s["probability"]) for s in stage_table()}
_DEFAULT_CATEGORY = np.array([s["forecast_category"] for s in stage_table()])


@dataclass
class Violations:
    kind: np.ndarray  # per deal: index into VIOLATION_KINDS, -1 for none
    at: np.ndarray  # day the deal was moved into the stage it fails


def current_stage(d: Deals) -> np.ndarray:
    return np.isfinite(d.entries).sum(axis=1)


def plant_violations(rng: np.random.Generator, d: Deals, clock: Clock) -> Violations:
    """Pick ~5% of the open deals and put each in a stage whose entry criteria it fails."""
    open_ok = ~d.crm_closed & ~d.phantom
    total = round(RATES.stage_violations * int((~d.crm_closed).sum()))
    per_kind = rng.multinomial(total, _KIND_P)
    kind = np.full(d.n, -1)
    stage = current_stage(d)
    for k, (target, _) in enumerate(VIOLATION_KINDS):  # five kinds
        pool = np.flatnonzero(open_ok & (kind < 0) & (stage <= target))
        kind[rng.choice(pool, size=min(per_kind[k], len(pool)), replace=False)] = k
    last = np.where(np.isfinite(d.entries), d.entries, d.created[:, None]).max(axis=1)
    at = np.maximum(clock.now - rng.uniform(1, 25, d.n), last + 0.1)
    return Violations(kind, np.where(kind >= 0, np.minimum(at, clock.now - 0.01), np.nan))


def _pushes(rng: np.random.Generator, clock: Clock, d: Deals, close0: np.ndarray) -> pl.DataFrame:
    """Close-date pushes: each time a deal is still open near its close date, the rep moves
    the date out. Deals that drag (lost ones, big ones) slip again and again."""
    alive = d.crm_end
    # Nobody touches a phantom's close date in its last weeks: it is left long past.
    cap = np.where(d.phantom, clock.now - 35, np.inf)
    c = close0.copy()
    rows = []
    active = np.flatnonzero(c < alive)
    while len(active):  # one round per push; deals drop out as they close
        lag = rng.uniform(-10, 7, len(active))
        tp = np.maximum(c[active] + lag, d.created[active] + 1)
        # Dying deals are pushed in short steps, again and again.
        step = np.where(
            d.won[active], rng.uniform(14, 45, len(active)), rng.uniform(10, 35, len(active))
        )
        qend = clock.quarter_end(tp + step)
        new = np.where(
            rng.random(len(active)) < 0.2,
            np.maximum(qend - rng.uniform(0.5, 5, len(active)), tp + 7),
            tp + step,
        )
        ok = (tp < alive[active]) & (new <= cap[active])
        idx, tp, new = active[ok], tp[ok], new[ok]
        rows.append(pl.DataFrame({"deal": idx, "t": tp, "old": c[idx], "close": new}))
        c[idx] = new
        active = idx[c[idx] < alive[idx]]
    return (
        pl.concat(rows)
        if rows
        else pl.DataFrame(
            schema={"deal": pl.Int64, "t": pl.Float64, "old": pl.Float64, "close": pl.Float64}
        )
    )


def history(
    rng: np.random.Generator,
    clock: Clock,
    d: Deals,
    v: Violations,
    insight: np.ndarray,
    bias: np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(full-state history rows per deal in time order, slips)."""
    n = d.n
    now = clock.now
    size = d.amount / np.median(d.amount)
    close0 = d.created + d.planned * rng.uniform(0.55, 0.95, n) * size**-0.08
    close0 = np.where(d.phantom, np.minimum(close0, d.outcome), close0)  # left long past
    pushes = _pushes(rng, clock, d, close0)
    no_close = v.kind == 4
    if no_close.any():  # a cleared close date takes no more pushes
        cut = pl.Series(np.where(no_close, v.at, np.inf))
        pushes = pushes.filter(pl.col("t") < cut.gather(pushes["deal"]))
    # Amounts: re-scoped once in a third of deals, discounted at negotiation in a quarter of wins.
    t_end = np.minimum(d.crm_end, now)
    scope = rng.random(n) < 0.33
    t_scope = d.created + rng.uniform(0.2, 0.6, n) * (np.minimum(d.outcome, t_end) - d.created)
    e4 = d.entries[:, 3]
    disc = d.won & np.isfinite(e4) & (rng.random(n) < 0.25)
    t_disc = np.where(disc, e4 + rng.uniform(0.5, 5, n), np.inf)
    t_disc = np.where(t_disc < np.minimum(d.outcome, t_end), t_disc, np.inf)
    disc = np.isfinite(t_disc)
    t_scope = np.where(scope & (t_scope < t_disc), t_scope, np.inf)
    scope = np.isfinite(t_scope)
    after_scope = np.round(np.where(disc, d.amount * rng.uniform(1.05, 1.25, n), d.amount), -2)
    initial = np.round(np.where(scope, after_scope * rng.uniform(0.7, 1.4, n), after_scope), -2)
    ev = [
        pl.DataFrame(
            {
                "deal": np.arange(n),
                "t": d.created,
                "kind": 0,
                "stage": 0,
                "close": close0,
                "amount": initial,
            }
        )
    ]
    k_deal, k_stage = np.nonzero(np.isfinite(d.entries))
    ev.append(
        pl.DataFrame(
            {"deal": k_deal, "t": d.entries[k_deal, k_stage], "kind": 1, "stage": k_stage + 1}
        )
    )
    ev.append(pushes.select("deal", "t", pl.lit(3).alias("kind"), "close"))
    ev.append(
        pl.DataFrame(
            {
                "deal": np.flatnonzero(scope),
                "t": t_scope[scope],
                "kind": 2,
                "amount": after_scope[scope],
            }
        )
    )
    ev.append(
        pl.DataFrame(
            {"deal": np.flatnonzero(disc), "t": t_disc[disc], "kind": 2, "amount": d.amount[disc]}
        )
    )

    # The rep's call on late-stage deals: an upgrade to commit or a downgrade to best
    # case, partly from what they know (insight) and bent by their optimism (bias).
    e3 = d.entries[:, 2]
    e3f = np.where(np.isfinite(e3), e3, d.created)
    t_cat = np.where(
        np.isfinite(e3), e3f + rng.random(n) * (np.minimum(d.outcome, t_end) - e3f), np.inf
    )
    call = np.isfinite(e3) & (rng.random(n) < 0.6) & (t_cat < t_end)
    knows = d.won & (d.outcome < clock.quarter_end(t_cat))
    ins = insight[d.owner_first]
    belief = (ins * knows + (1 - ins) * rng.random(n)) * bias[d.owner_first]
    in_nego = t_cat >= e4
    cat = np.where(
        in_nego, np.where(belief < 0.45, "best_case", ""), np.where(belief > 0.65, "commit", "")
    )
    call &= cat != ""
    ev.append(
        pl.DataFrame(
            {"deal": np.flatnonzero(call), "t": t_cat[call], "kind": 4, "category": cat[call]}
        )
    )

    cc = np.flatnonzero(d.crm_closed)
    ev.append(
        pl.DataFrame(
            {
                "deal": cc,
                "t": d.outcome[cc],
                "kind": 5,
                "stage": np.where(d.won[cc], 5, 6),
                "close": d.outcome[cc],
            }
        )
    )
    vi = np.flatnonzero(v.kind >= 0)
    target = np.array([k[0] for k in VIOLATION_KINDS])[v.kind[vi]]
    keep = v.kind[vi] != 4
    ev.append(
        pl.DataFrame({"deal": vi[keep], "t": v.at[vi[keep]], "kind": 6, "stage": target[keep]})
    )
    cleared = vi[~keep]  # moved into discovery with the close date cleared (NaN, not null)
    ev.append(
        pl.DataFrame(
            {
                "deal": cleared,
                "t": v.at[cleared],
                "kind": 6,
                "stage": target[~keep],
                "close": np.nan,
            }
        )
    )
    h = pl.concat(ev, how="diagonal_relaxed").with_columns(
        stage_event=pl.col("stage").is_not_null()
    )
    h = h.with_columns(
        category=pl.coalesce(
            "category",
            pl.col("stage").replace_strict(dict(enumerate(_DEFAULT_CATEGORY)), default=None),
        )
    )
    h = (
        h.sort("deal", "t", "kind")
        .with_columns(
            [
                pl.col(c).forward_fill().over("deal")
                for c in ("stage", "amount", "close", "category")
            ]
        )
        .with_columns(
            pl.col("category").cast(
                pl.Enum(["pipeline", "best_case", "commit", "closed", "omitted"])
            ),
            pl.col("stage").cast(pl.Int8),
            pl.col("deal").cast(pl.Int32),
        )
    )
    return h, pushes


def stage_names(idx: pl.Expr) -> pl.Expr:
    return idx.replace_strict(dict(enumerate(_STAGES)), return_dtype=pl.String)


def probabilities(stage: pl.Expr) -> pl.Expr:
    return stage.replace_strict(_PROB, return_dtype=pl.Float64)
