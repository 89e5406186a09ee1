"""The rolling backtest, and the live forecast as its last step.

Every snapshot point of every period (months: day 0 and 14; quarters: day 0, 28, 56)
from ``eval_from`` on is forecast with only what was known at its moment: the deal
model is refit every ``refit_months`` on deals whose periods had ended by then, the
copula loadings come from earlier out-of-sample snapshots, the new-business series
from periods over by the moment, the combination with the reps' commit from the team
records of snapshots of the same kind and point scored by the moment (``_combine``; for
quarters also the season, from every point of past quarters), and the
range correction of each kind of segment (company, regions, teams, reps) from the PITs
of segments of that kind in periods over by the moment. The live snapshot (the data's as-of) is the same computation.

A snapshot whose period is over is final: ``Forecast.scored`` holds what later snapshots
and the report take from each, and ``reuse`` hands those of an earlier run back, so they
are not drawn again (``_cache`` decides when that is safe). A refit whose snapshots are
all reused is not fitted again either; one with any snapshot to compute is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import polars as pl

from revstack.agents.forecast import _frames, _inputs, _periods, _sample, _signals, _states
from revstack.agents.forecast._baselines import baselines
from revstack.agents.forecast._calibrate import LevelMap
from revstack.agents.forecast._combine import Record, combine, season_of, slot, with_season
from revstack.agents.forecast._model import FIT_COLUMNS, BaggedWinModel
from revstack.agents.forecast._newbiz import NewBusiness, new_series, rep_shares
from revstack.agents.forecast._sample_range import widen
from revstack.agents.forecast._simulate import pick_rho, variance_grid
from revstack.agents.forecast._snapshot import (
    CRPS_LEVELS,
    Segments,
    SnapshotDraws,
    draw_snapshot,
    segment_pits,
    spread,
    summarise,
)
from revstack.agents.forecast._stored import as_read, model_key, seen_rows
from revstack.data.progress import Progress, report

__all__ = [
    "COMBINE_WITH",
    "Forecast",
    "Open",
    "Reuse",
    "Scored",
    "default_start",
    "run_forecast",
    "prepare",
]

KEY = _frames.KEY
_QUANTILES = np.array([0.1, 0.5, 0.9])
# The commit the simulation is combined with: the filled commit, each rep's call or, for
# a rep who has not called, their wins and pipeline at its stages' past rates. Against
# the calls alone, a team half of whose reps have called looks like a low call, and on a
# period's first day nobody has called, so the simulation stood alone where the plain
# stage-weighted pipeline beat it on small companies (docs/forecast.md, Measured,
# Combined with which commit).
COMBINE_WITH = "rep_commit"
_FILLED = ("rep_commit", "rep_commit_crm_fill")  # the commits with a rep's call filled in


@dataclass
class Forecast:
    agent: pl.DataFrame  # per snapshot and segment: range, expected, parts, actual, crps
    baselines: pl.DataFrame  # per snapshot, segment and baseline: value, actual
    deals: pl.DataFrame  # out-of-sample deal probabilities with their outcome (periods over)
    drivers: pl.DataFrame  # live snapshots: the deals that drive the range
    params: dict[str, Any] = field(default_factory=dict)
    scored: list[Scored] = field(default_factory=list)  # snapshots of periods over, in order
    # The deal models the run used, by ``_stored.model_key``: (refit day, model).
    models: dict[str, tuple[dt.date, BaggedWinModel]] = field(default_factory=dict)
    # Past snapshots of periods still open at the as-of, in order (``Open``).
    open: list[Open] = field(default_factory=list)
    # With ``run_forecast(shadow=)``: past snapshots of periods over, drawn over every
    # owner with what the sample's snapshots taught (``summarise``'s rows, tagged).
    shadow: pl.DataFrame | None = None


def _months_later(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    return dt.date(day.year + m // 12, m % 12 + 1, 1)


def default_start(first: dt.date, as_of: dt.datetime) -> dt.date:
    """First month scored: a quarter of the history (at least 90 days) is kept for training."""
    keep = max((as_of.date() - first).days // 4, 90)
    day = first + dt.timedelta(days=keep)
    return day if day.day == 1 else _months_later(day, 1)


def prepare(
    inp: _inputs.Inputs,
    until: dt.datetime | None = None,
    kept: _states.Kept | None = None,
    *,
    sample_size: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Everything computed once: snapshots (up to ``until``), as-of deal rows with their
    signals, baselines. ``kept``: the as-of rows an earlier run stored, taken for its
    moments when nothing they read has changed (``_states``; the same rows).
    ``sample_size``: ``_sample.owners``' ``above`` and ``to`` (default: its thresholds),
    above which the past snapshots are a sample of teams."""
    wins = _inputs.wins(inp)
    actuals = _frames.period_actuals(wins)
    first = cast(dt.datetime, inp.history["changed_at"].min()).date()
    live = _periods.live_snapshots(inp.as_of)
    snaps = (
        pl.concat([_periods.snapshots(first, inp.as_of), live])
        .unique(KEY, keep="last")
        .sort("moment")
    )
    if until is not None:
        snaps = snaps.filter(pl.col("moment") <= until)
    fixed = set(snaps.join(live, on=KEY, how="anti")["moment"].to_list())
    # Above a deal count no generated mid company reaches, the past snapshots are those
    # of a seeded sample of teams (``_sample``): their rows alone are computed and kept.
    sample = _sample.owners(inp.deals, inp.users, **(sample_size or {}))
    candidates = None if sample is None else _sample.candidate_deals(inp.history, sample)
    # At a live moment every deal is forecast, whatever the sample.
    past = None if candidates is None else (candidates, fixed - set(live["moment"].to_list()))
    raw, note = _states.states_at(inp, snaps["moment"].unique().to_list(), kept, fixed, past)
    states = _inputs.with_static(inp, raw.drop(_UNREAD))
    rows = _frames.deal_rows(states, snaps, wins, _inputs.typical_amount(wins))
    so_far = _frames.won_so_far(wins, snaps)
    if sample is not None:
        owners = pl.Series(sorted(sample), dtype=pl.String).implode()
        in_sample = _in_sample(sample, live)
        rows, so_far = rows.filter(in_sample), so_far.filter(in_sample)
    base = baselines(rows, snaps, so_far, inp.submissions, actuals, inp.definitions)
    if sample is not None:
        base = base.filter(in_sample)
    rows = _signals.add_signals(rows, inp.definitions)
    rows = _inputs.attach(
        rows,
        _signals.rep_history(inp.history, inp.users, rows["as_of"], inp.definitions),
        ["as_of", "owner_id"],
    )
    # The deal model reads what the rep called; a filled-in pipeline is no call.
    commits = _signals.commit_signals(
        base.filter(pl.col("method") == "rep_commit_submitted"), so_far, rows, actuals, snaps
    )
    # A fixed row order: joins do not keep one, and the model's sample and the draws follow it.
    rows = _inputs.attach(rows, commits, [*KEY, "owner_id"]).sort(
        "as_of", "period_kind", "opportunity_id"
    )
    # What past snapshots are scored against, and learn new business from: the sampled
    # owners' wins when the backtest is a sample's; the live ones read every owner's.
    scored = actuals if sample is None else actuals.filter(pl.col("owner_id").is_in(owners))
    points = pl.concat([snaps, _same_points(live, first, snaps)])
    return {
        "wins": wins,
        "actuals": scored,
        "actuals_all": actuals,
        "snaps": snaps,
        "rows": rows,
        "so_far": so_far,
        "baselines": base,
        "first": first,
        # What the next run may take (``_states.to_rows``): the rows of fixed points.
        "states": _at_fixed(raw, fixed),
        "states_note": note,
        # Live offsets are rarely fixed points: their series need the same point of past periods.
        "new": new_series(scored, points),
        "new_live": None if sample is None else new_series(actuals, points),
        "sample": None if sample is None else len(sample),
        "sample_owners": None if sample is None else sorted(sample),
    }


# Columns of the as-of states nothing after ``prepare`` reads (they are stored, not
# modelled): left out of the deal rows, which are copied through every join.
_UNREAD = [
    "stage_entered_at",
    "last_push_at",
    "first_close_date",
    "close_date_moved_days",
    "first_amount",
    "last_amount_change_at",
    "last_two_way_at",
    "last_activity_at",
    "champion_last_reply_at",
    "is_closed",
    "is_won",
    "amount_changes",
]


def _in_sample(sample: frozenset[str], live: pl.DataFrame) -> pl.Expr:
    """Rows (with KEY and owner_id) a sampled backtest keeps: every owner's in the live
    snapshots, the sampled owners' in the others."""
    is_live = pl.lit(False)
    for k in live.select(KEY).iter_rows():
        is_live = is_live | pl.all_horizontal(
            [pl.col(c) == pl.lit(v) for c, v in zip(KEY, k, strict=True)]
        )
    owners = pl.Series(sorted(sample), dtype=pl.String).implode()
    return is_live | pl.col("owner_id").is_in(owners).fill_null(False)


def _at_fixed(raw: pl.DataFrame, fixed: set[dt.datetime]) -> pl.DataFrame:
    """The rows of ``raw`` (sorted by moment) at fixed points: a slice, not a copy, when
    they come first, as they do unless a live moment falls before a fixed one."""
    keep = raw["as_of"].is_in(pl.Series(sorted(fixed), dtype=pl.Datetime("us")).implode())
    n = int(keep.sum())
    return raw.slice(0, n) if bool(keep.head(n).all()) else raw.filter(keep)


@dataclass(frozen=True)
class _Spread:
    """A scored snapshot's implied variance at every copula loading, with its squared
    error, for the company and each team: computed once when the snapshot is scored
    and reused at every later refit, since recomputing it per fit was a large share of
    a run (docs/forecast.md, Speed)."""

    period_end: dt.date
    company: np.ndarray  # RHO_GRID
    company_sq: float
    teams: np.ndarray  # teams x RHO_GRID
    teams_sq: np.ndarray


Key = tuple[str, dt.date, int]  # period_kind, period_start, offset
_KEY_SCHEMA = {"period_kind": pl.String, "period_start": pl.Date, "offset": pl.Int64}


@dataclass(frozen=True)
class Scored:
    """A snapshot of a period that is over: its ranges, and all that later snapshots
    learn from it. Nothing in it changes while the data before its period's end does not."""

    key: Key
    period_end: dt.date
    moment: dt.datetime
    summary: pl.DataFrame  # ``summarise``'s rows
    pit_points: int  # how many past snapshots its range correction learned from
    pits: dict[str, np.ndarray]  # per segment kind
    record: Record
    spread: _Spread | None  # None: no deal was open
    deals: pl.DataFrame  # opportunity_id, p, value: the open deals as scored


@dataclass(frozen=True)
class Open:
    """A past snapshot of a period still open when it was drawn: its ranges, and what
    they came from: the deals with their probability and booked value and a digest of
    each deal's row as the model reads it (``row_hash``), the model (by its
    ``_stored.model_key``) and the copula loadings. All else it reads is dated at or
    before its moment, so while its period stays open it gives the same ranges when
    those are the same, and a deal whose row and model are the same has the same
    probability."""

    key: Key
    moment: dt.datetime
    model_key: str
    rho: tuple[float, float]
    summary: pl.DataFrame  # ``summarise``'s rows
    deals: pl.DataFrame  # opportunity_id, owner_id, row_hash, p, value


@dataclass(frozen=True)
class Reuse:
    """What an earlier run scored: snapshots by key, its refits' figures by day, and the
    snapshots it drew of periods then still open (``Open``), by key."""

    snapshots: Mapping[Key, Scored]
    fits: Mapping[dt.date, dict[str, Any]]
    open: Mapping[Key, Open] = field(default_factory=dict)


def _spreads(scored: pl.DataFrame) -> list[_Spread]:
    """Per snapshot of ``scored`` (p, value, won, won_amount, team, period_end)."""
    return list(_spreads_by_key(scored).values())


def _spreads_by_key(scored: pl.DataFrame) -> dict[Key, _Spread]:
    out = {}
    for _, g in scored.sort(*KEY, "opportunity_id").group_by(KEY, maintain_order=True):
        booked = (g["won"] * g["won_amount"].fill_null(0)).to_numpy()
        p, v = g["p"].to_numpy(), g["value"].to_numpy()
        team = g["team"].to_numpy()
        grids, sq = [], []
        for t in np.unique(team):
            m = team == t
            grids.append(variance_grid(p[m], v[m]))
            sq.append((booked[m].sum() - float(p[m] @ v[m])) ** 2)
        key = (g["period_kind"][0], g["period_start"][0], g["offset"][0])
        out[key] = _Spread(
            g["period_end"][0],
            variance_grid(p, v),
            (booked.sum() - float(p @ v)) ** 2,
            np.array(grids),
            np.array(sq),
        )
    return out


def _rho(spreads: list[_Spread], default_c: float, default_t: float) -> tuple[float, float]:
    """Company and team loadings from scored snapshots."""
    if not spreads:
        return default_c, default_t
    rc = pick_rho(
        np.array([s.company for s in spreads]),
        np.array([s.company_sq for s in spreads]),
        default=default_c,
    )
    teams = np.vstack([s.teams for s in spreads])
    sq = np.concatenate([s.teams_sq for s in spreads])
    rt = max(pick_rho(teams, sq, default=default_c + default_t) - rc, 0.0)
    return rc, rt


def run_forecast(
    inp: _inputs.Inputs,
    *,
    eval_from: dt.date | None = None,
    refit_months: int = 6,
    draws: int = 1000,
    live_draws: int = 4000,
    seed: int = 0,
    progress: Progress | None = None,
    prepared: dict[str, Any] | None = None,
    until: dt.datetime | None = None,
    bag: int = 3,
    workers: int | None = None,
    reuse: Reuse | None = None,
    models: Mapping[str, BaggedWinModel] | None = None,
    combine_with: str = COMBINE_WITH,
    shadow: dict[str, Any] | None = None,
) -> Forecast:
    """Backtest every snapshot from ``eval_from`` (default: ``default_start``) and
    forecast the live one; ``until`` stops at an earlier moment (then there is no live
    snapshot); ``workers``: how many of the bag's fits run at once (default: one per
    core, at most ``bag``; the result is the same); ``reuse``: snapshots scored by an
    earlier run on the same data up to its as-of, not drawn again (the result is the
    same); ``models``: deal models an earlier run stored, by ``_stored.model_key``, used
    instead of a fit on the rows the key digests (the same model, but for contact
    departures: ``_stored``); ``combine_with``: which commit baseline the simulation is
    combined with (``COMBINE_WITH``; another one only without ``reuse``, whose snapshots
    were combined with the default); ``shadow``: when ``prepared`` is a sampled backtest's
    (``_sample``), the full replay's ``prepare`` of the same inputs: each past snapshot of
    a period over is drawn again over every owner, with the block's model, loadings,
    combination and range correction the sample's snapshots gave, into
    ``Forecast.shadow`` (what the sample costs a forecast of the whole company:
    ``bench/forecast_accuracy.py --sampled``; the rest of the result is unchanged). See
    the module docstring for what each step may know."""
    pre = prepared or prepare(inp, until)
    snaps, rows, as_of = pre["snaps"], pre["rows"], inp.as_of
    start = eval_from or default_start(pre["first"], as_of)
    snaps = snaps.filter(pl.col("period_start") >= start)
    if until is not None:
        snaps = snaps.filter(pl.col("moment") <= until)
    n_workers = workers if workers is not None else min(bag, os.cpu_count() or 1)
    fits = [start]
    while _months_later(fits[-1], refit_months) <= as_of.date():
        fits.append(_months_later(fits[-1], refit_months))
    seg = Segments.from_users(inp.users)
    sh = None if shadow is None else _Shadow.of(shadow, seg, combine_with)
    # Per owner, whether the sampled backtest's snapshots held their team (None: not sampled).
    sampled = (
        None
        if pre.get("sample_owners") is None
        else np.isin(np.array(seg.owners), np.array(pre["sample_owners"]))
    )
    shadowed: list[pl.DataFrame] = []
    part_all = pl.DataFrame()
    rows = rows.with_columns(owner_idx=pl.Series(seg.index(rows["owner_id"])))
    rows = rows.with_columns(
        team=pl.Series(seg.teams, dtype=pl.String).gather(seg.team_of[rows["owner_idx"].to_numpy()])
    )
    so_far = pre["so_far"].with_columns(owner_idx=pl.Series(seg.index(pre["so_far"]["owner_id"])))
    actual = pre["actuals"].with_columns(owner_idx=pl.Series(seg.index(pre["actuals"]["owner_id"])))
    # Only snapshots an earlier run did not score can be drawn, and only drawn ones read
    # their commit: a weekly run draws a few of ~130.
    commits = _owner_commits(
        pre["baselines"],
        seg,
        combine_with,
        None
        if reuse is None
        else [k for k in snaps.select(KEY).iter_rows() if k not in reuse.snapshots],
    )
    scored: list[pl.DataFrame] = []
    spreads: list[_Spread] = []
    out, drivers = [], []
    pits: list[tuple[str, dt.date, dict[str, np.ndarray]]] = []  # (kind, period end, PITs)
    records: list[Record] = []
    params: dict[str, Any] = {"fits": [], "refit_months": refit_months, "live": []}
    kept: list[Scored] = []
    still_open: list[Open] = []
    reused = 0
    redrawn = 0  # open snapshots drawn again
    used: dict[str, tuple[dt.date, BaggedWinModel]] = {}
    tally = {"fitted": 0, "stored": 0, "memo": 0}
    todo = len(snaps)
    # Refits' tree fits run in ``pool`` while the snapshots of earlier blocks are drawn:
    # each block starts the fits of the next ``_AHEAD`` (a fit depends on its training
    # rows only, so the models are the ones fitted one after the other).
    pool = ThreadPoolExecutor(n_workers)
    # Snapshots' draws, two at a time: numpy's random fills and array arithmetic run
    # without the GIL, and each snapshot has its own stream, so the draws are the same.
    drawing = ThreadPoolExecutor(_DRAWING)
    blocks: dict[int, _Block] = {}
    pending: dict[int, tuple[str, str, Callable[[], BaggedWinModel]]] = {}
    seen: list[tuple[list[list[str]], np.ndarray]] = []  # ``seen_rows`` of every deal row

    def block_of(b: int) -> _Block:
        if b not in blocks:
            blocks[b] = _block(snaps, rows, fits, b, reuse)
        return blocks[b]

    def begin(b: int) -> None:
        blk = block_of(b)
        if b in pending or blk.empty or blk.reuse_fit:
            return
        if not seen:  # every refit's key reads these; a refit's rows are a subset
            seen.append(seen_rows(rows))
        within = np.flatnonzero((rows["period_end"] <= fits[b]).fill_null(False).to_numpy())
        pending[b] = _start_fit(
            (rows, within, seen[0]),
            fits[b],
            bag=bag,
            seed=seed,
            workers=n_workers,
            stored=models or {},
            pool=pool,
        )

    try:
        for b, fit_at in enumerate(fits):
            for ahead in range(b, min(b + 1 + _AHEAD, len(fits))):
                begin(ahead)
            blk = blocks.pop(b)
            if blk.empty:
                continue
            block, part, cached = blk.block, blk.part, blk.cached
            cut = dt.datetime.combine(fit_at, dt.time())
            reused += len(cached)
            model_key = ""  # the block's deal model's, when it has one
            if blk.reuse_fit:
                assert reuse is not None
                fit = reuse.fits[fit_at]
                rho_c, rho_t = fit["rho_company"], fit["rho_team"]
                params["fits"].append(fit)
                part = _with_scores(part, cached, None)
            else:
                model_key = pending[b][0]
                model = _finish_fit(pending.pop(b), fit_at, used=used, tally=tally)
                done = [sp for sp in spreads if sp.period_end <= fit_at]
                if len(done) < 6:  # too few scored snapshots yet: in-sample on the last year
                    recent = rows.filter(
                        (pl.col("period_end") <= fit_at)
                        & (pl.col("as_of") >= cut - dt.timedelta(days=365))
                    )
                    done = _spreads(
                        recent.with_columns(
                            p=model.predict_proba(recent), value=model.booked_amount(recent)
                        )
                    )
                rho_c, rho_t = _rho(done, 0.04, 0.02)
                params["fits"].append(
                    {
                        "fit_at": fit_at.isoformat(),
                        "train_rows": model.n_train_,
                        "rho_company": rho_c,
                        "rho_team": rho_t,
                    }
                )
                part = part.with_columns(row_hash=_row_hash(part))
                part = _with_scores(
                    part, cached, model, _open_scores(reuse, block, part, model_key, as_of)
                )
                if sh is not None:
                    part_all = sh.rows.join(block.select(KEY), on=KEY, how="semi")
                    part_all = part_all.with_columns(
                        p=model.predict_proba(part_all), value=model.booked_amount(part_all)
                    )
            scored.append(
                part.select(
                    *KEY,
                    "period_end",
                    "as_of",
                    "opportunity_id",
                    "owner_id",
                    "team",
                    "p",
                    "value",
                    "won",
                    "won_amount",
                    "amount",
                )
            )
            # In the order a full replay adds them: the copula's fit sums over this list.
            # Only snapshots of periods already over: a later refit learns from those
            # alone, and a run reads nothing else of them (a weekly run's open snapshots
            # were most of its spreads' time).
            fresh = scored[-1].filter(pl.col("period_end") <= as_of.date())
            fresh = fresh.join(
                pl.DataFrame(list(cached), schema=_KEY_SCHEMA, orient="row"), on=KEY, how="anti"
            )
            block_spreads = {
                **_spreads_by_key(fresh),
                **{k: c.spread for k, c in cached.items() if c.spread},
            }
            spreads += [block_spreads[k] for k in sorted(block_spreads)]
            ordered = list(block.sort("moment", "period_kind").iter_rows(named=True))
            # The draws of the block's snapshots, started on ``drawing`` before the loop
            # below reads them in order: a snapshot's raw draws read only its own deals,
            # new-business fit and stream, never another snapshot's result.
            started: dict[Key, tuple[pl.DataFrame, np.ndarray, Future[SnapshotDraws]]] = {}
            for snap in ordered:
                here_key = (snap["period_kind"], snap["period_start"], snap["offset"])
                if here_key in cached:
                    continue
                live = snap["moment"] == as_of
                key = {k: snap[k] for k in KEY}
                deals = part.filter(**key).sort(
                    "opportunity_id"
                )  # each deal's draws go by its position
                over = snap["period_end"] <= as_of.date()
                was = None if live or over or reuse is None else reuse.open.get(here_key)
                if was is not None and _same_draw(was, model_key, (rho_c, rho_t), deals):
                    continue
                # Each snapshot has its own stream: what one draws never shifts another.
                rng = np.random.default_rng(
                    [
                        seed,
                        int(snap["moment"].timestamp()),
                        _periods.KINDS.index(snap["period_kind"]),
                    ]
                )
                owners_so_far = np.zeros(len(seg.owners))
                sf = so_far.filter(**key)
                np.add.at(owners_so_far, sf["owner_idx"].to_numpy(), sf["won"].to_numpy())
                series = (
                    (pre["new_live"] if live and pre.get("new_live") is not None else pre["new"])
                    .filter(
                        (pl.col("period_kind") == snap["period_kind"])
                        & (pl.col("offset") == snap["offset"])
                        & (pl.col("period_end").cast(pl.Datetime("us")) <= snap["moment"])
                    )
                    .sort("period_start")
                )
                nb = NewBusiness(snap["period_kind"]).fit(series["new"].to_numpy())
                n_draws = live_draws if live else draws
                working = np.bincount(deals["owner_idx"].to_numpy(), minlength=len(seg.owners)) > 0
                shares = rep_shares(
                    pre.get("actuals_all", pre["actuals"]),
                    seg.owners,
                    snap["moment"],
                    working=working,
                )
                new_total = nb.sample(n_draws, rng)  # then the copula's draws, from the same stream
                started[here_key] = (
                    deals,
                    owners_so_far,
                    drawing.submit(
                        draw_snapshot,
                        seg,
                        deals,
                        owners_so_far,
                        new_total,
                        shares,
                        rho_c=rho_c,
                        rho_t=rho_t,
                        rng=rng,
                        covariance=live,
                    ),
                )
            for snap in ordered:
                here_key = (snap["period_kind"], snap["period_start"], snap["offset"])
                if here_key in cached:
                    c = cached[here_key]
                    out.append(_tagged(c.summary, c.key, c.moment, False, c.pit_points))
                    pits.append((c.key[0], c.period_end, c.pits))
                    records.append(c.record)
                    kept.append(c)
                    report(progress, "forecast snapshots", len(out), todo)
                    continue
                live = snap["moment"] == as_of
                key = {k: snap[k] for k in KEY}
                over = snap["period_end"] <= as_of.date()
                if here_key not in started:  # drawn before from the same deals, model and loadings
                    was = reuse.open[here_key] if reuse is not None else None
                    assert was is not None
                    deals = part.filter(**key).sort("opportunity_id")
                    n_past = sum(
                        1
                        for kind, end, _ in pits
                        if kind == snap["period_kind"] and end <= snap["moment"].date()
                    )
                    out.append(_tagged(was.summary, here_key, snap["moment"], False, n_past))
                    # With the rows' digests as they are now, as a full replay stores them.
                    still_open.append(
                        dataclasses.replace(was, deals=deals.select(was.deals.columns))
                    )
                    report(progress, "forecast snapshots", len(out), todo)
                    continue
                redrawn += not live
                deals, owners_so_far, drawn = started.pop(here_key)
                raw = drawn.result()
                commit = _team_commit(seg, commits.get(tuple(key.values())))
                here = slot(snap["period_kind"], snap["period_start"], snap["offset"])
                known = [r for r in records if r.period_end <= snap["moment"].date()]
                mix = combine([r for r in known if r.slot == here])
                if snap["period_kind"] == "quarter":
                    mix = with_season(
                        mix,
                        [r for r in known if r.slot[0] == "quarter"],
                        season_of(snap["period_start"]),
                    )
                sd = mix.apply(raw, seg.team_of, commit)
                act = None
                if over:
                    act = np.zeros(len(seg.owners))
                    a = actual.filter(
                        period_kind=snap["period_kind"], period_start=snap["period_start"]
                    )
                    np.add.at(act, a["owner_idx"].to_numpy(), a["amount"].to_numpy())
                kinds = (
                    ("company", "region", "team", "rep") if live else ("company", "region", "team")
                )
                past = [
                    u
                    for kind, end, u in pits
                    if kind == snap["period_kind"] and end <= snap["moment"].date()
                ]
                maps = {
                    k: LevelMap(symmetric=True).fit(
                        np.concatenate([u[k] for u in past]) if past else np.array([])
                    )
                    for k in kinds
                }
                # A sample's correction is in units of the sample's spread: the whole
                # company's live range is read at levels moved to its own (``_sample_range``).
                widened: dict[str, float] = {}
                if sampled is not None and live:
                    maps, widened = widen(maps, past, sd, seg, sampled)
                summary = summarise(
                    seg,
                    sd,
                    {k: m.levels(_QUANTILES) for k, m in maps.items()},
                    {k: m.levels(CRPS_LEVELS) for k, m in maps.items()},
                    act,
                    kinds,
                )
                out.append(_tagged(summary, here_key, snap["moment"], live, len(past)))
                if sh is not None and over:
                    every = sh.summary(
                        snap,
                        part_all,
                        seg,
                        maps,
                        mix,
                        (rho_c, rho_t),
                        seed=seed,
                        draws=draws,
                        widen=None if sampled is None else _widening(maps, past, seg, sampled),
                    )
                    shadowed.append(_tagged(every, here_key, snap["moment"], False, len(past)))
                if not over and not live:
                    still_open.append(
                        Open(
                            here_key,
                            snap["moment"],
                            model_key,
                            (rho_c, rho_t),
                            summary,
                            deals.select("opportunity_id", "owner_id", "row_hash", "p", "value"),
                        )
                    )
                if act is not None:  # the period is over
                    pits.append(
                        (snap["period_kind"], snap["period_end"], segment_pits(seg, sd, act))
                    )
                    records.append(
                        Record(
                            here,
                            snap["period_end"],
                            _by_team(seg, owners_so_far),
                            _by_team(seg, raw.owner_draws.mean(axis=0)),
                            commit,
                            _by_team(seg, act),
                            spread(raw.owner_draws.sum(axis=1)),
                            season_of(snap["period_start"]),
                        )
                    )
                    kept.append(
                        Scored(
                            here_key,
                            snap["period_end"],
                            snap["moment"],
                            summary,
                            len(past),
                            pits[-1][2],
                            records[-1],
                            block_spreads.get(here_key),
                            deals.select("opportunity_id", "p", "value"),
                        )
                    )
                if live:
                    params["live"].append(
                        {
                            **key,
                            "period_start": key["period_start"].isoformat(),
                            "commit": float(np.nansum(commit))
                            if np.isfinite(commit).any()
                            else None,
                            **asdict(mix),
                            # How far the sample's range correction was stretched (``widen``).
                            **{f"widen_{k}": f for k, f in widened.items()},
                        }
                    )
                if live and len(deals):
                    # deal_cov is of the raw draws, so its share is of the raw total's variance.
                    total_var = float(np.var(raw.owner_draws.sum(axis=1), ddof=1)) or 1.0
                    drivers.append(
                        deals.select(
                            *KEY,
                            "opportunity_id",
                            "owner_id",
                            "stage",
                            "amount",
                            "close_date",
                            "p",
                            "value",
                        )
                        .with_columns(variance_share=pl.Series(sd.deal_cov / total_var))
                        .sort("variance_share", descending=True)
                        .head(15)
                    )
                report(progress, "forecast snapshots", len(out), todo)
    finally:
        pool.shutdown(cancel_futures=True)
        drawing.shutdown(cancel_futures=True)
    deals_scored = (
        pl.concat(scored).filter(pl.col("period_end") <= as_of.date()) if scored else pl.DataFrame()
    )
    return Forecast(
        agent=pl.concat(out) if out else pl.DataFrame(),
        baselines=_baseline_segments(pre, inp, snaps),
        deals=deals_scored,
        drivers=pl.concat(drivers) if drivers else pl.DataFrame(),
        params={
            **params,
            "reused": reused,
            "recomputed": len(out) - reused,
            "redrawn": redrawn,
            "models": tally,
        },
        scored=kept,
        models=used,
        open=still_open,
        shadow=pl.concat(shadowed) if shadowed else None,
    )


@dataclass(frozen=True)
class _Shadow:
    """The full replay's frames for ``run_forecast(shadow=)``, indexed by owner."""

    rows: pl.DataFrame
    so_far: pl.DataFrame
    actual: pl.DataFrame
    actuals: pl.DataFrame
    new: pl.DataFrame
    commits: dict[tuple, np.ndarray]

    @classmethod
    def of(cls, pre: dict[str, Any], seg: Segments, combine_with: str) -> _Shadow:
        def indexed(df: pl.DataFrame) -> pl.DataFrame:
            return df.with_columns(owner_idx=pl.Series(seg.index(df["owner_id"])))

        rows = indexed(pre["rows"])
        rows = rows.with_columns(
            team=pl.Series(seg.teams, dtype=pl.String).gather(
                seg.team_of[rows["owner_idx"].to_numpy()]
            )
        )
        return cls(
            rows,
            indexed(pre["so_far"]),
            indexed(pre["actuals"]),
            pre["actuals"],
            pre["new"],
            _owner_commits(pre["baselines"], seg, combine_with),
        )

    def summary(
        self,
        snap: dict[str, Any],
        part: pl.DataFrame,
        seg: Segments,
        maps: Mapping[str, LevelMap],
        mix: Any,
        rho: tuple[float, float],
        *,
        seed: int,
        draws: int,
        widen: Callable[[SnapshotDraws], Mapping[str, LevelMap]] | None = None,
    ) -> pl.DataFrame:
        """A past snapshot of a period over drawn over every owner, with the sample's
        model (``part``'s scores), loadings, combination and range correction (moved to
        the whole company's scale by ``widen``, as the live snapshot's is)."""
        key = {k: snap[k] for k in KEY}
        deals = part.filter(**key).sort("opportunity_id")
        rng = np.random.default_rng(
            [seed, int(snap["moment"].timestamp()), _periods.KINDS.index(snap["period_kind"]), 1]
        )
        so_far = np.zeros(len(seg.owners))
        sf = self.so_far.filter(**key)
        np.add.at(so_far, sf["owner_idx"].to_numpy(), sf["won"].to_numpy())
        series = self.new.filter(
            (pl.col("period_kind") == snap["period_kind"])
            & (pl.col("offset") == snap["offset"])
            & (pl.col("period_end").cast(pl.Datetime("us")) <= snap["moment"])
        ).sort("period_start")
        nb = NewBusiness(snap["period_kind"]).fit(series["new"].to_numpy())
        working = np.bincount(deals["owner_idx"].to_numpy(), minlength=len(seg.owners)) > 0
        shares = rep_shares(self.actuals, seg.owners, snap["moment"], working=working)
        new_total = nb.sample(draws, rng)
        raw = draw_snapshot(
            seg,
            deals,
            so_far,
            new_total,
            shares,
            rho_c=rho[0],
            rho_t=rho[1],
            rng=rng,
            covariance=False,
        )
        sd = mix.apply(raw, seg.team_of, _team_commit(seg, self.commits.get(tuple(key.values()))))
        if widen is not None:
            maps = widen(sd)
        act = np.zeros(len(seg.owners))
        a = self.actual.filter(period_kind=snap["period_kind"], period_start=snap["period_start"])
        np.add.at(act, a["owner_idx"].to_numpy(), a["amount"].to_numpy())
        return summarise(
            seg,
            sd,
            {k: m.levels(_QUANTILES) for k, m in maps.items()},
            {k: m.levels(CRPS_LEVELS) for k, m in maps.items()},
            act,
            tuple(maps),
        )


def _widening(
    maps: Mapping[str, LevelMap],
    past: list[dict[str, np.ndarray]],
    seg: Segments,
    sampled: np.ndarray,
) -> Callable[[SnapshotDraws], Mapping[str, LevelMap]]:
    """``widen`` of a snapshot's draws, with what the sample knew at its moment."""
    return lambda draws: widen(maps, past, draws, seg, sampled)[0]


def _tagged(
    summary: pl.DataFrame, key: Key, moment: dt.datetime, live: bool, pit_points: int
) -> pl.DataFrame:
    return summary.with_columns(
        **{k: pl.lit(v) for k, v in zip(KEY, key, strict=True)},
        moment=pl.lit(moment, pl.Datetime("us")),
        live=pl.lit(live),
        pit_points=pl.lit(pit_points),
    )


# Deal models this process has fitted, by what they were fitted on (``_stored.model_key``).
# A process that runs many weeks (`revstack simulate`) fits each block's model once; a
# weekly run in a new process reads the last run's models back from the warehouse
# (``stored``, ``_stored``). A few entries.
_FITTED: OrderedDict[str, BaggedWinModel] = OrderedDict()
_FITTED_KEEP = 2


_AHEAD = 2  # refits whose fits start while an earlier block is scored
_DRAWING = 2  # snapshots drawn at once (each live one holds about 1.5 GB while drawn)


@dataclass(frozen=True)
class _Block:
    """The snapshots of one refit block, their rows, those an earlier run scored, and
    whether that run's refit stands for this one (every snapshot reused; the rows are
    then only the columns its scored deals keep, ``_SCORED_FROM``)."""

    block: pl.DataFrame
    part: pl.DataFrame
    cached: dict[Key, Scored]
    reuse_fit: bool

    @property
    def empty(self) -> bool:
        return self.block.is_empty()


def _block(
    snaps: pl.DataFrame, rows: pl.DataFrame, fits: list[dt.date], b: int, reuse: Reuse | None
) -> _Block:
    block_end = fits[b + 1] if b + 1 < len(fits) else dt.date.max
    block = snaps.filter(
        (pl.col("moment") >= dt.datetime.combine(fits[b], dt.time()))
        & (pl.col("moment") < dt.datetime.combine(block_end, dt.time()))
    )
    if block.is_empty():
        return _Block(block, rows.clear(), {}, False)
    # A block an earlier run scored whole needs of its rows only what the scored deals
    # keep (on mid five of a weekly run's six blocks, ~70 columns of 150-250k rows each).
    part = rows.select(_SCORED_FROM).join(block.select(KEY), on=KEY, how="semi")
    cached = _reusable(reuse, block, part)
    whole = len(cached) == len(block) and reuse is not None and fits[b] in reuse.fits
    if not whole:
        part = rows.join(block.select(KEY), on=KEY, how="semi")
    return _Block(block, part, cached, whole)


# The columns of a block's rows its scored deals keep, besides the probability and value.
_SCORED_FROM = [
    *KEY,
    "period_end",
    "as_of",
    "opportunity_id",
    "owner_id",
    "team",
    "won",
    "won_amount",
    "amount",
]


def _start_fit(
    train: tuple[pl.DataFrame, np.ndarray, tuple[list[list[str]], np.ndarray]],
    fit_at: dt.date,
    *,
    bag: int,
    seed: int,
    workers: int,
    stored: Mapping[str, BaggedWinModel],
    pool: Executor,
) -> tuple[str, str, Callable[[], BaggedWinModel]]:
    """The model for ``train``: this process's earlier fit, else one a run stored, when
    the rows are the same (their digest with the fit's settings), else a new fit handed
    to ``pool``. Same rows, same seed: same model. Gives its key, where it comes from,
    and a call that waits for it. ``train``: the deal rows, the positions of the
    training rows among them and ``seen_rows`` of them all (the training rows are not
    copied out: on a large company they are millions of rows of some fifty columns)."""
    rows, within, (columns, hashes) = train
    key = model_key(rows, fit_at, bag=bag, seed=seed, seen=(columns, hashes[within]))
    known = _FITTED.get(key)
    if known is not None:
        return key, "memo", lambda: known
    if (kept := stored.get(key)) is not None:
        return key, "stored", lambda: kept
    bagged = BaggedWinModel(bag=bag, random_state=seed, workers=workers)
    return key, "fitted", bagged.submit(rows, pool, within)


def _finish_fit(
    started: tuple[str, str, Callable[[], BaggedWinModel]],
    fit_at: dt.date,
    *,
    used: dict[str, tuple[dt.date, BaggedWinModel]],
    tally: dict[str, int],
) -> BaggedWinModel:
    """Wait for a started fit; record it in ``used`` (what this run stores), where it came
    from in ``tally``, and in this process's memo."""
    key, source, get = started
    model = get()
    tally[source] += 1
    _FITTED.pop(key, None)
    _FITTED[key] = model
    while len(_FITTED) > _FITTED_KEEP:
        _FITTED.popitem(last=False)
    used[key] = (fit_at, model)
    return model


def _reusable(reuse: Reuse | None, block: pl.DataFrame, part: pl.DataFrame) -> dict[Key, Scored]:
    """The block's snapshots ``reuse`` holds, if they scored the very deals open now."""
    if reuse is None:
        return {}
    out = {}
    by_key = {
        cast(Key, tuple(k)): g["opportunity_id"]
        for k, g in part.select(*KEY, "opportunity_id").group_by(KEY)
    }
    none = pl.Series("opportunity_id", [], pl.String)
    for key in block.select(KEY).iter_rows():
        c = reuse.snapshots.get(key)
        if c is None:
            continue
        ids = by_key.get(key, none)
        if ids.sort().equals(c.deals["opportunity_id"].sort(), check_names=False):
            out[key] = c
    return out


def _with_scores(
    part: pl.DataFrame,
    cached: Mapping[Key, Scored],
    model: BaggedWinModel | None,
    opened: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``part`` with ``p`` and ``value``: stored for the snapshots in ``cached`` and the
    rows of ``opened`` (KEY, opportunity_id, p, value), predicted for the rest (only
    those: a tree's prediction for a row does not depend on the others)."""
    frames = [
        c.deals.with_columns(**{k: pl.lit(v) for k, v in zip(KEY, c.key, strict=True)})
        for c in cached.values()
    ]
    if opened is not None and len(opened):
        frames.append(opened.select(*KEY, "opportunity_id", "p", "value"))
    if not frames:
        assert model is not None
        return part.with_columns(p=model.predict_proba(part), value=model.booked_amount(part))
    known = pl.concat(frames, how="diagonal_relaxed").cast(
        {"period_start": pl.Date, "offset": pl.Int64}
    )
    part = part.with_row_index("_row").join(known, on=[*KEY, "opportunity_id"], how="left")
    new = part.filter(pl.col("p").is_null()).drop("p", "value")
    if len(new):
        assert model is not None
        new = new.with_columns(p=model.predict_proba(new), value=model.booked_amount(new))
    return (
        pl.concat([part.filter(pl.col("p").is_not_null()), new], how="diagonal_relaxed")
        .sort("_row")
        .drop("_row")
    )


# What a deal's probability and booked value are computed from, besides the model: the
# columns of its row the model reads (``FIT_COLUMNS`` but the label).
_PREDICTS = sorted(FIT_COLUMNS - {"won", "won_amount"})


def _row_hash(rows: pl.DataFrame) -> pl.Series:
    """Per row, a digest of what the model reads of it, as it reads it (``as_read``: some
    features are parallel sums whose last float64 bit varies from run to run, which the
    model never sees); polars' row hash is stable within a polars version, which the
    cache's fingerprint holds."""
    return as_read(rows, [c for c in _PREDICTS if c in rows.columns]).hash_rows(seed=7)


def _open_scores(
    reuse: Reuse | None, block: pl.DataFrame, part: pl.DataFrame, model_key: str, as_of: dt.datetime
) -> pl.DataFrame | None:
    """The stored probability and value of each row of a still-open snapshot ``reuse``
    drew with the same model, whose row the model reads as it was then."""
    if reuse is None or not reuse.open:
        return None
    keys = [
        k
        for k in block.filter(pl.col("period_end") > as_of.date()).select(KEY).iter_rows()
        if (o := reuse.open.get(cast(Key, k))) is not None and o.model_key == model_key
    ]
    if not keys:
        return None
    stored = pl.concat(
        [
            reuse.open[cast(Key, k)].deals.with_columns(
                **{c: pl.lit(v) for c, v in zip(KEY, k, strict=True)}
            )
            for k in keys
        ]
    ).cast({"period_start": pl.Date, "offset": pl.Int64})
    return stored.join(
        part.select(*KEY, "opportunity_id", "row_hash"),
        on=[*KEY, "opportunity_id", "row_hash"],
        how="semi",
    )


def _same_draw(was: Open, model_key: str, rho: tuple[float, float], deals: pl.DataFrame) -> bool:
    """Whether a still-open snapshot drawn before would be drawn the same now: the same
    model and loadings, and the same deals (in the draw's order) with the same owner,
    probability and value."""
    cols = ["opportunity_id", "owner_id", "p", "value"]
    return (
        was.model_key == model_key
        and was.rho == rho
        and deals.select(cols).equals(was.deals.select(cols))
    )


def _same_points(live: pl.DataFrame, first: dt.date, snaps: pl.DataFrame) -> pl.DataFrame:
    """Past periods at each live offset, leaving out the fixed points ``snaps`` already
    holds (a live snapshot on a fixed point would otherwise put each past period in its
    series twice, at two times of day)."""
    return _periods.same_point_in_past(live, first).join(snaps.select(KEY), on=KEY, how="anti")


def _by_team(seg: Segments, per_owner: np.ndarray) -> np.ndarray:
    return np.bincount(seg.team_of, weights=per_owner, minlength=len(seg.teams))


def _owner_commits(
    base: pl.DataFrame, seg: Segments, method: str, keys: list[tuple] | None = None
) -> dict[tuple, np.ndarray]:
    """Per snapshot (of ``keys``, None: all), each owner's commit by ``method`` (NaN: none,
    e.g. no submission)."""
    c = base.filter(pl.col("method") == method)
    if keys is not None:
        wanted = pl.DataFrame(keys, schema=_KEY_SCHEMA, orient="row").select(pl.struct(KEY))
        c = c.filter(pl.struct(KEY).is_in(wanted.to_series().implode()))
    out: dict[tuple, np.ndarray] = {}
    for key, g in c.group_by(KEY):
        arr = np.full(len(seg.owners), np.nan)
        idx = seg.index(g["owner_id"])
        arr[idx] = 0.0
        np.add.at(arr, idx, g["value"].to_numpy())
        out[tuple(key)] = arr
    return out


def _team_commit(seg: Segments, owners: np.ndarray | None) -> np.ndarray:
    """Each team's commit: its owners' commits summed (with the filled commit, a call or
    the stand-in for a rep who has not called); NaN for a team in which no owner has one
    (with the calls alone, nobody has submitted: a partly submitted team then looks like
    a low call, which the commit's bias factor learns only when it is low every time)."""
    n = len(seg.teams)
    if owners is None:
        return np.full(n, np.nan)
    has = np.isfinite(owners)
    total = np.bincount(seg.team_of, weights=np.where(has, owners, 0.0), minlength=n)
    return np.where(
        np.bincount(seg.team_of, weights=has.astype(float), minlength=n) > 0, total, np.nan
    )


def _baseline_segments(
    pre: dict[str, Any], inp: _inputs.Inputs, snaps: pl.DataFrame
) -> pl.DataFrame:
    """Each baseline rolled up into segments, next to the actual of periods that are over.
    The filled commits' rows also count the segment's reps with a call or deals in the
    period (``reps``) and those who had called by the moment (``reps_submitted``)."""
    base = pre["baselines"].join(snaps.select(KEY), on=KEY, how="semi")
    counted = pl.col("submitted").is_not_null()
    base = base.with_columns(
        reps=pl.when(counted).then(1),
        reps_submitted=pl.when(counted).then(pl.col("submitted").cast(pl.Int64)),
    )
    kinds = ("company", "region", "team")
    values = ["value", "reps", "reps_submitted"]
    b = _frames.rollup(base, inp.users, values, by=[*KEY, "method"], kinds=kinds)
    b = b.with_columns(
        pl.when(pl.col("method").is_in(_FILLED)).then(pl.col(c)).cast(pl.Int64) for c in values[1:]
    )
    over = snaps.filter(pl.col("period_end") <= inp.as_of.date()).select(KEY)
    act = pre["actuals"].join(
        over.select("period_kind", "period_start").unique(), on=["period_kind", "period_start"]
    )
    a = _frames.rollup(act, inp.users, ["amount"], by=["period_kind", "period_start"], kinds=kinds)
    return b.join(
        a.rename({"amount": "actual"}),
        on=["period_kind", "period_start", "segment_kind", "segment"],
        how="left",
    )
