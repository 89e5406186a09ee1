"""Acceptance sampling: how much a reviewed sample says about the batch it came from.

A batch holds ``N`` proposals of one kind; a reviewer decides a simple random sample of
``n`` of them and finds ``k`` wrong (rejected or edited). Drawn without replacement from
a finite batch, the number wrong in the sample is hypergeometric, so the exact upper
bound on the batch's error rate is the largest defect count ``D`` for which seeing ``k``
or fewer wrong is still plausible: P(X <= k | N, D, n) > 1 - confidence. For a large
batch this tends to the one-sided Clopper-Pearson bound; for a small one it is tighter
(reviewing all ``N`` leaves no doubt at all). docs/design.md ("Review at scale") has the
reasoning; the functions here are what the engine records as a batch decision's evidence.

A batch's sample can be extended and looked at again. Testing every look at the same
confidence would let chance pass a batch at the bar far more often than 1 - confidence
(optional stopping), so look ``j`` is tested at ``look_confidence(confidence, j)``: it
spends (1 - confidence) / 2**j, and the spends of all looks together stay below
1 - confidence however many looks a batch gets.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "Evidence",
    "error_lower_bound",
    "error_upper_bound",
    "evidence",
    "look_confidence",
    "sample_size",
    "still_needed",
    "stratified_share",
    "wilson",
]


@functools.lru_cache(maxsize=1 << 16)
def _hypergeom_cdf(k: int, N: int, D: int, n: int) -> float:
    """P(X <= k) for X wrong in a sample of n from N holding D wrong. Kept: the bisections
    ask scipy for the same points again and again (a call costs far more than the sum)."""
    from scipy.stats import hypergeom  # scipy: imported when a batch is evaluated

    return float(hypergeom.cdf(k, N, D, n))


def error_upper_bound(k: int, n: int, N: int, confidence: float = 0.95) -> float:
    """The largest error rate of the batch (D/N) that ``k`` wrong in ``n`` does not rule
    out at ``confidence``; 0 when every proposal was reviewed and none was wrong."""
    if not 0 <= k <= n <= N:
        raise ValueError(f"need 0 <= wrong ({k}) <= sampled ({n}) <= batch ({N})")
    if n == 0:
        return 1.0
    alpha = 1.0 - confidence
    # D below k + (N - n) is possible; P(X <= k) falls as D grows: find the last D whose
    # probability of so few wrong is still above alpha.
    lo, hi = k, N - (n - k)  # D = k is always consistent; more than N - (n - k) is not
    if _hypergeom_cdf(k, N, hi, n) > alpha:
        return hi / N
    while hi - lo > 1:  # invariant: cdf(lo) > alpha >= cdf(hi)
        mid = (lo + hi) // 2
        if _hypergeom_cdf(k, N, mid, n) > alpha:
            lo = mid
        else:
            hi = mid
    return lo / N


def error_lower_bound(k: int, n: int, N: int, confidence: float = 0.95) -> float:
    """The smallest error rate of the batch (D/N) that ``k`` wrong in ``n`` does not rule
    out at ``confidence``: the batch is worse than this. 0 when none was wrong.

    The mirror of ``error_upper_bound``: the first D for which seeing ``k`` or more wrong
    is still plausible, P(X >= k | N, D, n) > 1 - confidence. A batch whose lower bound
    is above the bar fails it, and no further sampling will make it pass."""
    if not 0 <= k <= n <= N:
        raise ValueError(f"need 0 <= wrong ({k}) <= sampled ({n}) <= batch ({N})")
    if k == 0:
        return 0.0
    alpha = 1.0 - confidence
    # P(X >= k) = 1 - P(X <= k - 1) rises with D; D = k is the least that can show k wrong.
    lo, hi = k, N - (n - k)  # invariant once checked: P(X >= k | hi) > alpha
    if 1.0 - _hypergeom_cdf(k - 1, N, lo, n) > alpha:
        return lo / N
    while hi - lo > 1:  # invariant: P(X >= k | lo) <= alpha < P(X >= k | hi)
        mid = (lo + hi) // 2
        if 1.0 - _hypergeom_cdf(k - 1, N, mid, n) > alpha:
            hi = mid
        else:
            lo = mid
    return hi / N


def look_confidence(confidence: float, look: int) -> float:
    """The confidence look ``look`` (1, 2, ...) of a batch's sample is tested at, so that
    what the batch's evidence claims holds at ``confidence`` over all its looks: look j
    may be wrong with chance (1 - confidence) / 2**j, and by Bonferroni's inequality the
    chance that any look is wrong is at most their sum, below 1 - confidence."""
    if look < 1:
        raise ValueError(f"looks are counted from 1, not {look}")
    return 1.0 - (1.0 - confidence) / 2**look


def sample_size(N: int, bar: float = 0.05, confidence: float = 0.95) -> int:
    """How many proposals to review, none wrong, to show the batch's error rate is below
    ``bar``: ln(1 - confidence) / ln(1 - bar) for a large batch (59 at 5%, 299 at 1%),
    fewer for a small one, never more than the batch."""
    if N <= 0:
        return 0
    if not 0 < bar < 1 or not 0 < confidence < 1:
        raise ValueError("bar and confidence are shares between 0 and 1")
    large = math.ceil(math.log(1 - confidence) / math.log(1 - bar))
    for n in range(1, min(N, large) + 1):
        if error_upper_bound(0, n, N, confidence) < bar:
            return n
    return min(N, large)


def still_needed(k: int, n: int, N: int, bar: float, confidence: float = 0.95) -> int | None:
    """More reviews, all found right, before the bound falls below ``bar``: 0 if it is
    there already, None if no number of further right answers can get it there."""
    if error_upper_bound(k, n, N, confidence) < bar:
        return 0
    if error_upper_bound(k, N, N, confidence) >= bar:
        return None  # k wrong are already too many for this batch
    lo, hi = n, N  # bound(hi) < bar; find the smallest such sample
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if error_upper_bound(k, mid, N, confidence) < bar:
            hi = mid
        else:
            lo = mid
    return hi - n


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of a share (for display; None with nothing to count)."""
    if n == 0:
        return None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified_share(strata: list[tuple[int, int, int]]) -> tuple[float, float] | None:
    """A share estimated stratum by stratum and combined with weights N_h / N.

    ``strata`` is (N_h, n_h, right_h) per stratum. Strata sampled at different rates must
    not be pooled by raw counts: a small batch reviewed whole would otherwise count as
    much as a large one sampled thinly. Returns (estimate, standard error), the error
    with each stratum's finite-population correction; None if no stratum has a sample.
    """
    seen = [(N, n, r) for N, n, r in strata if n > 0]
    total = sum(N for N, _, _ in seen)
    if not seen or total == 0:
        return None
    estimate = sum(N / total * (r / n) for N, n, r in seen)
    variance = 0.0
    for N, n, r in seen:
        p = r / n
        fpc = (N - n) / (N - 1) if N > 1 else 0.0
        variance += (N / total) ** 2 * p * (1 - p) / n * fpc
    return estimate, math.sqrt(variance)


@dataclass(frozen=True)
class Evidence:
    """What a reviewed sample says about its batch, as a batch decision records it."""

    batch_size: int
    sample_size: int
    decided: int
    right: int  # approved unchanged
    wrong: int  # rejected or edited
    stale: int  # the record changed before anyone decided: says nothing either way
    bar: float
    confidence: float
    error_upper_bound: float
    right_share_interval: tuple[float, float] | None
    still_needed: int | None

    error_lower_bound: float = 0.0
    looks: int = 1  # the sample's looks so far: the bounds above are at this look's level

    @property
    def look_confidence(self) -> float:
        """The level this look's bounds are at (``confidence`` is over all looks)."""
        return look_confidence(self.confidence, self.looks)

    def _level(self) -> str:
        share = f"{100 * self.look_confidence:.4f}".rstrip("0").rstrip(".")
        looks = f"{self.looks:,} look{'s' if self.looks > 1 else ''}"
        return f"{self.confidence:.0%} confidence over {looks} (this one at {share}%"

    @property
    def meets_bar(self) -> bool:
        return self.decided == self.sample_size and self.error_upper_bound < self.bar

    @property
    def fails_bar(self) -> bool:
        """The whole sample is decided and shows the batch's error rate above the bar:
        approving the rest is ruled out, and sampling more will not change that."""
        return self.decided == self.sample_size and self.error_lower_bound > self.bar

    def sentence(self) -> str:
        """The evidence as a person says it."""
        if self.decided < self.sample_size:
            return (
                f"{self.decided:,} of {self.sample_size:,} sampled proposals decided "
                f"(look {self.looks:,} at the sample); "
                "the sample must be decided whole before the batch can be"
            )
        if self.fails_bar:
            return (
                f"we reviewed {self.decided:,} of {self.batch_size:,}; {self.wrong:,} wrong; "
                f"the batch's error rate is above {self.bar:.0%} with {self._level()}, "
                f"lower bound {self.error_lower_bound:.1%}): it fails the bar"
            )
        claim = "below" if self.meets_bar else "not shown below"
        return (
            f"we reviewed {self.decided:,} of {self.batch_size:,}; {self.wrong:,} wrong; "
            f"the batch's error rate is {claim} {self.bar:.0%} with {self._level()}, "
            f"upper bound {self.error_upper_bound:.1%})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "look_confidence": self.look_confidence,
            "meets_bar": self.meets_bar,
            "fails_bar": self.fails_bar,
        }


def evidence(
    *,
    batch_size: int,
    sample_size: int,
    right: int,
    wrong: int,
    stale: int,
    bar: float,
    confidence: float,
    looks: int = 1,
) -> Evidence:
    """The sample's evidence at its ``looks``-th look. Stale cards leave the sample: they
    were neither right nor wrong, and the bound is computed over the batch without them.

    Both bounds are at this look's level, so neither passing nor failing the bar is
    helped by looking often. ``still_needed`` counts the right answers that would reach
    the bar at the next look's level, since reaching it takes another look."""
    decided = right + wrong + stale
    judged, population = right + wrong, batch_size - stale
    level = look_confidence(confidence, looks)
    upper = error_upper_bound(wrong, judged, population, level)
    more = (
        0
        if upper < bar
        else still_needed(wrong, judged, population, bar, look_confidence(confidence, looks + 1))
    )
    return Evidence(
        batch_size=batch_size,
        sample_size=sample_size,
        decided=decided,
        right=right,
        wrong=wrong,
        stale=stale,
        bar=bar,
        confidence=confidence,
        error_upper_bound=upper,
        right_share_interval=wilson(right, judged, confidence),
        still_needed=more,
        error_lower_bound=error_lower_bound(wrong, judged, population, level),
        looks=looks,
    )
