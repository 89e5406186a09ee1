"""Forecast accuracy scores: pure functions of numbers, no warehouse.

Point accuracy (MAPE, WAPE, signed bias, share over-forecast, share within ±5% / ±10%),
range accuracy (P10–P90 coverage with a Wilson interval, and one from resampling whole
periods when a period has several snapshots; tail exceedance, pinball loss, CRPS,
interval width), the ratio of two forecasts' MAPEs with an interval from resampling
whole periods, and deal calibration (Brier score, reliability curve). Each takes
arrays of the same length; periods whose actual is zero are left out of the
percentage errors (a percentage of nothing is not defined) and counted in ``n_zero``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from statsmodels.stats.proportion import proportion_confint

__all__ = [
    "point_scores",
    "mape_ratio",
    "range_scores",
    "share_interval",
    "pinball",
    "crps_from_draws",
    "crps_from_quantiles",
    "brier",
    "reliability",
]

ArrayLike = Sequence[float] | np.ndarray


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def point_scores(actual: ArrayLike, forecast: ArrayLike) -> dict[str, float | int | None]:
    """MAPE, WAPE, mean signed percentage error (bias; > 0 over-forecasts), share of
    periods over-forecast, and share within ±5% and ±10% of the actual."""
    a, f = _arr(actual), _arr(forecast)
    ok = a != 0
    n = int(ok.sum())
    if n == 0:
        return {
            "n": 0,
            "n_zero": int((~ok).sum()),
            "mape": None,
            "wape": None,
            "bias": None,
            "over_share": None,
            "within_5": None,
            "within_10": None,
        }
    pe = (f[ok] - a[ok]) / np.abs(a[ok])
    return {
        "n": n,
        "n_zero": int((~ok).sum()),
        "mape": float(np.mean(np.abs(pe))),
        "wape": float(np.sum(np.abs(f - a)) / np.sum(np.abs(a))),
        "bias": float(np.mean(pe)),
        "over_share": float(np.mean(pe > 0)),
        "within_5": float(np.mean(np.abs(pe) <= 0.05)),
        "within_10": float(np.mean(np.abs(pe) <= 0.10)),
    }


def _period_bootstrap(
    key: np.ndarray, num: np.ndarray, den: np.ndarray, level: float, draws: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of sum(num) / sum(den) when whole periods (``key``) are
    resampled with replacement."""
    _, idx = np.unique(key, return_inverse=True)
    n_p, d_p = np.bincount(idx, num), np.bincount(idx, den)
    pick = np.random.default_rng(seed).integers(0, len(n_p), size=(draws, len(n_p)))
    top, bottom = n_p[pick].sum(axis=1), d_p[pick].sum(axis=1)
    boot = np.divide(top, bottom, out=np.full(draws, np.inf), where=bottom > 0)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mape_ratio(
    period: Sequence[object] | np.ndarray,
    actual: ArrayLike,
    forecast: ArrayLike,
    baseline: ArrayLike,
    *,
    level: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """``forecast``'s MAPE over ``baseline``'s on the same snapshots, with a percentile
    bootstrap interval (``level``) that resamples whole periods.

    A period's snapshots (a quarter's day 0, 28 and 56) share its outcome and err
    together, so they are one draw: resampling snapshots one by one would make twelve
    quarters look like thirty-six and the interval too narrow. Snapshots with a zero
    actual are left out, as in ``point_scores``."""
    key, a, f, b = np.asarray(period), _arr(actual), _arr(forecast), _arr(baseline)
    ok = a != 0
    periods = len(np.unique(key[ok])) if ok.any() else 0
    err_f, err_b = np.abs(f[ok] - a[ok]) / np.abs(a[ok]), np.abs(b[ok] - a[ok]) / np.abs(a[ok])
    if not ok.any() or err_b.sum() == 0:
        return {"ratio": None, "low": None, "high": None, "periods": periods}
    lo, hi = _period_bootstrap(key[ok], err_f, err_b, level, draws, seed)
    return {"ratio": float(err_f.sum() / err_b.sum()), "low": lo, "high": hi, "periods": periods}


def share_interval(
    period: Sequence[object] | np.ndarray,
    hit: ArrayLike,
    *,
    level: float = 0.95,
    draws: int = 2000,
    seed: int = 0,
) -> list[float] | None:
    """Interval of a share of snapshots (a range's coverage) that resamples whole
    periods, for when a period has several snapshots: they share one outcome, and a
    binomial interval on snapshots would count each as fresh evidence."""
    key, h = np.asarray(period), _arr(hit)
    if len(h) == 0:
        return None
    return list(_period_bootstrap(key, h, np.ones(len(h)), level, draws, seed))


def pinball(actual: ArrayLike, quantile: ArrayLike, tau: float) -> float:
    """Mean pinball (quantile) loss of ``quantile`` as the ``tau`` quantile."""
    a, q = _arr(actual), _arr(quantile)
    d = a - q
    return float(np.mean(np.maximum(tau * d, (tau - 1) * d)))


def range_scores(
    actual: ArrayLike,
    p10: ArrayLike,
    p50: ArrayLike,
    p90: ArrayLike,
    *,
    crps: ArrayLike | None = None,
    period: Sequence[object] | np.ndarray | None = None,
) -> dict[str, float | int | list[float] | None]:
    """P10–P90 coverage with its 95% Wilson interval, the share below P10 and above P90,
    pinball loss at 0.1 / 0.5 / 0.9, mean CRPS (when given) and the mean interval width,
    absolute and relative to the actual. With ``period`` (each snapshot's period, for
    snapshots of several points), also ``coverage_ci_periods`` (``share_interval``)."""
    a, lo, mid, hi = _arr(actual), _arr(p10), _arr(p50), _arr(p90)
    n = len(a)
    if n == 0:
        return {"n": 0}
    held = (a >= lo) & (a <= hi)
    inside = int(held.sum())
    ci_lo, ci_hi = proportion_confint(inside, n, alpha=0.05, method="wilson")
    ok = a != 0
    by_period = {} if period is None else {"coverage_ci_periods": share_interval(period, held)}
    return {
        "n": n,
        "coverage": inside / n,
        "coverage_ci": [float(ci_lo), float(ci_hi)],
        **by_period,
        "below_p10": float(np.mean(a < lo)),
        "above_p90": float(np.mean(a > hi)),
        "pinball_10": pinball(a, lo, 0.1),
        "pinball_50": pinball(a, mid, 0.5),
        "pinball_90": pinball(a, hi, 0.9),
        "crps": None if crps is None else float(np.mean(_arr(crps))),
        "width": float(np.mean(hi - lo)),
        "relative_width": float(np.mean((hi[ok] - lo[ok]) / np.abs(a[ok]))) if ok.any() else None,
    }


def crps_from_draws(draws: np.ndarray, actual: float) -> float:
    """CRPS of an empirical distribution: E|X - y| - E|X - X'| / 2, exact for the sample
    (sorted-sample form, O(n log n)). A point forecast is one draw: CRPS = |f - y|."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    m = len(x)
    first = np.mean(np.abs(x - actual))
    # E|X - X'| over all ordered pairs = 2 / m^2 * sum_i (2i - m - 1) x_(i), i = 1..m
    i = np.arange(1, m + 1)
    spread = 2.0 * np.sum((2 * i - m - 1) * x) / (m * m)
    return float(first - 0.5 * spread)


def crps_from_quantiles(quantiles: np.ndarray, levels: np.ndarray, actual: float) -> float:
    """CRPS approximated from a grid of quantiles: twice the mean pinball loss over the
    levels (exact in the limit of a fine, even grid)."""
    q, t = np.asarray(quantiles, dtype=float), np.asarray(levels, dtype=float)
    d = actual - q
    return float(2.0 * np.mean(np.maximum(t * d, (t - 1) * d)))


def brier(probability: ArrayLike, outcome: ArrayLike) -> float | None:
    """Mean squared error of probabilities against 0/1 outcomes."""
    p, y = _arr(probability), _arr(outcome)
    return float(np.mean((p - y) ** 2)) if len(p) else None


def reliability(probability: ArrayLike, outcome: ArrayLike, *, bins: int = 10) -> pl.DataFrame:
    """Reliability curve: per equal-width probability bin, the mean predicted probability,
    the observed frequency and the number of predictions (empty bins left out)."""
    p, y = _arr(probability), _arr(outcome)
    b = np.minimum((p * bins).astype(int), bins - 1)
    df = pl.DataFrame({"bin": b, "p": p, "y": y})
    return (
        df.group_by("bin")
        .agg(
            lower=(pl.col("bin").first() / bins),
            predicted=pl.col("p").mean(),
            observed=pl.col("y").mean(),
            deals=pl.len(),
        )
        .sort("bin")
        .with_columns(pl.col("bin").cast(pl.Int32), pl.col("deals").cast(pl.Int64))
    )
