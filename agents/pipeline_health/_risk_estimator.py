"""The learned risk score: gradient-boosted trees on the as-of deal state (features from
``_risk_model``), calibrated on later weeks than they were fitted on, with reason
codes a manager can read. ``RiskScorer`` is a fitted model as its numbers (the form a
later run reads back from the warehouse, ``_stored``), scoring exactly as the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import interp1d
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from revstack.agents._trees import check_nodes
from revstack.agents.pipeline_health._risk_model import FEATURES, REASON_GROUPS

__all__ = ["NODE_DTYPE", "RiskModel", "RiskScorer"]

# A tree node as scikit-learn's tree walk reads it (value, feature, threshold, children, ...).
NODE_DTYPE = PREDICTOR_RECORD_DTYPE
_NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)


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
        return _reasons(self.risk, self.reference_, X, k)


def _reasons(
    risk: Callable[[np.ndarray], np.ndarray], reference: np.ndarray, X: np.ndarray, k: int
) -> list[list[tuple[str, float]]]:
    if not len(X):
        return []
    base = risk(X)
    drops = []
    for cols in REASON_GROUPS.values():
        idx = [FEATURES.index(c) for c in cols]
        swapped = X.copy()
        swapped[:, idx] = reference[idx]
        drops.append(base - risk(swapped))
    d = np.vstack(drops).T
    names = list(REASON_GROUPS)
    out = []
    for row in d:
        order = np.argsort(-row)[:k]
        out.append([(names[i], float(row[i])) for i in order if row[i] > 0.01])
    return out


@dataclass(frozen=True)
class RiskScorer:
    """A fitted ``RiskModel`` as its numbers: which features it used, the healthy
    reference the reason codes swap in, the trees' start value and node tables, and the
    isotonic map's points. ``risk`` is the model's: the same tree walk (scikit-learn's),
    summed in the same order, through the same clipped linear interpolation, so a model
    read back scores every deal as the fitted one did, to the digit."""

    used: np.ndarray  # bool, one per FEATURES
    reference: np.ndarray  # float64, one per FEATURES
    baseline: float
    nodes: tuple[np.ndarray, ...]  # NODE_DTYPE, one array per tree
    iso_x: np.ndarray
    iso_y: np.ndarray
    iso_lo: float
    iso_hi: float
    n_train: int
    base_rate: float

    @classmethod
    def of(cls, m: RiskModel) -> RiskScorer:
        hgb = m.base_
        if hgb.n_trees_per_iteration_ != 1 or hgb._preprocessor is not None:
            raise ValueError("only a two-class model without categorical features is kept")
        (cal,) = m.calibrated_.calibrated_classifiers_
        (iso,) = cal.calibrators
        return cls(
            used=np.asarray(m.used_, dtype=bool),
            reference=np.asarray(m.reference_, dtype=np.float64),
            baseline=float(np.ravel(hgb._baseline_prediction)[0]),
            nodes=tuple(it[0].nodes for it in hgb._predictors),
            iso_x=np.asarray(iso.X_thresholds_, dtype=np.float64),
            iso_y=np.asarray(iso.y_thresholds_, dtype=np.float64),
            iso_lo=float(iso.X_min_),
            iso_hi=float(iso.X_max_),
            n_train=int(m.n_train_),
            base_rate=float(m.base_rate_),
        )

    def check(self) -> RiskScorer:
        """What scikit-learn's tree walk trusts, checked before it sees a tree read back:
        every split's children are later nodes of its tree, its feature exists, and no
        split is categorical (the model has no categorical features)."""
        n = int(self.used.sum())
        if len(self.used) != len(FEATURES) or len(self.reference) != len(FEATURES):
            raise ValueError("the feature mask is not the model's features")
        if len(self.iso_x) != len(self.iso_y) or not len(self.iso_y):
            raise ValueError("calibration points do not pair up")
        for nodes in self.nodes:
            split = check_nodes(nodes, n)
            if (nodes["is_categorical"][split] != 0).any():
                raise ValueError("a categorical split in a model without categories")
        return self

    def risk(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of the risk, as ``RiskModel.risk``."""
        if not len(X):
            return np.zeros(0)
        x = np.ascontiguousarray(X[:, self.used], dtype=np.float64)
        f_idx = np.zeros(x.shape[1], dtype=np.uint32)
        raw = np.zeros(len(x), dtype=np.float64)
        raw += self.baseline
        for nodes in self.nodes:
            raw += TreePredictor(nodes, _NO_BITSETS, _NO_BITSETS).predict(x, _NO_BITSETS, f_idx, 1)
        t = np.clip(raw, self.iso_lo, self.iso_hi)
        if len(self.iso_y) == 1:
            p = self.iso_y.repeat(t.shape)
        else:
            p = interp1d(self.iso_x, self.iso_y, kind="linear", bounds_error=False)(t)
        p = p.astype(np.float64)
        p[(p > 1.0) & (p <= 1.0 + 1e-5)] = 1.0
        return p

    def reasons(self, X: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
        """As ``RiskModel.reasons``."""
        return _reasons(self.risk, self.reference, X, k)
