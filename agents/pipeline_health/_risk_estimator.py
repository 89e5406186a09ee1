"""The learned risk score: gradient-boosted trees on the as-of deal state (features from
``_risk_model``), calibrated on later weeks than they were fitted on, with reason
codes a manager can read."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from revstack.agents.pipeline_health._risk_model import FEATURES, REASON_GROUPS

__all__ = ["RiskModel"]


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
        # OpenMP's spinning workers contend with them and a fit gets many times slower
        # (measured: docs/pipeline_health.md, Signals).
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
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            random_state=self.random_state,
            early_stopping=False,
        ).fit(X[early], y[early])
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
