"""What a person's answers teach the matcher, and which pairs to ask about next.

A pair's *kind* is its pattern: one level per comparison ("names share 70% of their word
weight, same city, address different"). Every candidate pair of one kind gets the same
evidence from the model, or the same points from the rule set, so an answer about one
pair says something about its kind. For each kind a person answered, the share of
matches is a Beta posterior whose prior is the model's own mean probability for that
kind, worth ``STRENGTH`` answers: (STRENGTH * p + same) / (STRENGTH + answered). Every
pair of the kind moves by the same log-odds, from the model's mean to that posterior,
so pairs inside a kind keep their order (term-frequency adjustments stay). Kinds
nobody answered about are untouched, so twenty answers cannot unlearn the rest of the
model: replacing m by the answered pairs' shares did, since the most uncertain pairs
tend to be of one or two kinds (dedupe_orgs held out: F1 0.940 -> 0.891 after ten).

Which pairs to ask about (``review_pairs``) follows the same idea: the kinds the matcher
is least sure of, one pair each (the one nearest an even chance), so twenty answers
cover twenty kinds instead of twenty copies of one.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["STRENGTH", "apply_shifts", "learn_shifts", "review_pairs"]

# How many answers the model's own estimate for a kind is worth: one answer moves an
# even chance to 0.6 or 0.4, so a kind of pair is not decided by one answer alone; two
# that agree move it to 0.67. Chosen on the lists' tuning halves, where 2, 4 and 8 gave
# the same F1 after twenty answers to within 0.01 (docs/identity.md, Labels).
STRENGTH = 4.0

_EPS = 1e-9


def _kind(gcols: list[str]) -> pl.Expr:
    return pl.concat_str([pl.col(c).cast(pl.String) for c in gcols], separator=",")


def _log2_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log2(p / (1 - p))


def learn_shifts(scored: pl.DataFrame, marked: pl.DataFrame, gcols: list[str]) -> pl.DataFrame:
    """Per kind a person answered about: answers, matches, the model's mean probability,
    the posterior and the shift in log2-odds (``kind``, ``answered``, ``same``, ``prior``,
    ``posterior``, ``shift``).

    ``scored``: the candidate pairs as the model scored them; ``marked``: the answered
    pairs scored the same way, with ``same``. A kind with no candidate pair takes its
    prior from the answered pairs' own scores.
    """
    answers = (
        marked.with_columns(kind=_kind(gcols))
        .group_by("kind")
        .agg(
            answered=pl.len(),
            same=pl.col("same").cast(pl.Int64).sum(),
            own=pl.col("probability").mean(),
        )
    )
    means = (
        scored.with_columns(kind=_kind(gcols))
        .group_by("kind")
        .agg(mean=pl.col("probability").mean())
    )
    out = answers.join(means, on="kind", how="left").with_columns(prior=pl.coalesce("mean", "own"))
    prior = out["prior"].to_numpy().astype(float)
    posterior = (STRENGTH * prior + out["same"].to_numpy()) / (
        STRENGTH + out["answered"].to_numpy()
    )
    return (
        out.with_columns(
            posterior=pl.Series(posterior),
            shift=pl.Series(_log2_odds(posterior) - _log2_odds(prior)),
        )
        .select("kind", "answered", "same", "prior", "posterior", "shift")
        .sort("kind")
    )


def apply_shifts(
    scored: pl.DataFrame, shifts: pl.DataFrame | None, gcols: list[str]
) -> pl.DataFrame:
    """``scored`` with every pair of an answered kind moved by that kind's shift."""
    if shifts is None or shifts.is_empty() or scored.is_empty():
        return scored
    moved = scored.with_columns(kind=_kind(gcols)).join(
        shifts.select("kind", "shift"), on="kind", how="left", maintain_order="left"
    )
    shift = moved["shift"].fill_null(0.0).to_numpy()
    p = moved["probability"].to_numpy().astype(float)
    # from the pair's own weight where it has one: a probability of 1.0 has lost it
    base = (
        moved["match_weight"].to_numpy().astype(float)
        if "match_weight" in moved.columns
        else _log2_odds(p)
    )
    weight = base + shift
    touched = shift != 0
    return moved.with_columns(
        match_weight=pl.Series(np.where(touched, np.round(weight, 3), base)),
        probability=pl.Series(
            np.where(touched, 1.0 / (1.0 + np.exp2(-np.clip(weight, -60, 60))), p)
        ),
    ).drop("kind", "shift")


def review_pairs(
    pairs: pl.DataFrame, gcols: list[str], n: int = 20, answered: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The ``n`` pairs most worth a person's answer: of each kind of candidate pair, the
    one nearest an even chance, kinds ordered by how near; pairs already ``answered``
    (left_id, right_id) are left out. Ties go to the smaller ids, so the choice is
    reproducible."""
    todo = pairs
    if answered is not None and not answered.is_empty():
        a, b = pl.col("left_id").cast(pl.String), pl.col("right_id").cast(pl.String)
        done = answered.select(left_id=pl.min_horizontal(a, b), right_id=pl.max_horizontal(a, b))
        todo = todo.join(done, on=["left_id", "right_id"], how="anti")
    return (
        todo.with_columns(kind=_kind(gcols), margin=(pl.col("probability") - 0.5).abs())
        .sort("margin", "left_id", "right_id")
        .unique("kind", keep="first", maintain_order=True)
        .head(n)
        .drop("kind", "margin")
    )
