"""When the model cannot learn, say so, and decide by a fixed rule set instead.

A Fellegi-Sunter model estimated by EM needs at least two comparisons that are (roughly)
independent given the match status: with a name alone, "matches" and "non-matches" are
two mixtures of one variable, and any split fits equally well. EM can also fail to
converge, or converge on an implausible share of matches (none at all, or more duplicate
pairs than a list could hold). Then every record would come back alone, or every record
with every other; instead ``cannot_learn`` names the reasons and ``rule_probability``
decides each pair by these rules, the same for every list:

- every comparison's levels are in three tiers: strong agreement (the best levels),
  some agreement, and disagreement ("different"); a missing field counts nothing;
- points: a strong name agreement +2, some name agreement +1, a name that differs -3;
  with a name alone, one spelling of the same words (exact, the same words or spacing,
  the odd words spelt alike) +3: such a pair is surer than one name holding the
  other's words (a site and its organisation look like that), and average linkage then
  joins the spellings of a name before it weighs a longer or shorter name against them;
  a strong identifier (address, phone, e-mail, domain, zip, city) +2, some +1, a
  different one -1; the address, zip and city say where, once: of their agreements
  only the best counts (two companies in one building share all three);
- a pair links with 2 points or more: the names agree strongly and nothing disagrees,
  or the names agree somewhat and an identifier agrees.

A linked pair's probability is 0.5 + points/20 (at most 0.95), an unlinked one's
0.5 - (2 - points)/10 (at least 0.05): enough to rank pairs for a reviewer, and the same
average linkage then keeps clusters from chaining.
"""

from __future__ import annotations

import numpy as np

from revstack.data.identity._compare import Comparison, agree_groups
from revstack.data.identity._model import FellegiSunter

__all__ = ["cannot_learn", "rule_points", "rule_probability", "unsettled_sessions"]

_NAME_KINDS = ("name", "person")
# More expected duplicate pairs per record than this is not a list, it is one entity.
_MAX_PAIRS_PER_RECORD = 5.0


def unsettled_sessions(model: FellegiSunter) -> list[str]:
    """A note (not a reason to fall back) when some training sessions did not settle and
    the model was estimated from the others."""
    stuck = [s for s in model.sessions_ if not s["converged"]]
    if not stuck:
        return []
    rest = (
        "every candidate pair together"
        if len(stuck) == len(model.sessions_)
        else "the others (and every candidate pair for a field none of them learns)"
    )
    return [
        f"EM did not converge in {model.max_iter} iterations in {len(stuck)} of "
        f"{len(model.sessions_)} training sessions ({sum(s['pairs'] for s in stuck):,} "
        f"pairs): the model was estimated from {rest}"
    ]


def cannot_learn(
    model: FellegiSunter,
    comparisons: list[Comparison],
    n_records: int,
    total_pairs: int,
    sure_pairs: int,
) -> list[str]:
    """Why the estimated model is not to be trusted (empty when it is).

    ``sure_pairs`` counts the candidate pairs that agree at the best level on every
    field both records have (two at least, when there are two): almost all are duplicates, so a model
    expecting far fewer matches than that has learnt nothing.
    """
    reasons = []
    if len(comparisons) < 2:
        reasons.append(
            f"only one field ({comparisons[0].kind}) to compare: EM cannot tell matching "
            "pairs from non-matching ones with one field"
        )
    if model.unsettled_:
        kinds = ", ".join(comparisons[k].kind for k in model.unsettled_)
        reasons.append(
            f"EM did not converge in {model.max_iter} iterations for {kinds}: no training "
            "session that settled estimated it, nor all candidate pairs together"
        )
    expected = model.lambda_ * total_pairs
    if expected > _MAX_PAIRS_PER_RECORD * n_records:
        reasons.append(
            f"implausible match share: {expected:,.0f} expected duplicate pairs among "
            f"{n_records:,} records"
        )
    elif sure_pairs >= 10 and expected < 0.1 * sure_pairs:
        reasons.append(
            f"implausible match share: {expected:,.1f} expected duplicate pairs, yet "
            f"{sure_pairs:,} pairs agree on every field"
        )
    for k, c in enumerate(comparisons):
        best = len(model.m_[k]) - 1
        if model.m_[k][best] < model.u_[k][best]:
            reasons.append(
                f"the model learnt that agreeing exactly on {c.kind} is evidence against"
            )
    return reasons


def rule_points(patterns: np.ndarray, comparisons: list[Comparison]) -> np.ndarray:
    """Points per pair (rows of ``patterns``: one level per comparison, -1 missing)."""
    parts = np.zeros(patterns.shape)
    for k, c in enumerate(comparisons):
        g = patterns[:, k]
        name = c.kind in _NAME_KINDS
        parts[:, k] = np.where(g >= c.strong, 2.0, np.where(g >= c.weak, 1.0, 0.0)) * (g > 0)
        parts[:, k] += np.where(g == 0, -3.0 if name else -1.0, 0.0)
        if len(comparisons) == 1 and c.spelt:
            parts[:, k] += np.where(g >= c.spelt, 1.0, 0.0)
    points = parts.sum(axis=1)
    for group in agree_groups([c.kind for c in comparisons]):
        pos = np.maximum(parts[:, list(group)], 0.0)
        points += pos.max(axis=1) - pos.sum(axis=1)
    return points


def rule_probability(patterns: np.ndarray, comparisons: list[Comparison]) -> np.ndarray:
    """The rule set's probability that each pair is one entity (>= 0.5 when it links)."""
    points = rule_points(patterns, comparisons)
    return np.where(
        points >= 2,
        np.minimum(0.5 + points / 20, 0.95),
        np.maximum(0.5 - (2 - points) / 10, 0.05),
    )
