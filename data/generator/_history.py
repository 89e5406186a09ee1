"""What the CRM records about each deal over time: one history row per change (stage,
amount, close date, forecast category), close-date slips, and the planted stage
violations. Each history row holds the deal's full state from then on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._config import RATES, stage_table
from revstack.data.generator._deals import Deals, reached
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
    return np.maximum(reached(d.entries), d.first)


def plant_violations(rng: np.random.Generator, d: Deals, clock: Clock) -> Violations:
    """Pick ~5% of the open deals and put each in a stage whose entry criteria it fails."""
    open_ok = ~d.crm_closed & ~d.phantom
    total = round(RATES.stage_violations * int((~d.crm_closed).sum()))
    per_kind = rng.multinomial(total, _KIND_P)
    kind = np.full(d.n, -1)
    stage = current_stage(d)
    for k, (target, _) in enumerate(VIOLATION_KINDS):  # five kinds
        # a deal without a buyer on record would fail discovery's engagement too
        people = d.m >= 1 if target == 2 else np.ones(d.n, bool)
        pool = np.flatnonzero(open_ok & (kind < 0) & (stage <= target) & people)
        kind[rng.choice(pool, size=min(per_kind[k], len(pool)), replace=False)] = k
    last = np.where(np.isfinite(d.entries), d.entries, d.created[:, None]).max(axis=1)
    at = np.maximum(clock.workweek(clock.now - rng.uniform(1, 25, d.n)), last + 0.1)
    return Violations(kind, np.where(kind >= 0, np.minimum(at, clock.now - 0.01), np.nan))


def _pushes(rng: np.random.Generator, clock: Clock, d: Deals, close0: np.ndarray) -> pl.DataFrame:
    """Close-date pushes: each time a deal is still open near its close date, the rep moves
    the date out. Deals that drag (lost ones, big ones) slip again and again."""
    now = clock.now
    # Most phantoms' close dates are left long past, but a rep pushes some dead deals on
    # out of habit; and some live deals are neglected: nobody has moved their close date
    # for weeks, so a stale close date alone does not mark a dead deal.
    zombie = d.phantom & (rng.random(d.n) < 0.3)
    alive = np.where(zombie, now, d.crm_end)
    cap = np.where(d.phantom & ~zombie, now - 35, np.inf)
    live = ~d.crm_closed & ~d.phantom
    stop = np.where(live & (rng.random(d.n) < 0.3), now - rng.uniform(10, 150, d.n), np.inf)
    c = close0.copy()
    rows = []
    active = np.flatnonzero(c < alive)
    while len(active):  # one round per push; deals drop out as they close
        lag = rng.uniform(-10, 7, len(active))
        tp = np.maximum(c[active] + lag, d.created[active] + 1)
        tp = np.maximum(clock.workweek(tp), d.created[active] + 0.01)  # on a working day
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
        ok = (tp < alive[active]) & (new <= cap[active]) & (tp < stop[active])
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
    bound = np.minimum(d.outcome, t_end)
    t_scope = d.created + rng.uniform(0.2, 0.6, n) * (bound - d.created)
    # changes happen on working days, between the deal's start and its end
    t_scope = np.clip(clock.workweek(t_scope), d.created + 0.01, bound - 0.001)
    e4 = d.entries[:, 3]
    disc = d.won & np.isfinite(e4) & (rng.random(n) < 0.25)
    t_disc = np.where(disc, np.maximum(clock.workweek(e4 + rng.uniform(0.5, 5, n)), e4), np.inf)
    t_disc = np.where(t_disc < bound, t_disc, np.inf)
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
                "stage": d.first,
                "close": close0,
                "amount": initial,
            }
        )
    ]
    k_deal, k_stage = np.nonzero(np.isfinite(d.entries))
    later = k_stage + 1 != d.first[k_deal]  # the stage it was opened in is the first row's
    k_deal, k_stage = k_deal[later], k_stage[later]
    ev.append(
        pl.DataFrame(
            {"deal": k_deal, "t": d.entries[k_deal, k_stage], "kind": 1, "stage": k_stage + 1}
        )
    )
    # a deal moved into a stage it fails stays there: no move back after that
    planted_at = pl.Series(np.where(v.kind >= 0, v.at, np.inf))
    back = _back_moves(rng, clock, d)
    ev.append(back.filter(pl.col("t") < planted_at.gather(back["deal"])))
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
    e3 = np.fmin(d.entries[:, 2], d.entries[:, 3])  # proposal or later, if it skipped it
    e3f = np.where(np.isfinite(e3), e3, d.created)
    t_cat = np.where(
        np.isfinite(e3), e3f + rng.random(n) * (np.minimum(d.outcome, t_end) - e3f), np.inf
    )
    t_cat = np.maximum(clock.workweek(t_cat), e3f)  # a working day, still after proposal
    call = np.isfinite(e3) & (rng.random(n) < 0.6) & (t_cat < np.minimum(d.outcome, t_end))
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

    # Pull-ins: a deal that speeds up has its close date brought forward (wins before
    # they close, and now and then any deal).
    pulls = _pull_ins(rng, clock, d, pushes, close0)
    if no_close.any():  # nor is a cleared close date pulled in
        pulls = pulls.filter(pl.col("t") < cut.gather(pulls["deal"]))
    ev.append(pulls)
    cc = np.flatnonzero(d.crm_closed)
    # At close-out most reps set the close date to the day; some leave the planned one
    # (or the quarter's end) standing, so the CRM's close date is not always the outcome.
    left = rng.random(len(cc)) < 0.12  # null: the date in force stays (forward-filled)
    ev.append(
        pl.DataFrame(
            {
                "deal": cc,
                "t": d.outcome[cc],
                "kind": 5,
                "stage": np.where(d.won[cc], 5, 6),
                "close": pl.Series(np.where(left, np.nan, d.outcome[cc])).fill_nan(None),
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
    # A push moves the date in force, which a pull-in may have changed since the push
    # before: truth.slips holds what the history shows, and only what moved the date later
    # (a push planned off a date a pull-in has since moved may land on or before it).
    pushes = (
        h.with_columns(old=pl.col("close").shift(1).over("deal"))
        .filter(
            (pl.col("kind") == 3)
            & pl.col("pull").is_null()
            & (pl.col("close").floor() > pl.col("old").floor())
        )
        .select("deal", "t", "old", "close")
    )
    return h.drop("pull"), pushes


def _back_moves(rng: np.random.Generator, clock: Clock, d: Deals) -> pl.DataFrame:
    """Deals moved back a stage (a new stakeholder, a re-scoped need) and, mostly, on again:
    a stage event back to the stage before and, for most, one forward again before the
    next move. A lost deal may be closed from the stage it fell back to."""
    n = d.n
    vis = np.isfinite(d.entries)
    vis &= np.arange(1, 5)[None, :] > d.first[:, None]  # moves after the opening stage
    pick = np.where(vis, rng.random((n, 4)), -1.0)
    c = np.argmax(pick, axis=1)  # a visited stage, at random
    t_k = np.where(vis.any(axis=1), d.entries[np.arange(n), c], d.created)
    earlier = np.isfinite(d.entries) & (np.arange(4)[None, :] < c[:, None])
    prev = np.where(earlier.any(axis=1), 4 - np.argmax(earlier[:, ::-1], axis=1), 0)
    after = np.where(np.arange(4)[None, :] > c[:, None], d.entries, np.inf).min(axis=1)
    end = np.where(d.crm_closed, d.outcome, np.minimum(d.crm_end, clock.now))
    t_next = np.minimum(after, end)
    go = vis.any(axis=1) & (t_next - t_k > 6) & (rng.random(n) < 0.12)
    t_b = t_k + rng.uniform(0.2, 0.6, n) * (t_next - t_k)
    t_f = t_b + rng.uniform(0.2, 0.8, n) * (t_next - t_b)
    t_b = np.clip(clock.workweek(t_b), t_k + 0.01, t_next - 0.02)
    t_f = np.clip(clock.workweek(t_f), t_b + 0.005, t_next - 0.01)
    last = ~np.isfinite(after)
    stays = d.crm_closed & ~d.won & last & (rng.random(n) < 0.5)  # closed lost from there
    b = np.flatnonzero(go)
    f = np.flatnonzero(go & ~stays)
    return pl.concat(
        [
            pl.DataFrame({"deal": b, "t": t_b[b], "kind": 1, "stage": prev[b]}),
            pl.DataFrame({"deal": f, "t": t_f[f], "kind": 1, "stage": c[f] + 1}),
        ]
    )


def _pull_ins(
    rng: np.random.Generator, clock: Clock, d: Deals, pushes: pl.DataFrame, close0: np.ndarray
) -> pl.DataFrame:
    """Close dates brought forward: a win coming sooner than the CRM says has its date
    pulled in days before it closes; some other deals are pulled in once on the way."""
    close = close0.copy()
    last = pushes.group_by("deal").agg(pl.col("t", "close").last())
    close[last["deal"].to_numpy()] = last["close"].to_numpy()
    t_last = np.full(d.n, -np.inf)
    t_last[last["deal"].to_numpy()] = last["t"].to_numpy()
    start = np.maximum(d.created + 0.5, t_last + 0.1)
    win = d.crm_closed & d.won & (close > d.outcome + 5) & (rng.random(d.n) < 0.6)
    t_win = np.maximum(clock.workweek(d.outcome - rng.uniform(2, 15, d.n)), start)
    win &= t_win < d.outcome
    new_win = np.floor(d.outcome) + rng.uniform(0, 4, d.n)
    # On the way: any deal, once, between two pushes' worth of time, by one to four weeks.
    end = np.where(d.crm_closed, d.outcome, np.minimum(d.crm_end, clock.now))
    t_any = clock.workweek(d.created + rng.uniform(0.2, 0.7, d.n) * (end - d.created))
    t_any = np.clip(t_any, d.created + 0.01, end - 0.01)
    some = ~win & (rng.random(d.n) < 0.2) & (end - d.created > 20)
    # the date then in force: the last push before t_any (else the first close date)
    p = pushes.sort("t")
    idx = np.flatnonzero(some)
    q = pl.DataFrame({"deal": idx, "t": t_any[idx]}).sort("t")
    then = q.join_asof(
        p.select("deal", "t", "close"),
        on="t",
        by="deal",
        strategy="backward",
        check_sortedness=False,
    )
    then_close = then["close"].fill_null(np.nan).to_numpy()
    deal_q = then["deal"].to_numpy()
    then_close = np.where(np.isnan(then_close), close0[deal_q], then_close)
    new_any = np.maximum(then_close - rng.uniform(7, 30, len(deal_q)), then["t"].to_numpy() + 3)
    keep = new_any < then_close
    w = np.flatnonzero(win)
    return pl.concat(
        [
            pl.DataFrame({"deal": w, "t": t_win[w], "kind": 3, "close": new_win[w]}),
            pl.DataFrame(
                {
                    "deal": deal_q[keep],
                    "t": then["t"].to_numpy()[keep],
                    "kind": 3,
                    "close": new_any[keep],
                }
            ),
        ]
    ).with_columns(pull=True)


def stage_names(idx: pl.Expr) -> pl.Expr:
    return idx.replace_strict(dict(enumerate(_STAGES)), return_dtype=pl.String)


def probabilities(stage: pl.Expr) -> pl.Expr:
    return stage.replace_strict(_PROB, return_dtype=pl.Float64)
