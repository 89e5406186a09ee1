"""The backtest of a very large company on a seeded sample of its teams.

A full replay scores every open deal at every past snapshot point (~130 on four years of
history); on a company of millions of deals that is hours of CPU and more memory than
the machine has (docs/forecast.md, Speed: The large company). Above ``SAMPLE_ABOVE``
deals, the past snapshots are those of a smaller company inside it: the deals owned at
each moment by the members of a seeded sample of whole teams, with their wins, calls and
pipeline, scored against what those teams won. The live snapshots forecast every owner.

Whole teams, not a share of every rep's deals: a rep's call is for their whole book, and
the combination learns, team by team, how far the calls and the simulation are off; a
slice of each rep would hold the call against part of the book. What the sample's
backtest gives the live snapshots is relative (the copula loadings, the combination's
biases and weights, the range correction's quantile levels), and the model is trained
on the sampled teams' rows. Below the threshold (every company up to the generated
mid's 100k deals) nothing changes.
"""

from __future__ import annotations

import hashlib
import math

import polars as pl

__all__ = ["SAMPLE_ABOVE", "SAMPLE_TO", "SAMPLED_WARNING", "SEED", "owners", "candidate_deals"]

# Deals in the CRM above which the past snapshots are a sample of teams: five times the
# generated mid company, so every company the figures in docs/forecast.md are of replays
# every deal.
SAMPLE_ABOVE = 500_000
# About how many of the CRM's deals the sampled teams hold: the generated mid company's.
SAMPLE_TO = 100_000
SEED = 0
# Said wherever a sampled run's ranges are read (the run's note, the Forecast page, its
# metrics), formatted with the run's ``backtest_sample``. The figures are of four
# generated mid companies, each learning from 8 of its 30 teams (docs/forecast.md, Speed:
# What it costs in accuracy); nothing measures a sample that is a smaller share.
SAMPLED_WARNING = (
    "This forecast learned from a sample of {owners:,} owners' teams (the company has more "
    "than {above:,} deals); its company and region ranges are widened to the whole "
    "company's scale. Measured on smaller companies learning from 8 of 30 teams, ranges "
    "learned that way held the outcome between P10 and P90 81% of the time (83% learned "
    "from every team), but 69% on one of four, where a bias learned on the sampled teams "
    "did not hold for the rest; at this company's share of teams it is not measured. The "
    "P50 and the backtest's figures are the sample's."
)


def owners(
    deals: pl.DataFrame,
    users: pl.DataFrame,
    *,
    above: int = SAMPLE_ABOVE,
    to: int = SAMPLE_TO,
    seed: int = SEED,
) -> frozenset[str] | None:
    """The members of the sampled teams, or None when there are no more than ``above``
    ``deals``. ``to``: about how many deals the sampled teams hold (a share of the teams:
    ``to`` over the deals, at least one). Teams are ordered by a digest of the seed and
    their name and taken from the front: the same teams on every run while the teams
    are the same."""
    if len(deals) <= above:
        return None
    teams = sorted(t for t in users["team"].drop_nulls().unique().to_list())
    if not teams:
        return None
    k = max(1, math.ceil(len(teams) * to / len(deals)))
    order = sorted(teams, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    picked = pl.Series(order[:k], dtype=pl.String).implode()
    return frozenset(users.filter(pl.col("team").is_in(picked))["user_id"].to_list())


def candidate_deals(history: pl.DataFrame, sample: frozenset[str]) -> pl.Series:
    """Deals that can be owned by a sampled owner at some moment: any of their history rows
    names one (a deal's owner at a moment is its history row's then)."""
    ids = pl.Series(sorted(sample), dtype=pl.String).implode()
    return history.filter(pl.col("changed_by").is_in(ids))["opportunity_id"].unique().sort()
