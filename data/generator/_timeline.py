"""What the CRM records about each deal over time: stage and close-date history, slips,
buying roles, activities (thinning before a loss), and future meetings."""

from __future__ import annotations

import numpy as np
import polars as pl

from data.generator._deals import CATEGORY_OF_STAGE, DAY, NEEDED_ENGAGED, OPEN_STAGES, Deals, _days

__all__ = ["history_and_slips", "final_roles", "activities"]

_PROB = {"prospecting": 0.05, "qualification": 0.10, "discovery": 0.20, "proposal": 0.40,
         "negotiation": 0.70, "closed_won": 1.0, "closed_lost": 0.0}  # fmt: skip
_TYPES = [("email", "outbound", 0.42), ("email", "inbound", 0.20), ("call", "outbound", 0.15),
          ("call", "two_way", 0.06), ("meeting", "two_way", 0.17)]  # fmt: skip


def _quarter(t: np.ndarray) -> np.ndarray:
    return t.astype("datetime64[M]").astype(int) // 3


def history_and_slips(
    rng: np.random.Generator, d: Deals, now: np.datetime64, violators: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(history rows, slips, final CRM state per deal)."""
    o = d.opps
    n = len(o)
    created = o["created_at"].to_numpy()
    amount = o["amount"].to_numpy()
    won = o["won"].to_numpy()
    crm_closed = o["crm_closed"].to_numpy()
    end = d.end
    cycle_days = (o["outcome_at"].to_numpy() - created) / DAY
    close0 = created + _days(cycle_days * rng.uniform(0.5, 0.95, n))
    # Pushes: lost and large deals slip more; a few slip again and again.
    lam = 0.35 + 0.8 * ~won + 0.25 * np.maximum(np.log(amount / 18_000), 0)
    pushes = rng.poisson(lam)
    deal = np.repeat(np.arange(n), pushes)
    t_push = created[deal] + _days(rng.random(len(deal)) * ((end - created)[deal] / DAY))
    delta = _days(rng.uniform(14, 45, len(deal)))
    p = pl.DataFrame({"deal": deal, "t": t_push, "delta": delta}).sort("deal", "t")
    p = p.with_columns(base=pl.Series(close0[p["deal"].to_numpy()]))
    # Each push moves the date out from the later of the old date and the day of the push.
    p = p.with_columns(
        close=pl.max_horizontal(
            pl.col("base") + pl.col("delta").cum_sum().over("deal"), pl.col("t") + pl.col("delta")
        )
        .cum_max()
        .over("deal")
    )
    p = p.with_columns(old=pl.col("close").shift(1).over("deal").fill_null(pl.col("base")))
    slips = p.select(
        opportunity_id=pl.Series(o["opportunity_id"].to_numpy()[p["deal"].to_numpy()]),
        slipped_at="t",
        old_close_date=pl.col("old").dt.date(),
        new_close_date=pl.col("close").dt.date(),
    ).with_columns(
        out_of_period=pl.Series(_quarter(p["close"].to_numpy()) > _quarter(p["old"].to_numpy()))
    )
    last_close = p.group_by("deal").agg(pl.col("close").last())
    crm_close = close0.copy()
    crm_close[last_close["deal"].to_numpy()] = last_close["close"].to_numpy()
    crm_close = np.where(crm_closed, o["outcome_at"].to_numpy(), crm_close)

    # Events, each changing one thing; forward-filled into full states afterwards.
    ev = [pl.DataFrame({"deal": np.arange(n), "t": created, "stage": OPEN_STAGES[0], "amount": amount,
                        "close": close0, "category": "pipeline"})]  # fmt: skip
    k_deal, k_stage = np.nonzero(d.entered)
    ev.append(pl.DataFrame({"deal": k_deal, "t": d.entries[k_deal, k_stage],
                            "stage": np.array(OPEN_STAGES)[k_stage + 1], "category": CATEGORY_OF_STAGE[k_stage + 1]}))  # fmt: skip
    ev.append(p.select("deal", "t", "close"))
    change = rng.random(n) < 0.15
    ci = np.flatnonzero(change)
    new_amount = np.round(amount[ci] * rng.uniform(0.7, 1.3, len(ci)), -2)
    ev.append(
        pl.DataFrame(
            {
                "deal": ci,
                "t": created[ci] + _days(rng.random(len(ci)) * ((end - created)[ci] / DAY)),
                "amount": new_amount,
            }
        )
    )
    cc = np.flatnonzero(crm_closed)
    ev.append(pl.DataFrame({"deal": cc, "t": o["outcome_at"].to_numpy()[cc],
                            "stage": np.where(won[cc], "closed_won", "closed_lost"),
                            "close": o["outcome_at"].to_numpy()[cc], "category": np.where(won[cc], "closed", "omitted")}))  # fmt: skip
    # Deals placed in a stage they do not qualify for: moved up to proposal recently.
    vi = np.flatnonzero(violators)
    last_entry = np.where(d.entered, d.entries, created[:, None]).max(axis=1)
    moved = np.maximum(
        now - _days(rng.uniform(1, 20, len(vi))), last_entry[vi] + _days(np.full(len(vi), 0.05))
    )
    ev.append(
        pl.DataFrame(
            {"deal": vi, "t": np.minimum(moved, now), "stage": "proposal", "category": "best_case"}
        )
    )
    hist = (
        pl.concat(ev, how="diagonal_relaxed")
        .with_columns(kind=pl.int_range(pl.len()), stage_event=pl.col("stage").is_not_null())
        .sort("deal", "t", "kind")
        .with_columns(
            [
                pl.col(c).forward_fill().over("deal")
                for c in ("stage", "amount", "close", "category")
            ]
        )
    )
    # The rep's private knowledge shows in the category of late-stage deals.
    hist = hist.with_columns(
        probability=pl.col("stage").replace_strict(_PROB, return_dtype=pl.Float64),
    )
    final = hist.group_by("deal").agg(pl.all().last()).sort("deal")
    return hist, slips, final


def final_roles(
    rng: np.random.Generator,
    d: Deals,
    stage_idx: np.ndarray,
    open_crm: np.ndarray,
    violators: np.ndarray,
) -> pl.DataFrame:
    """Deal roles as the CRM holds them: qualifying open deals show the roles their stage needs."""
    r = d.roles.with_columns(stage=pl.Series(stage_idx[d.roles["deal"].to_numpy()]),
                             open=pl.Series(open_crm[d.roles["deal"].to_numpy()]),
                             violator=pl.Series(violators[d.roles["deal"].to_numpy()]))  # fmt: skip
    has = r.group_by("deal").agg(
        (pl.col("role") == "economic_buyer").any().alias("eb"),
        (pl.col("role") == "champion").any().alias("ch"),
    )
    r = r.join(has, on="deal")
    fix = pl.col("open") & ~pl.col("violator")
    r = r.with_columns(
        role=pl.when(fix & (pl.col("stage") >= 3) & ~pl.col("eb") & (pl.col("j") == 1)).then(pl.lit("economic_buyer"))
        .when(fix & (pl.col("stage") >= 4) & ~pl.col("ch") & (pl.col("j") == 2)).then(pl.lit("champion"))
        .otherwise("role")
    )  # fmt: skip
    # Violators lack an economic buyer on record (that is the definition they break).
    r = r.with_columns(
        role=pl.when(pl.col("violator") & (pl.col("role") == "economic_buyer"))
        .then(pl.lit("user"))
        .otherwise("role")
    )
    return r.select("deal", "j", "contact_idx", "role")


def activities(rng: np.random.Generator, d: Deals, rate: float, now: np.datetime64, stage_idx: np.ndarray,
               open_crm: np.ndarray, violators: np.ndarray) -> pl.DataFrame:  # fmt: skip
    o = d.opps
    n = len(o)
    created = o["created_at"].to_numpy()
    won = o["won"].to_numpy()
    closed_real = o["closed"].to_numpy()
    weeks = np.maximum((d.end - created) / DAY / 7, 0.1)
    m = o["m"].to_numpy()
    r = rate * (0.6 + 0.2 * m) * rng.uniform(0.7, 1.3, n)
    count = rng.poisson(r * weeks)
    deal = np.repeat(np.arange(n), count)
    t = created[deal] + _days(rng.random(len(deal)) * (weeks[deal] * 7))
    # Lost deals go quiet in their last weeks (most of them); some won deals have a lull.
    quiet_len = _days(rng.uniform(14, 45, n))
    goes_quiet = closed_real & ~won & (rng.random(n) < 0.75)
    lull_start = created + _days(rng.random(n) * np.maximum(weeks * 7 - 21, 1))
    lull = won & (rng.random(n) < 0.25)
    in_quiet = goes_quiet[deal] & (t > d.end[deal] - quiet_len[deal])
    in_lull = lull[deal] & (t > lull_start[deal]) & (t < lull_start[deal] + 21 * DAY)
    keep = ~(
        (in_quiet & (rng.random(len(deal)) > 0.15)) | (in_lull & (rng.random(len(deal)) > 0.3))
    )
    deal, t = deal[keep], t[keep]
    # Which contact: one of the deal's buyers.
    roles = d.roles
    first = np.zeros(n, dtype=np.int64)
    firsts = roles.with_row_index("i").group_by("deal").agg(pl.col("i").min())
    first[firsts["deal"].to_numpy()] = firsts["i"].to_numpy()
    pick = first[deal] + (rng.random(len(deal)) * m[deal]).astype(np.int64)
    cidx = roles["contact_idx"].to_numpy()[pick]
    left = roles["left_at"].to_numpy()[pick]
    kinds = rng.choice(len(_TYPES), size=len(deal), p=[k[2] for k in _TYPES])
    atype = np.array([k[0] for k in _TYPES])[kinds]
    direction = np.array([k[1] for k in _TYPES])[kinds]
    gone = ~np.isnat(left) & (left < t)  # nobody answers for a departed contact
    atype = np.where(gone, "email", atype)
    direction = np.where(gone, "outbound", direction)
    frames = [
        pl.DataFrame(
            {
                "deal": deal,
                "contact_idx": cidx,
                "t": t,
                "type": atype,
                "direction": direction,
                "status": "completed",
            }
        )
    ]
    # Qualifying open deals: the engaged contacts their stage requires, met before as-of.
    need = np.where(open_crm & ~violators, NEEDED_ENGAGED[stage_idx], 0)
    gd = np.repeat(np.arange(n), need)
    gj = np.arange(len(gd)) - np.repeat(np.cumsum(need) - need, need)
    gt = created[gd] + _days(rng.random(len(gd)) * ((now - created[gd]) / DAY))
    frames.append(pl.DataFrame({"deal": gd, "contact_idx": roles["contact_idx"].to_numpy()[first[gd] + gj], "t": gt,
                                "type": "meeting", "direction": "two_way", "status": "completed"}))  # fmt: skip
    # Meetings already booked for the coming two weeks (deal prep needs them).
    booked = np.flatnonzero(open_crm & (rng.random(n) < 0.35))
    frames.append(pl.DataFrame({"deal": booked, "contact_idx": roles["contact_idx"].to_numpy()[first[booked]],
                                "t": now + _days(rng.uniform(0.2, 14, len(booked))), "type": "meeting",
                                "direction": "two_way", "status": "scheduled"}))  # fmt: skip
    return pl.concat(frames).sort("t")
