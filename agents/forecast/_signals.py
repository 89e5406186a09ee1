"""Forecast-specific columns added to the as-of deal rows, each known at the moment.

- Risk signals: the pipeline-health agent's flags at past dates do not exist in a
  backtest, so the same kind of signal is derived here from the as-of state with the
  thresholds of ``definitions.yaml`` (``at_risk``, ``phantom``): gone quiet, close date
  pushed too often, thin multithreading late in the cycle, champion gone, phantom.
- Rep and team history: win rate of deals closed before the moment, the rep's shrunk
  toward the team's and the team's toward the company's.
- The rep's own call: their latest commit for the period, less what they have already
  won, against their open pipeline closing in the period; and how their earlier calls at
  the same point compared with what came (their bias, shrunk toward none).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from revstack.agents.forecast._frames import KEY, segments_of

__all__ = ["add_signals", "rep_history", "commit_signals"]

_REP_PRIOR, _TEAM_PRIOR, _BIAS_PRIOR = 20.0, 50.0, 3.0


def add_signals(rows: pl.DataFrame, definitions: Any) -> pl.DataFrame:
    """Stage order, default probability, quiet ratio and the risk flags."""
    stages = [s for s in definitions.stages if not s.closed]
    order = {s.key: i for i, s in enumerate(stages)}
    quiet = {s.key: float(s.quiet_days or 14) for s in stages}
    risk, ph = definitions.at_risk, definitions.phantom
    late = {s.key for s in stages[max(0, len(stages) - 2) :]}  # the last two open stages
    quiet_days = pl.col("stage").replace_strict(quiet, default=14.0, return_dtype=pl.Float64)
    ratio = pl.col("days_since_two_way") / quiet_days
    past_close = (pl.col("as_of").cast(pl.Date) - pl.col("close_date")).dt.total_days()
    flags = {
        "flag_quiet": ratio > risk.quiet_multiple,
        "flag_pushes": pl.col("close_date_pushes") >= risk.close_date_pushes,
        "flag_thin": pl.col("stage").is_in(list(late))
        & (pl.col("engaged_contacts") < risk.min_engaged_contacts),
        "flag_champion": pl.col("champion_left"),
        "flag_phantom": (past_close > ph.days_past_close) & (ratio > ph.quiet_multiple),
    }
    out = rows.with_columns(
        stage_idx=pl.col("stage").replace_strict(order, default=-1, return_dtype=pl.Int32),
        quiet_ratio=ratio,
        **{k: v.fill_null(False) for k, v in flags.items()},
    )
    return out.with_columns(risk_flags=pl.sum_horizontal([pl.col(k).cast(pl.Int8) for k in flags]))


def rep_history(
    history: pl.DataFrame, users: pl.DataFrame, moments: pl.Series, definitions: Any
) -> pl.DataFrame:
    """Per moment and owner: closed deals so far and the shrunk win rates (rep, team)."""
    closed = [s.key for s in definitions.stages if s.closed]
    won = [s.key for s in definitions.stages if s.won]
    closes = (
        history.filter(pl.col("stage").is_in(closed))
        .sort("changed_at", "history_id")
        .unique("opportunity_id", keep="first")
        .select(
            at="changed_at", owner_id="changed_by", w=pl.col("stage").is_in(won).cast(pl.Float64)
        )
        .join(segments_of(users), on="owner_id", how="left")
        .with_columns(pl.col("team").fill_null("(none)"))
        .sort("at")
    )
    m = pl.DataFrame({"as_of": moments.unique().sort()})
    cum = {
        "company": closes.select("at", n=pl.int_range(1, pl.len() + 1), k=pl.col("w").cum_sum()),
        "team": closes.select(
            "at",
            "team",
            n=pl.int_range(1, pl.len() + 1).over("team"),
            k=pl.col("w").cum_sum().over("team"),
        ),
        "rep": closes.select(
            "at",
            "owner_id",
            n=pl.int_range(1, pl.len() + 1).over("owner_id"),
            k=pl.col("w").cum_sum().over("owner_id"),
        ),
    }
    comp = m.join_asof(cum["company"], left_on="as_of", right_on="at", strategy="backward").select(
        "as_of", c_rate=(pl.col("k").fill_null(0) + 1) / (pl.col("n").fill_null(0) + 4)
    )
    owners = segments_of(users).select("owner_id", "team")
    grid = m.join(owners, how="cross").sort("as_of")
    grid = grid.join_asof(
        cum["team"].rename({"n": "tn", "k": "tk"}),
        left_on="as_of",
        right_on="at",
        by="team",
        strategy="backward",
        check_sortedness=False,
    ).drop("at", strict=False)
    grid = grid.join_asof(
        cum["rep"].rename({"n": "rn", "k": "rk"}),
        left_on="as_of",
        right_on="at",
        by="owner_id",
        strategy="backward",
        check_sortedness=False,
    ).drop("at", strict=False)
    grid = grid.join(comp, on="as_of").with_columns(pl.col("tn", "tk", "rn", "rk").fill_null(0))
    team_rate = (pl.col("tk") + _TEAM_PRIOR * pl.col("c_rate")) / (pl.col("tn") + _TEAM_PRIOR)
    grid = grid.with_columns(team_win_rate=team_rate)
    return grid.select(
        "as_of",
        "owner_id",
        "team_win_rate",
        rep_closed=pl.col("rn"),
        rep_win_rate=(pl.col("rk") + _REP_PRIOR * pl.col("team_win_rate"))
        / (pl.col("rn") + _REP_PRIOR),
    )


def commit_signals(
    commits: pl.DataFrame,
    so_far: pl.DataFrame,
    rows: pl.DataFrame,
    actuals: pl.DataFrame,
    snaps: pl.DataFrame,
) -> pl.DataFrame:
    """Per snapshot and owner: what the rep still calls (commit less won so far) against
    their in-period pipeline, and their historical call / outcome ratio at this point."""
    pipe = (
        rows.filter(pl.col("in_period"))
        .group_by(*KEY, "owner_id")
        .agg(rep_pipe=pl.col("amount").sum())
    )
    won = so_far.rename({"won": "rep_won"})
    c = commits.select(*KEY, "owner_id", commit="value").join(
        won, on=[*KEY, "owner_id"], how="left"
    )
    c = c.join(pipe, on=[*KEY, "owner_id"], how="left").with_columns(
        pl.col("rep_won", "rep_pipe").fill_null(0.0)
    )
    c = c.with_columns(call=(pl.col("commit") - pl.col("rep_won")).clip(0.0))
    # What really came after each past snapshot, for the rep's bias.
    final = actuals.group_by("period_kind", "period_start", "owner_id").agg(
        final=pl.col("amount").sum()
    )
    past = (
        c.join(final, on=["period_kind", "period_start", "owner_id"], how="left")
        .with_columns(came=(pl.col("final").fill_null(0.0) - pl.col("rep_won")).clip(0.0))
        .join(snaps.select(*KEY, "period_end"), on=KEY)
    )
    pairs = (
        c.join(snaps.select(*KEY, "moment"), on=KEY)
        .join(
            past.select(
                "period_kind", "offset", "owner_id", "period_end", p_call="call", p_came="came"
            ),
            on=["period_kind", "offset", "owner_id"],
        )
        .filter(pl.col("period_end").cast(pl.Datetime("us")) <= pl.col("moment"))
    )
    bias = (
        pairs.group_by(*KEY, "owner_id")
        .agg(n=pl.len(), ratio=(pl.col("p_call").sum() + 1.0) / (pl.col("p_came").sum() + 1.0))
        .with_columns(
            commit_bias=(pl.col("ratio").log() * pl.col("n") / (pl.col("n") + _BIAS_PRIOR)).exp()
        )
    )
    out = c.join(bias.select(*KEY, "owner_id", "commit_bias"), on=[*KEY, "owner_id"], how="left")
    return out.select(
        *KEY,
        "owner_id",
        "commit_bias",
        commit_cover=pl.col("call") / (pl.col("rep_pipe") + 1000.0),
        commit_cover_debiased=pl.col("call")
        / pl.col("commit_bias").fill_null(1.0)
        / (pl.col("rep_pipe") + 1000.0),
    )
