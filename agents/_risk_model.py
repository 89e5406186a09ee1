"""The learned risk score: will an open deal slip out of its quarter or be lost within the
next four weeks? Gradient-boosted trees on the as-of deal state, calibrated on later
weeks than they were fitted on, with reason codes a manager can read.

Training rows are weekly snapshots; a snapshot's label comes only from what happened in
the ``horizon`` after it, and only snapshots whose horizon has fully passed are used,
so the model never learns from a future it could not have seen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from agents._pipeline_signals import Benchmarks

__all__ = ["FEATURES", "REASON_GROUPS", "RiskModel", "feature_matrix", "outcome_labels",
           "HORIZON_DAYS"]  # fmt: skip

HORIZON_DAYS = 28
_CATEGORIES = {"pipeline": 0, "best_case": 1, "commit": 2}
FEATURES = [
    "stage_index", "probability", "category", "log_amount", "amount_ratio", "amount_changes",
    "amount_decreases", "days_open", "days_in_stage", "age_ratio", "close_date_pushes",
    "pushes_out_of_quarter", "days_since_push", "close_date_moved_days", "days_to_close",
    "days_since_two_way", "quiet_ratio", "days_since_activity", "two_way_30d", "outbound_30d",
    "outbound_since_two_way", "engaged_contacts", "engaged_30d", "contacts_on_deal",
    "has_champion", "has_economic_buyer", "champion_left", "economic_buyer_left",
    "champion_silent_days",
]  # fmt: skip
# Reason codes: the features a manager would name together, switched back to a typical
# deal's values one group at a time; the groups that lower the risk most are the reasons.
REASON_GROUPS: dict[str, list[str]] = {
    "quiet": ["days_since_two_way", "quiet_ratio", "days_since_activity", "two_way_30d",
              "outbound_30d", "outbound_since_two_way"],
    "slips": ["close_date_pushes", "pushes_out_of_quarter", "days_since_push",
              "close_date_moved_days"],
    "close_date": ["days_to_close"],
    "stage_age": ["days_in_stage", "age_ratio", "days_open"],
    "buyers": ["engaged_contacts", "engaged_30d", "contacts_on_deal", "has_economic_buyer"],
    "champion": ["has_champion", "champion_left", "economic_buyer_left", "champion_silent_days"],
    "amount": ["log_amount", "amount_ratio", "amount_changes", "amount_decreases"],
    "stage": ["stage_index", "probability", "category"],
}  # fmt: skip


def feature_matrix(states: pl.DataFrame, bench: Benchmarks, stages: list[str]) -> np.ndarray:
    """The model's inputs (``FEATURES`` order) from ``deal_states`` rows; NaN where unknown."""
    stage_ix = {k: float(i) for i, k in enumerate(stages)}
    x = states.select(
        stage_index=pl.col("stage").replace_strict(stage_ix, default=None, return_dtype=pl.Float64),
        probability="probability",
        category=pl.col("forecast_category").replace_strict(_CATEGORIES, default=None,
                                                            return_dtype=pl.Float64),
        log_amount=pl.col("amount").log1p(), amount_ratio="amount_ratio",
        amount_changes="amount_changes", amount_decreases="amount_decreases",
        days_open="days_open", days_in_stage="days_in_stage",
        age_ratio=pl.col("days_in_stage") / pl.col("stage").replace_strict(
            bench.stage_age_days, default=None, return_dtype=pl.Float64),
        close_date_pushes="close_date_pushes", pushes_out_of_quarter="pushes_out_of_quarter",
        days_since_push="days_since_push", close_date_moved_days="close_date_moved_days",
        days_to_close="days_to_close", days_since_two_way="days_since_two_way",
        quiet_ratio=pl.col("days_since_two_way") / pl.col("stage").replace_strict(
            bench.quiet_days, default=None, return_dtype=pl.Float64),
        days_since_activity="days_since_activity", two_way_30d="two_way_30d",
        outbound_30d="outbound_30d", outbound_since_two_way="outbound_since_two_way",
        engaged_contacts="engaged_contacts", engaged_30d="engaged_30d",
        contacts_on_deal="contacts_on_deal", has_champion="has_champion",
        has_economic_buyer="has_economic_buyer", champion_left="champion_left",
        economic_buyer_left="economic_buyer_left",
        champion_silent_days=(pl.col("as_of") - pl.col("champion_last_reply_at")).dt.total_days(),
    )  # fmt: skip
    return x.select(FEATURES).cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)


def outcome_labels(
    states: pl.DataFrame, final: pl.DataFrame, horizon_days: int = HORIZON_DAYS
) -> pl.DataFrame:
    """CRM-only labels for open-deal snapshots: within ``horizon_days`` the deal was lost,
    its close date moved into a later quarter, it was won in a later quarter, or its
    close date's quarter ended with the deal still open.

    ``states``: open deals at weekly moments (``deal_states(..., open_only=True)``);
    ``final``: every deal at the data's as-of (``deal_states(..., as_of)``). Only rows
    whose moment + horizon is itself one of the moments are labelled (others dropped).
    """
    h = dt.timedelta(days=horizon_days)
    moments = set(states["as_of"].unique().to_list())
    now = states.filter(pl.col("as_of").is_in([m for m in moments if m + h in moments]))
    later = states.select(
        "opportunity_id", as_of=pl.col("as_of") - h, later_close="close_date", _seen=pl.lit(True)
    )  # fmt: skip
    closed = final.filter("is_closed").select(
        "opportunity_id", "is_won", closed_at="stage_entered_at", closed_on="close_date"
    )
    quarter = pl.col("close_date").dt.truncate("1q")
    out = (
        now.join(later, on=["as_of", "opportunity_id"], how="left")
        .join(closed, on="opportunity_id", how="left")
        .with_columns(
            _open_later=pl.col("_seen").fill_null(False)
            | pl.col("closed_at").is_null() | (pl.col("closed_at") > pl.col("as_of") + h),
        )
        .with_columns(
            label=pl.when(pl.col("_open_later"))
            # still open: its close date moved to a later quarter, or its quarter ended
            .then((pl.col("later_close").dt.truncate("1q") > quarter)
                  | (quarter.dt.offset_by("1q").cast(pl.Datetime("us")) <= pl.col("as_of") + h))
            .otherwise(~pl.col("is_won") | (pl.col("closed_on").dt.truncate("1q") > quarter))
            .fill_null(False)
        )
    )  # fmt: skip
    return out.select("as_of", "opportunity_id", "label")


class RiskModel(ClassifierMixin, BaseEstimator):
    """Boosted trees, isotonic-calibrated on the latest ``calibration_share`` of the
    training weeks (``time`` passed to ``fit``), so probabilities are honest about
    weeks the trees did not see. ``reasons`` gives the reason codes."""

    def __init__(
        self,
        *,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        calibration_share: float = 0.25,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.calibration_share = calibration_share
        # One OpenMP thread by default: on a machine whose cores other processes share,
        # spinning OpenMP workers made a fit 6x slower (7.7 s vs 48 s, 15k rows, 2 cores).
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, time: np.ndarray | None = None) -> RiskModel:
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self._fit(X, y, time)

    def _fit(self, X: np.ndarray, y: np.ndarray, time: np.ndarray | None) -> RiskModel:
        y = np.asarray(y, dtype=int)
        t = np.arange(len(y)) if time is None else np.asarray(time)
        cut = np.quantile(np.unique(t), 1 - self.calibration_share) if len(t) else 0
        early, late = t < cut, t >= cut
        if early.sum() < 50 or late.sum() < 50 or len(np.unique(y[late])) < 2:
            early = late = np.ones(len(y), bool)  # too little data to hold weeks back
        # A feature the data never fills (no activities in an export, say) is left out.
        self.used_ = ~np.all(np.isnan(X), axis=0)
        X = X[:, self.used_]
        self.base_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            random_state=self.random_state, early_stopping=False,
        ).fit(X[early], y[early])  # fmt: skip
        self.calibrated_ = CalibratedClassifierCV(
            FrozenEstimator(self.base_), method="isotonic"
        ).fit(X[late], y[late])
        self.classes_ = self.calibrated_.classes_
        full = np.full((1, len(self.used_)), np.nan)
        full[0, self.used_] = np.nanmedian(X[y == 0] if (y == 0).any() else X, axis=0)
        self.reference_ = full[0]
        self.n_train_, self.base_rate_ = len(y), float(y.mean()) if len(y) else 0.0
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self.calibrated_.predict_proba(X[:, self.used_])

    def risk(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the risk (slip or loss within the horizon)."""
        return self.predict_proba(X)[:, 1] if len(X) else np.zeros(0)

    def reasons(self, X: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, up to ``k`` (group, risk points) pairs: how much the risk falls when
        that group of features is set to a typical healthy deal's values."""
        if not len(X):
            return []
        base = self.risk(X)
        drops = []
        for cols in REASON_GROUPS.values():
            idx = [FEATURES.index(c) for c in cols]
            swapped = X.copy()
            swapped[:, idx] = self.reference_[idx]
            drops.append(base - self.risk(swapped))
        d = np.vstack(drops).T
        names = list(REASON_GROUPS)
        out = []
        for row in d:
            order = np.argsort(-row)[:k]
            out.append([(names[i], float(row[i])) for i in order if row[i] > 0.01])
        return out


def describe(model: RiskModel) -> dict[str, Any]:
    return {"n_train": model.n_train_, "base_rate": round(model.base_rate_, 4),
            "features": FEATURES}  # fmt: skip
