"""Rep forecast submissions and the revenue they are judged against.

A rep's commit is what is already won plus their call on the rest of the period. The
call mixes what the CRM shows (late-stage pipeline closing in the period, weighted the
way a sensible rep would) with what they privately know (the deals that will really
close), in proportion to their `insight`, and is bent by their `commit_bias`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from revstack.data.generator._deals import Deals
from revstack.data.generator._people import Team
from revstack.data.generator._util import Clock, ids, working_hours

__all__ = ["revenue", "submissions"]

_OFFSETS = {"quarter": [0, 28, 56], "month": [0, 14]}
_MISSED = 0.05  # share of due submissions a rep never makes
_SKIPPED = 0.04  # share of (rep, period) with no submission at all
_MOOD = 0.2  # spread of the mood a period's calls share
_LENGTH = {"quarter": 91.0, "month": 30.4}


def _periods(clock: Clock, period: str) -> np.ndarray:
    """Start days of every period overlapping the history, up to as-of."""
    step = 3 if period == "quarter" else 1
    first = (clock.month(np.array([0.0]))[0] // step) * step
    last = clock.month(np.array([clock.now]))[0]
    months = np.arange(first, last + 1, step)
    return clock.days(months.astype("datetime64[M]").astype("datetime64[us]"))


def revenue(clock: Clock, d: Deals, team: Team) -> pl.DataFrame:
    """Won revenue per owner and period (month and quarter), by the day it was really won."""
    won = d.won & d.closed
    w = pl.DataFrame(
        {
            "owner_id": team.rep_ids[d.owner_final[won]],
            "amount": d.amount[won],
            "day": clock.date(d.outcome[won]),
        }
    )
    return pl.concat(
        [
            w.with_columns(
                period_type=pl.lit(p),
                period_start=pl.col("day").dt.truncate("1q" if p == "quarter" else "1mo"),
            )
            .group_by("period_type", "period_start", "owner_id")
            .agg(won_amount=pl.col("amount").sum(), won_deals=pl.len())
            for p in ("month", "quarter")
        ]
    ).sort("period_type", "period_start", "owner_id")


def _points(clock: Clock) -> pl.DataFrame:
    rows = []
    for period, offsets in _OFFSETS.items():
        starts = _periods(clock, period)
        ends = np.r_[
            starts[1:],
            clock.quarter_end(np.array([clock.now]))[0]
            if period == "quarter"
            else clock.days(
                np.array([(clock.month(np.array([clock.now]))[0] + 1)])
                .astype("datetime64[M]")
                .astype("datetime64[us]")
            )[0],
        ]
        for off in offsets:
            rows.append(
                pl.DataFrame(
                    {
                        "period_type": period,
                        "p0": starts,
                        "p1": ends,
                        "s": starts + off + 9 / 24,
                        "frac": off / _LENGTH[period],
                    }
                )
            )
    pts = (
        pl.concat(rows)
        .filter((pl.col("s") >= 0) & (pl.col("s") <= clock.now))
        .sort("s", "period_type")
    )
    return pts.with_row_index("pid")


def submissions(
    rng: np.random.Generator, clock: Clock, d: Deals, team: Team, h: pl.DataFrame
) -> pl.DataFrame:
    """Every employed rep's commit and best case at each submission point."""
    pts = _points(clock)
    s = pts["s"].to_numpy()
    reassign = np.where(
        team.rep_leave[d.owner_first] < d.crm_end, team.rep_leave[d.owner_first], np.inf
    )
    # Pipeline each rep sees at each point: deals open then, in their state then.
    alive_end = np.where(d.crm_closed, d.outcome, clock.now)
    lo = np.searchsorted(s, d.created)
    hi = np.searchsorted(s, alive_end)
    k = np.maximum(hi - lo, 0)
    deal = np.repeat(np.arange(d.n), k)
    pid = lo[deal] + np.arange(len(deal)) - np.repeat(np.cumsum(k) - k, k)
    pairs = pl.DataFrame(
        {"deal": deal.astype(np.int32), "pid": pid.astype(np.uint32), "t": s[pid]}
    ).sort("t")
    state = h.select("deal", "t", "stage", "close", "category").sort("t")
    pairs = pairs.join_asof(state, on="t", by="deal", strategy="backward", check_sortedness=False)
    pairs = pairs.join(pts.select("pid", "p0", "p1"), on="pid").filter(
        (pl.col("stage") < 5) & (pl.col("close") >= pl.col("p0")) & (pl.col("close") < pl.col("p1"))
    )
    dl = pairs["deal"].to_numpy()
    owner = np.where(pairs["t"].to_numpy() < reassign[dl], d.owner_first[dl], d.owner_final[dl])
    pipe = (
        pairs.with_columns(rep=pl.Series(owner), amount=pl.Series(d.amount[dl]))
        .group_by("pid", "rep")
        .agg(
            commit=pl.col("amount").filter(pl.col("category") == "commit").sum(),
            best=pl.col("amount").filter(pl.col("category") == "best_case").sum(),
            other=pl.col("amount").filter(pl.col("category") == "pipeline").sum(),
        )
    )
    # Wins of each period, split at each point into already won and still to come.
    won = np.flatnonzero(d.won)
    wins = pl.DataFrame({"rep": d.owner_final[won], "day": d.outcome[won], "amount": d.amount[won]})
    wins = _win_pairs(wins, pts)
    wins = (
        wins.filter((pl.col("day") >= pl.col("p0")) & (pl.col("day") < pl.col("p1")))
        .group_by("pid", "rep")
        .agg(
            so_far=pl.col("amount").filter(pl.col("day") < pl.col("s")).sum(),
            to_come=pl.col("amount").filter(pl.col("day") >= pl.col("s")).sum(),
        )
    )
    # Every rep employed at the point submits.
    reps = pl.DataFrame(
        {"rep": np.arange(len(team.rep_ids)), "hire": team.rep_hire, "leave": team.rep_leave}
    )
    grid = pts.join(reps, how="cross").filter(
        (pl.col("hire") <= pl.col("s")) & (pl.col("s") < pl.col("leave"))
    )
    grid = (
        grid.join(pipe, on=["pid", "rep"], how="left")
        .join(wins, on=["pid", "rep"], how="left")
        .with_columns(pl.col("commit", "best", "other", "so_far", "to_come").fill_null(0.0))
    )
    # A sensible rep's reading of the CRM, scaled by their own track record (a rep knows
    # how much of their pipeline usually lands), so what is left is bias and private news.
    view = pl.col("commit") * 0.6 + pl.col("best") * 0.25 + pl.col("other") * 0.05
    grid = grid.with_columns(view=view)
    # Half of it is their usual run rate: what they tend to close from this point on.
    scale = grid.group_by("rep", "period_type", "frac").agg(
        k=pl.col("to_come").sum() / pl.col("view").sum().clip(1.0), usual=pl.col("to_come").mean()
    )
    grid = grid.join(scale, on=["rep", "period_type", "frac"]).sort("pid", "rep")
    grid = grid.with_columns(expect=0.5 * pl.col("k") * pl.col("view") + 0.5 * pl.col("usual"))
    r = grid["rep"].to_numpy()
    frac = grid["frac"].to_numpy()
    ins = team.traits["insight"].to_numpy()[r] * (0.45 + 0.5 * frac / 0.62)
    ins = np.clip(ins, 0, 1)
    bias = team.traits["commit_bias"].to_numpy()[r]
    noise = np.exp(rng.normal(0, 0.2 * (1 - 0.5 * frac), len(grid)))
    # The whole floor reads a quarter the same way (a strong pipeline review, a scare):
    # one mood per period that every rep's call shares, so the company's commit misses
    # as a whole instead of its reps' errors cancelling out.
    quarter = (grid["period_type"] == "quarter").to_numpy()
    _, period = np.unique(
        np.round(grid["p0"].to_numpy()).astype(np.int64) * 2 + quarter, return_inverse=True
    )
    mood = rng.normal(0, _MOOD, int(period.max()) + 1 if len(period) else 0)
    noise = noise * np.exp(mood[period] * (1 - 0.5 * frac))
    call = bias * noise * (ins * grid["to_come"].to_numpy() + (1 - ins) * grid["expect"].to_numpy())
    commit = np.round(grid["so_far"].to_numpy() + call, -2)
    upside = (
        bias
        * (0.5 * grid["best"].to_numpy() + 0.3 * grid["commit"].to_numpy())
        * rng.uniform(0.8, 1.2, len(grid))
    )
    # Reps submit when they get to it: on the day or up to two working days late, at any
    # working hour, and now and then not at all (a busy week, a holiday).
    when = _submitted(rng, clock, grid["s"].to_numpy() - 9 / 24)
    # at a working hour of the rep's own zone, stored in UTC (never after as-of)
    zone = team.seat_zone[team.rep_seat[r]]
    when = np.minimum(team.zones.to_utc(when, zone), clock.now - 1 / 86_400)
    key = (np.round(grid["p0"].to_numpy()).astype(np.int64) * 2 + quarter) * len(team.rep_ids) + r
    _, rep_period = np.unique(key, return_inverse=True)
    skipped = rng.random(int(rep_period.max()) + 1 if len(key) else 0) < _SKIPPED
    sent = (rng.random(len(grid)) >= _MISSED) & ~skipped[rep_period]
    out = (
        pl.DataFrame(
            {
                "user_id": team.rep_ids[r],
                "period_type": grid["period_type"],
                "period_start": clock.date(grid["p0"].to_numpy()),
                "submitted_at": clock.ts(when),
                "commit_amount": commit,
                "best_case_amount": np.maximum(np.round(commit + upside, -2), commit),
            }
        )
        .filter(pl.Series(sent))
        .sort("submitted_at", "user_id", "period_type")
    )
    return out.with_columns(submission_id=ids("F", len(out), 9))


def _submitted(rng: np.random.Generator, clock: Clock, day: np.ndarray) -> np.ndarray:
    """The moment each submission due on `day` (midnight) is made: the first working day
    on or after it, plus 0-2 working days for some, at a working hour; never after as-of."""
    day = np.floor(day) + rng.choice([0, 0, 0, 0, 1, 1, 2], size=len(day))
    wd = clock.weekday(day)
    day = day + np.where(wd >= 5, 7 - wd, 0)
    return np.minimum(day + working_hours(rng, len(day)) / 24, clock.now - 0.001)


def _win_pairs(wins: pl.DataFrame, pts: pl.DataFrame) -> pl.DataFrame:
    """Each win with the points of its own periods (a handful), for big companies."""
    out = []
    for period in _OFFSETS:  # month and quarter
        p = pts.filter(pl.col("period_type") == period).select("pid", "p0", "p1", "s").sort("p0")
        starts = np.unique(p["p0"].to_numpy())
        w = wins.with_columns(
            p0=pl.Series(
                starts[
                    np.maximum(np.searchsorted(starts, wins["day"].to_numpy(), side="right") - 1, 0)
                ]
            )
        )
        out.append(w.join(p, on="p0"))
    return pl.concat(out, how="diagonal")
