"""The deal model: the chance an open deal is won before its period ends.

A gradient-boosted classifier (scikit-learn ``HistGradientBoostingClassifier``) on the
deal's state at the moment (stage, stage age against the stage's typical age, amount,
pushes, days since two-way activity, engaged contacts, champion, derived risk flags),
the rep's and team's history, where the moment sits in the period, and the rep's own
calls (the deal's forecast category, the rep's commit against their pipeline).

Its probabilities must be rates, which the simulation needs. The trees are fit on every
training row, and an isotonic map fitted on out-of-fold predictions (two folds, split by
deal, so no deal's own snapshots predict it) calibrates them, as scikit-learn's
``CalibratedClassifierCV(ensemble=False)`` does: fitted on the fold models, applied to
the full one (a little sharper). Calibration is needed because the trees shrink toward
the base rate when data are few; out-of-fold, because holding out the latest training
moments instead would keep the trees from the most recent data and tie the calibration
to one season (what each choice measured: docs/forecast.md, How it works, step 2). It
also learns how much of a deal's amount is booked when it is won (discounts), per stage.

A fitted model keeps only numbers (``Trees``, ``Isotonic``): the trees' node tables and
the calibration's points, predicted from with scikit-learn's own tree walk and
interpolation, so a model read back from the warehouse (``_stored``) predicts what the
fitted one did, to the bit, without anything in the warehouse being code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.interpolate import interp1d
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

__all__ = [
    "WinModel",
    "BaggedWinModel",
    "FitPlan",
    "FEATURES",
    "FIT_COLUMNS",
    "Trees",
    "Isotonic",
    "NODE_DTYPE",
]

# A tree node as scikit-learn's tree walk reads it (value, feature, threshold, children, ...).
NODE_DTYPE = PREDICTOR_RECORD_DTYPE
_NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)


@dataclass(frozen=True)
class Trees:
    """A fitted binary ``HistGradientBoostingClassifier`` as its numbers: the categories
    its encoder learned per categorical column, the start value, each tree's node table
    and left-going category bitsets, and which categories each categorical feature knew.
    ``predict_proba`` is the classifier's: the same encoding (a category's position among
    those seen in training, anything else missing; encoded columns first), the same tree
    walk (scikit-learn's), summed in the same order, through the same logistic."""

    n_features: int
    categorical: np.ndarray  # the categorical columns, in the encoder's order (int64)
    categories: tuple[np.ndarray, ...]  # per categorical column: its sorted float values
    baseline: float
    nodes: tuple[np.ndarray, ...]  # NODE_DTYPE, one array per tree
    cat_bitsets: tuple[np.ndarray, ...]  # (categorical splits, 8) uint32, per tree
    known_cat_bitsets: np.ndarray  # (categorical features, 8) uint32
    f_idx_map: np.ndarray  # per feature: its row in known_cat_bitsets (uint32)

    @classmethod
    def of(cls, hgb: HistGradientBoostingClassifier) -> Trees:
        if hgb.n_trees_per_iteration_ != 1:
            raise ValueError("only a two-class model is kept as numbers")
        known, f_idx = hgb._bin_mapper.make_known_categories_bitsets()
        trees = [it[0] for it in hgb._predictors]
        pre = hgb._preprocessor
        categories: tuple[np.ndarray, ...] = ()
        if pre is None:
            categorical = np.zeros(0, dtype=np.int64)
        else:
            categorical = np.flatnonzero(hgb.is_categorical_).astype(np.int64)
            encoder = pre.named_transformers_["encoder"]
            categories = tuple(np.asarray(c, dtype=np.float64) for c in encoder.categories_)
        return cls(
            int(hgb.n_features_in_),
            categorical,
            categories,
            float(hgb._baseline_prediction.ravel()[0]),
            tuple(t.nodes for t in trees),
            tuple(t.raw_left_cat_bitsets for t in trees),
            known,
            f_idx,
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) per row of ``x`` (float64, one column per feature)."""
        if x.shape[1] != self.n_features:
            raise ValueError(f"{x.shape[1]} features given, the trees know {self.n_features}")
        x = self._encoded(x)
        raw = np.zeros(len(x), dtype=np.float64)
        raw += self.baseline
        for nodes, bits in zip(self.nodes, self.cat_bitsets, strict=True):
            raw += TreePredictor(nodes, _NO_BITSETS, bits).predict(
                x, self.known_cat_bitsets, self.f_idx_map, 1
            )
        return expit(raw)

    def _encoded(self, x: np.ndarray) -> np.ndarray:
        """As scikit-learn's OrdinalEncoder (unknown and missing: NaN) and ColumnTransformer
        (encoded columns first, then the others in order) hand the columns to the trees."""
        if not len(self.categorical):
            return x
        coded = np.full((len(x), len(self.categorical)), np.nan)
        for j, (col, cats) in enumerate(zip(self.categorical, self.categories, strict=True)):
            known = cats[~np.isnan(cats)]
            v = x[:, col]
            at = np.minimum(np.searchsorted(known, v), max(len(known) - 1, 0))
            hit = (known[at] == v) if len(known) else np.zeros(len(v), dtype=bool)
            coded[hit, j] = at[hit]
        rest = np.setdiff1d(np.arange(x.shape[1]), self.categorical)
        return np.hstack([coded, x[:, rest]])


@dataclass(frozen=True)
class Isotonic:
    """A fitted ``IsotonicRegression(out_of_bounds="clip")`` as its points: clip to the
    fitted range, interpolate linearly (as scikit-learn does, with scipy's interp1d)."""

    x: np.ndarray
    y: np.ndarray
    lo: float
    hi: float

    @classmethod
    def of(cls, iso: IsotonicRegression) -> Isotonic:
        return cls(iso.X_thresholds_, iso.y_thresholds_, float(iso.X_min_), float(iso.X_max_))

    def predict(self, t: np.ndarray) -> np.ndarray:
        t = np.clip(np.asarray(t, dtype=np.float64), self.lo, self.hi)
        if len(self.y) == 1:
            return self.y.repeat(t.shape)
        return interp1d(self.x, self.y, kind="linear", bounds_error=False)(t).astype(t.dtype)


_CATEGORY = {"pipeline": 0, "best_case": 1, "commit": 2}
FEATURES = [
    "stage_idx",
    "probability",
    "category_idx",
    "log_amount",
    "amount_known",
    "days_open",
    "days_in_stage",
    "stage_age_ratio",
    "close_date_pushes",
    "pushes_out_of_quarter",
    "days_since_push",
    "days_to_close",
    "close_to_end",
    "in_period",
    "horizon",
    "days_into",
    "quarter_of_year",
    "month_in_quarter",
    "to_quarter_end",
    "is_quarter",
    "days_since_two_way",
    "quiet_ratio",
    "days_since_activity",
    "two_way_30d",
    "outbound_30d",
    "outbound_since_two_way",
    "engaged_contacts",
    "engaged_30d",
    "contacts_on_deal",
    "has_champion",
    "has_economic_buyer",
    "champion_left",
    "economic_buyer_left",
    "amount_ratio",
    "amount_decreases",
    "flag_quiet",
    "flag_pushes",
    "flag_thin",
    "flag_phantom",
    "risk_flags",
    "rep_win_rate",
    "rep_closed",
    "team_win_rate",
    "commit_cover",
    "commit_cover_debiased",
    "commit_bias",
    "lead_source_code",
    "opportunity_type_code",
    "product_code",
]
_CODES = ("lead_source", "opportunity_type", "product")
# Every column of the training rows ``WinModel.fit`` reads (its order, sample and folds,
# the codes, the stage summaries, the label, the matrix's inputs): what a stored model's
# key digests (``_stored``). A column read here and missing from this list would let a
# stored model stand for a fit on other rows.
FIT_COLUMNS = frozenset(
    {
        *FEATURES,
        *_CODES,
        "opportunity_id",
        "period_kind",
        "period_start",
        "period_end",
        "offset",
        "as_of",
        "close_date",
        "stage",
        "forecast_category",
        "amount",
        "won",
        "won_amount",
    }
)


# The order a fit puts its training rows in (one row per key) before it samples them.
_ORDER = ["opportunity_id", "period_kind", "period_start", "offset", "as_of"]


def _can_hold_out(y: np.ndarray, fraction: float) -> bool:
    """Whether early stopping can hold out ``fraction`` of ``y`` stratified by outcome:
    scikit-learn needs two rows of each outcome and at least two on each side of the
    split, else it refuses to fit (a CRM with a handful of closed deals)."""
    n = len(y)
    held = math.ceil(fraction * n)
    return held >= 2 and n - held >= 2 and int(np.bincount(y.astype(int)).min()) >= 2


@dataclass(frozen=True)
class FitPlan:
    """A fit's independent parts (``tasks``) and what completes the model from their
    results, given in task order (``finish``)."""

    tasks: list[Callable[[], Any]]
    finish: Callable[[list[Any]], Any]


class WinModel:
    """Calibrated P(won before the period ends | the deal as it stood at the moment)."""

    def __init__(
        self, *, max_rows: int = 100_000, max_iter: int = 150, random_state: int = 0
    ) -> None:
        self.max_rows = max_rows
        self.max_iter = max_iter
        self.random_state = random_state

    def _matrix(self, rows: pl.DataFrame) -> np.ndarray:
        day = pl.col("as_of").cast(pl.Date)
        x = rows.with_columns(
            category_idx=pl.col("forecast_category").replace_strict(
                _CATEGORY, default=None, return_dtype=pl.Int32
            ),
            log_amount=pl.col("amount").clip(1.0).log10(),
            stage_age_ratio=pl.col("days_in_stage")
            / pl.col("stage").replace_strict(
                self.stage_age_, default=30.0, return_dtype=pl.Float64
            ),
            close_to_end=(pl.col("period_end") - pl.col("close_date")).dt.total_days(),
            horizon=(pl.col("period_end") - day).dt.total_days(),
            days_into=(day - pl.col("period_start")).dt.total_days(),
            quarter_of_year=pl.col("period_start").dt.quarter(),
            # Wins bunch in a quarter's last weeks: a month's place in its quarter matters.
            month_in_quarter=(pl.col("period_start").dt.month() - 1) % 3,
            to_quarter_end=(day.dt.truncate("1q").dt.offset_by("3mo") - day).dt.total_days(),
            is_quarter=pl.col("period_kind") == "quarter",
            **{
                f"{c}_code": pl.col(c).replace_strict(
                    self.codes_[c], default=None, return_dtype=pl.Int32
                )
                for c in _CODES
            },
        )
        # Through float32: a feature summed in another row order differs in its last bits,
        # which can move a value across a bin edge (the same CRM, another forecast).
        m = x.select([pl.col(c).cast(pl.Float64) for c in self.features_]).to_numpy()
        return m.astype(np.float32).astype(np.float64)

    def fit(self, rows: pl.DataFrame) -> WinModel:
        """Fit on labelled rows (``won``)."""
        plan = self.plan(rows)
        plan.finish([task() for task in plan.tasks])
        return self

    def plan(self, rows: pl.DataFrame, within: np.ndarray | None = None) -> FitPlan:
        """The fit in parts: everything but the trees done now (the sample, the codes, the
        matrix), and the tree fits (two out-of-fold, one on every row) as tasks that share
        nothing, so a caller may run them in any order, in threads, beside other fits;
        ``finish`` with their results in task order completes the model, the same model
        ``fit`` gives. ``within``: the positions of the training rows in ``rows`` (the
        fit on ``rows[within]``, without copying those rows out first)."""
        rng = np.random.default_rng(self.random_state)
        # The sample, the early-stopping split and the folds go by position: fix the order.
        # Only the sampled rows are gathered in it (one row per key, so this is the
        # sorted frame's sample), not every training row sorted first: a large company's
        # are millions of rows of some fifty columns.
        keys = rows.select(_ORDER) if within is None else rows.select(_ORDER)[within]
        order = keys.select(pl.arg_sort_by(_ORDER)).to_series().to_numpy()
        if len(keys) > self.max_rows:
            order = order[np.sort(rng.choice(len(keys), self.max_rows, replace=False))]
        rows = rows[order if within is None else within[order]]
        self.codes_ = {
            c: {v: i for i, v in enumerate(sorted(rows[c].drop_nulls().unique().to_list()))}
            for c in _CODES
        }
        self.stage_age_ = dict(
            rows.group_by("stage")
            .agg(pl.col("days_in_stage").median().cast(pl.Float64).clip(1.0))
            .iter_rows()
        )
        won = rows.filter(pl.col("won") == 1)
        booked = won.group_by("stage").agg(
            r=(pl.col("won_amount").sum() / pl.col("amount").sum().clip(1.0))
        )
        self.booked_ = {k: float(np.clip(v, 0.5, 1.5)) for k, v in booked.iter_rows()}
        # A feature the CRM never fills (maven: no activities, no forecast calls) is dropped.
        self.features_ = FEATURES
        x = self._matrix(rows)
        kept = ~np.all(np.isnan(x), axis=0)
        self.features_ = [f for f, k in zip(FEATURES, kept, strict=True) if k]
        x, y = x[:, kept], rows["won"].to_numpy()
        # A field the CRM leaves empty (maven has no lead source) is no category at all.
        cats = [
            self.features_.index(f"{c}_code")
            for c in _CODES
            if len(self.codes_[c]) >= 2 and f"{c}_code" in self.features_
        ] or None

        def trees(labels: np.ndarray) -> HistGradientBoostingClassifier:
            return HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=0.1,
                max_leaf_nodes=31,
                min_samples_leaf=80,
                l2_regularization=1.0,
                categorical_features=cats,
                early_stopping=_can_hold_out(labels, 0.1),
                validation_fraction=0.1,
                n_iter_no_change=10,
                random_state=self.random_state,
            )

        self.n_train_ = len(rows)
        self.base_rate_ = float(y.mean()) if len(y) else 0.0
        self.calibrator_ = None
        if len(np.unique(y)) < 2:  # nothing won (or lost) yet: the base rate is all there is
            self.model_ = None
            return FitPlan([], lambda _: self)
        groups = rows["opportunity_id"].to_numpy()
        folds: list[tuple[np.ndarray, np.ndarray]] = []
        if len(np.unique(groups)) >= 2 and len(y) >= 200:
            folds = list(GroupKFold(n_splits=2).split(x, y, groups))
            if any(len(np.unique(y[fit_idx])) < 2 for fit_idx, _ in folds):
                folds = []  # a fold with one outcome: no calibration

        def fold(fit_idx: np.ndarray, held: np.ndarray) -> Callable[[], np.ndarray]:
            def run() -> np.ndarray:
                with threadpool_limits(limits=1):
                    model = trees(y[fit_idx]).fit(x[fit_idx], y[fit_idx])
                    return np.asarray(model.predict_proba(x[held])[:, 1])

            return run

        def full() -> Trees:
            # One thread: on a box whose cores other processes share, OpenMP's spinning
            # threads slow a fit down many times over (docs/forecast.md, Speed).
            with threadpool_limits(limits=1):
                return Trees.of(trees(y).fit(x, y))

        def finish(results: list[Any]) -> WinModel:
            *oofs, self.model_ = results
            if folds:
                oof = np.empty(len(y))
                for (_, held), part in zip(folds, oofs, strict=True):
                    oof[held] = part
                self.calibrator_ = Isotonic.of(
                    IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(oof, y)
                )
            return self

        return FitPlan([*(fold(f, h) for f, h in folds), full], finish)

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        """P(won before the period ends) per row."""
        if rows.is_empty():
            return np.zeros(0)
        if self.model_ is None:
            return np.full(len(rows), self.base_rate_)
        with threadpool_limits(limits=1):
            p = self.model_.predict_proba(self._matrix(rows))
        p = p if self.calibrator_ is None else self.calibrator_.predict(p)
        return np.clip(p, 0.0, 1.0)

    def booked_amount(self, rows: pl.DataFrame) -> np.ndarray:
        """What a win of each row would book: its amount times the stage's booked share."""
        share = rows["stage"].replace_strict(self.booked_, default=1.0, return_dtype=pl.Float64)
        return (rows["amount"].fill_null(0.0) * share).to_numpy()


class BaggedWinModel:
    """The mean of ``bag`` calibrated WinModels fit with different seeds (each its own
    row sample, early-stopping split and trees).

    One fit's randomness moves the quarter MAPE from seed to seed (docs/forecast.md, A bag
    of three deal models per refit); an average of calibrated probabilities stays
    calibrated and carries less of it.
    """

    def __init__(
        self, *, bag: int = 3, random_state: int = 0, workers: int = 1, **kwargs: int
    ) -> None:
        if bag < 1:
            raise ValueError(f"bag must be at least 1, not {bag}")
        self.members = [WinModel(random_state=random_state * bag + i, **kwargs) for i in range(bag)]
        self.workers = max(1, min(workers, bag))

    def fit(self, rows: pl.DataFrame) -> BaggedWinModel:
        """Fit every member, ``workers`` tree fits at once in threads (each fit still
        holds OpenMP to one thread; scikit-learn's tree code runs mostly without the GIL,
        so threads overlap: docs/forecast.md, Speed). The fits share nothing, so any
        number of workers gives the same models."""
        with ThreadPoolExecutor(self.workers) as pool:
            return self.submit(rows, pool)()

    def submit(
        self, rows: pl.DataFrame, pool: Executor, within: np.ndarray | None = None
    ) -> Callable[[], BaggedWinModel]:
        """Plan every member's fit now and hand its tree fits to ``pool``; the returned
        call waits for them and gives the fitted bag (the same as ``fit``). A backtest
        submits the next refits' fits while it scores the current block. ``within``: the
        training rows' positions in ``rows`` (``WinModel.plan``)."""
        plans = [m.plan(rows, within) for m in self.members]
        futures = [[pool.submit(task) for task in plan.tasks] for plan in plans]
        n_train = self.members[0].n_train_

        def done() -> BaggedWinModel:
            for plan, fs in zip(plans, futures, strict=True):
                plan.finish([f.result() for f in fs])
            self.n_train_ = n_train
            return self

        return done

    @classmethod
    def of(cls, members: list[WinModel]) -> BaggedWinModel:
        """A bag of members fitted earlier (read back from the warehouse)."""
        bag = cls(bag=len(members))
        bag.members = members
        bag.n_train_ = members[0].n_train_
        return bag

    def predict_proba(self, rows: pl.DataFrame) -> np.ndarray:
        return np.mean([m.predict_proba(rows) for m in self.members], axis=0)

    def booked_amount(self, rows: pl.DataFrame) -> np.ndarray:
        return self.members[0].booked_amount(rows)
