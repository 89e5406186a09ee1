"""Revenue from deals not yet created at the snapshot: a time series per period kind and
snapshot point, forecast with statsmodels exponential smoothing.

The series, for periods over by the moment: revenue won in the period from deals
created after the same point of that period. It is modelled on log(1 + revenue) with a
damped additive trend, and additive seasonality once two full years (8 quarters, 24 months)
are there; shorter series get the trend only, very short ones their mean. The forecast
is a log-normal around the one-step prediction with the spread of the in-sample
one-step errors, read robustly (1.4826 x their median absolute value) and capped at
``_MAX_SIGMA``: a young CRM's first months, with no new-deal wins at all, otherwise
give wild draws that inflate early expected values (docs/forecast.md, How it works,
step 3). Leading zeros (before the CRM had any such revenue) are left out of the
series. A series that is zero in more than a quarter of its periods (late snapshot
points) is a hurdle model instead: the share of periods with any revenue, times a
log-normal of the sizes when there was some. ``rep_shares``: how a company draw is
split between reps (their share of recent wins of such deals, shrunk toward equal
shares), so segments add up.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl

__all__ = ["NewBusiness", "new_series", "rep_shares"]

_SEASON = {"month": 12, "quarter": 4}
_MAX_SIGMA = 1.0  # log units: a factor of e for one standard deviation
_HURDLE = 0.25  # share of periods with no such revenue above which zeros are modelled apart
_SHARE_PRIOR = 0.5  # pseudo-periods of an equal share for each rep


def new_series(actuals: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    """Per snapshot (any period): revenue won in its period from deals created after its
    moment; complete only for periods already over."""
    a = actuals.select("period_kind", "period_start", "owner_id", "amount", "created_at")
    pairs = snaps.join(a, on=["period_kind", "period_start"], how="left")
    return pairs.group_by("period_kind", "period_start", "offset", "period_end", "moment").agg(
        new=(pl.col("amount") * (pl.col("created_at") > pl.col("moment"))).sum().fill_null(0.0)
    )


class NewBusiness:
    """One-step forecast of a series of non-negative period revenues."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def fit(self, values: np.ndarray) -> NewBusiness:
        y = np.log1p(np.clip(np.asarray(values, dtype=float), 0.0, None))
        started = np.flatnonzero(y > 0)
        y = y[started[0] :] if len(started) else y
        m = _SEASON[self.kind]
        self.n_ = len(y)
        self.p_ = 1.0  # chance the period has any such revenue at all
        zeros = float(np.mean(y == 0)) if len(y) else 0.0
        if len(y) >= 4 and zeros > _HURDLE and np.sum(y > 0) >= 2:
            # Often nothing at all (late in a period, few deals are created and won in it):
            # a log-normal through the zeros has no sensible centre, so the chance of any
            # revenue and the size when there is some are kept apart (a hurdle model).
            pos = y[y > 0]
            self.p_ = 1.0 - zeros
            self.mu_ = float(pos.mean())
            self.sigma_ = min(float(pos.std(ddof=1)), _MAX_SIGMA) if len(pos) > 1 else _MAX_SIGMA
            self.method_ = "hurdle"
            return self
        if len(y) < 4 or np.ptp(y) == 0:  # too short, or flat (often zero): nothing to smooth
            self.mu_ = float(y.mean()) if len(y) else 0.0
            self.sigma_ = (
                min(float(y.std(ddof=1)), _MAX_SIGMA)
                if len(y) > 1 and np.ptp(y) > 0
                else (1.0 if len(y) < 4 else 0.0)
            )
            self.method_ = "mean"
            return self
        seasonal = (
            "add" if len(y) >= 2 * m else None
        )  # two full cycles: what the seasonal start needs
        # Imported here: its modules are a quarter of a second of a process's start, and a
        # weekly run whose live points are late in their periods (hurdle or mean models)
        # fits none.
        from statsmodels.tools.sm_exceptions import ConvergenceWarning
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        # A run of zero months (common for new-deal wins in a month) has no error to log.
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            fit = ExponentialSmoothing(
                y,
                trend="add",
                damped_trend=True,
                seasonal=seasonal,
                seasonal_periods=m if seasonal else None,
                initialization_method="estimated",
            ).fit(use_brute=False)  # a brute-force start is slow: docs/forecast.md, step 3
            resid = y - fit.fittedvalues
            self.mu_ = float(fit.forecast(1)[0])
        recent = resid[-min(len(resid), 3 * m) :]
        self.sigma_ = min(1.4826 * float(np.median(np.abs(recent))), _MAX_SIGMA)
        self.method_ = "ets_seasonal" if seasonal else "ets"
        return self

    def sample(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of next period's revenue."""
        size = np.clip(np.expm1(rng.normal(self.mu_, max(self.sigma_, 1e-6), draws)), 0.0, None)
        return size * (rng.random(draws) < self.p_) if self.p_ < 1.0 else size


def rep_shares(
    actuals: pl.DataFrame,
    owners: list[str],
    moment: dt.datetime,
    *,
    days: int = 365,
    working: np.ndarray | None = None,
) -> np.ndarray:
    """Each owner's share of won revenue from deals created and won within a period in the
    ``days`` before ``moment``, shrunk toward equal shares (sums to 1).

    ``working`` (a mask over ``owners``): who can win new business at the moment, known
    then, e.g. owners of an open deal. Only they get a share: a rep who has left, a
    manager who owns no deal, or the catch-all owner of deals without a known owner
    would otherwise be handed part of every draw (the equal-share prior alone gives each
    owner 1/(3n) of it) and show a range above an actual that is always zero."""
    recent = actuals.filter(
        (pl.col("period_kind") == "quarter")
        & (pl.col("won_at") <= moment)
        & (pl.col("won_at") > moment - dt.timedelta(days=days))
        & (pl.col("created_at").dt.truncate("1q") == pl.col("won_at").dt.truncate("1q"))
    )
    by = dict(recent.group_by("owner_id").agg(pl.col("amount").sum()).iter_rows())
    x = np.array([by.get(o, 0.0) for o in owners], dtype=float)
    n = len(owners)
    if n == 0:
        return x
    can = (
        np.ones(n, dtype=bool)
        if working is None or not np.any(working)
        else np.asarray(working, dtype=bool)
    )
    x = np.where(can, x, 0.0)
    total, k = x.sum(), int(can.sum())
    prior = _SHARE_PRIOR * (total / k if total > 0 else 1.0)
    return np.where(can, x + prior, 0.0) / (total + prior * k)
