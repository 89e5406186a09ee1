"""Fitted deal models kept in the warehouse, for the next run in a new process.

A weekly `revstack run` is a new process, so the backtest's in-process memo of fitted
models (``_backtest._fitted``) never helps it: before this, every run refit the current
block's bag of deal models (most of an incremental run on mid, docs/forecast.md, Speed).
Each run now stores the models it used (migration 014) under a key that digests
everything the fit saw: the training rows (as a set, with their columns and types), the
refit day, the bag's size and seed, the model's settings, and the versions of
scikit-learn and polars (a fit, and polars' row hash, are the same only within one
version). A later run whose training rows for a refit hash to a stored key reads that
model back instead of fitting: same rows, same seed, same model, so the forecast is the
one a fit would give, to the digit (tests/agents/test_forecast_models.py).

The tables hold numbers, lists of numbers and strings, never code: a warehouse may come
from someone else, and reading it back must not run anything. What is read is checked
(node children after their parent and inside the tree, features and bitsets in range)
before scikit-learn's tree walk sees it; a model that fails the check is refitted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import polars as pl
import sklearn

from revstack.agents._trees import check_nodes
from revstack.agents.engine import Context
from revstack.agents.forecast._model import (
    FEATURES,
    FIT_COLUMNS,
    NODE_DTYPE,
    BaggedWinModel,
    Isotonic,
    Trees,
    WinModel,
)

__all__ = ["TABLES", "Stored", "as_read", "model_key", "read", "seen_rows", "to_rows"]

TABLES = ("ops.forecast_models", "ops.forecast_model_trees")
# Bumped when what is stored, or how a stored model predicts, changes.
FORMAT = 1
_CODES = ("lead_source", "opportunity_type", "product")
_NODE = [f"node_{name}" for name in NODE_DTYPE.names]
_DEPARTURES = ("champion_left", "economic_buyer_left", "flag_champion")
# Features the fit also reads at full precision (the stage's typical age).
_EXACT = ("days_in_stage",)


def model_key(
    train: pl.DataFrame,
    fit_at: dt.date,
    *,
    bag: int,
    seed: int,
    seen: tuple[list[list[str]], np.ndarray] | None = None,
) -> str:
    """What a bag fitted on ``train`` for ``fit_at`` depends on, as one digest: the rows as
    the fit sees them, but for the contact departures (``_seen``). ``seen``: ``seen_rows``
    of the training rows, computed earlier (``train`` is then not read)."""
    columns, hashes = seen_rows(train) if seen is None else seen
    h = hashlib.sha256(
        json.dumps(
            {
                "format": FORMAT,
                "fit_at": fit_at.isoformat(),
                "bag": bag,
                "seed": seed,
                "model": {"max_rows": 100_000, "max_iter": 150},
                "sklearn": sklearn.__version__,
                "polars": pl.__version__,
                "columns": columns,
                "rows": len(hashes),
            }
        ).encode()
    )
    if len(hashes):
        h.update(np.sort(hashes).tobytes())
    return h.hexdigest()


def seen_rows(rows: pl.DataFrame, step: int = 1_000_000) -> tuple[list[list[str]], np.ndarray]:
    """What ``model_key`` digests of ``rows``: the columns and types as the fit sees them,
    and each row's hash so (``_seen``), a slice at a time. A row's hash is its own, so
    those of any subset of the rows are these at its positions: a backtest hashes its
    deal rows once for every refit's key, without copying each refit's rows out."""
    columns = [[c, str(t)] for c, t in _seen(rows.head(0)).schema.items()]
    parts = [
        _seen(rows.slice(i, step)).hash_rows(seed=7).to_numpy() for i in range(0, len(rows), step)
    ]
    return columns, np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def _seen(train: pl.DataFrame) -> pl.DataFrame:
    """``train`` as the key digests it: the columns ``WinModel.fit`` reads, no others.

    Only those, as the fit reads them: the rows carry more (an owner's position in
    today's list of users, when a champion last replied), and a deal won in the latest
    week has its booked amount on rows of earlier periods, where the fit does not read
    it (it reads a row's ``won_amount`` only if the row is won); with it, the key of the
    mid company's current block changed from one week to the next.

    Features the model reads only through float32 (``WinModel._matrix``) are digested
    as float32: some are parallel sums whose last float64 bit varies from run to run
    (the commit bias measured so on the small company), which a fit never sees.

    The contact departures (a champion or economic buyer gone) are left out, and so is
    their share of ``risk_flags``: crm.contacts keeps no history, so a departure counts
    at a moment only if the contact's row has not changed since, and every week's edits
    to contacts change old training rows (31 and 81 rows of the current block's training
    set between two weeks of the small company). A stored model keeps the departures it
    was fitted with, as a stored snapshot of the backtest cache does; keyed on them, the
    model was refitted every week (docs/forecast.md, Stored deal models)."""
    if "flag_champion" in train.columns and "risk_flags" in train.columns:
        train = train.with_columns(
            pl.col("risk_flags") - pl.col("flag_champion").cast(pl.Int8).fill_null(0)
        )
    if "won_amount" in train.columns:
        # What a win booked is read for rows won in their period only; a deal won after
        # it (in the latest week, say) has it set on its older rows, which no fit reads.
        train = train.with_columns(
            won_amount=pl.when(pl.col("won") == 1).then(pl.col("won_amount"))
        )
    return as_read(train, [c for c in train.columns if c in FIT_COLUMNS and c not in _DEPARTURES])


def as_read(rows: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """``rows``' ``columns`` as the model reads them: the features it reads only through
    float32 (``WinModel._matrix``) as float32, the rest as they are."""
    return rows.select(columns).with_columns(
        [
            pl.col(c).cast(pl.Float32)
            for c in columns
            if c in FEATURES and c not in _EXACT and rows.schema[c] == pl.Float64
        ]
    )


def to_rows(
    used: dict[str, tuple[dt.date, BaggedWinModel]], stored: Stored, fit_days: set[dt.date]
) -> dict[str, pl.DataFrame]:
    """What the next run may read back, as rows of the two tables: per refit day of this
    run, the model it used (as stored, when it was read back), else the one stored for
    that day (a block the backtest cache answered needed no model this time, and a full
    replay later will)."""
    days = {fit_at for fit_at, _ in used.values()}
    carried = [
        k
        for k, fit_at in stored.fit_days.items()
        if (k in used or (fit_at in fit_days and fit_at not in days)) and k not in stored.unreadable
    ]
    heads, trees = [], []
    for key, (fit_at, bag) in sorted(used.items()):
        if key in carried:
            continue
        for i, m in enumerate(bag.members):
            heads.append(_head(key, fit_at, i, m))
            t = m.model_
            if t is None:
                continue
            for j, (nodes, bits) in enumerate(zip(t.nodes, t.cat_bitsets, strict=True)):
                trees.append(
                    {
                        "model_key": key,
                        "member": i,
                        "tree": j,
                        **{
                            c: nodes[n].tolist()
                            for c, n in zip(_NODE, NODE_DTYPE.names, strict=True)
                        },
                        "cat_bitsets": bits.ravel().tolist(),
                    }
                )
    keep = pl.col("model_key").is_in(carried)
    return {
        TABLES[0]: pl.concat(
            [
                pl.DataFrame(heads, schema=_HEAD_SCHEMA),
                stored.heads.filter(keep).select(list(_HEAD_SCHEMA)).cast(pl.Schema(_HEAD_SCHEMA)),
            ]
        ),
        TABLES[1]: pl.concat(
            [
                pl.DataFrame(trees, schema=_TREE_SCHEMA),
                stored.trees.filter(keep).select(list(_TREE_SCHEMA)).cast(pl.Schema(_TREE_SCHEMA)),
            ]
        ),
    }


_HEAD_SCHEMA: dict[str, Any] = {
    "model_key": pl.String,
    "fit_at": pl.Date,
    "member": pl.Int32,
    "random_state": pl.Int64,
    "n_train": pl.Int64,
    "base_rate": pl.Float64,
    "features": pl.List(pl.String),
    "code_field": pl.List(pl.String),
    "code_value": pl.List(pl.String),
    "code_index": pl.List(pl.Int32),
    "stage": pl.List(pl.String),
    "stage_age": pl.List(pl.Float64),
    "booked_stage": pl.List(pl.String),
    "booked_share": pl.List(pl.Float64),
    "has_trees": pl.Boolean,
    "n_features": pl.Int32,
    "categorical": pl.List(pl.Int64),
    "categories": pl.List(pl.List(pl.Float64)),
    "baseline": pl.Float64,
    "known_cat_bitsets": pl.List(pl.UInt32),
    "f_idx_map": pl.List(pl.UInt32),
    "calibration_x": pl.List(pl.Float64),
    "calibration_y": pl.List(pl.Float64),
    "calibration_lo": pl.Float64,
    "calibration_hi": pl.Float64,
}
_TREE_SCHEMA: dict[str, Any] = {
    "model_key": pl.String,
    "member": pl.Int32,
    "tree": pl.Int32,
    **{
        c: pl.List(
            pl.Float64
            if NODE_DTYPE[n].kind == "f"
            else pl.Int64
            if NODE_DTYPE[n].kind == "i"
            else {1: pl.UInt8, 4: pl.UInt32}[NODE_DTYPE[n].itemsize]
        )
        for c, n in zip(_NODE, NODE_DTYPE.names, strict=True)
    },
    "cat_bitsets": pl.List(pl.UInt32),
}


def _head(key: str, fit_at: dt.date, member: int, m: WinModel) -> dict[str, Any]:
    t, cal = m.model_, getattr(m, "calibrator_", None)
    codes = [(f, v, i) for f in _CODES for v, i in m.codes_[f].items()]
    return {
        "model_key": key,
        "fit_at": fit_at,
        "member": member,
        "random_state": m.random_state,
        "n_train": m.n_train_,
        "base_rate": m.base_rate_,
        "features": list(m.features_),
        "code_field": [c[0] for c in codes],
        "code_value": [c[1] for c in codes],
        "code_index": [c[2] for c in codes],
        "stage": list(m.stage_age_),
        "stage_age": [float(v) for v in m.stage_age_.values()],
        "booked_stage": list(m.booked_),
        "booked_share": list(m.booked_.values()),
        "has_trees": t is not None,
        "n_features": t.n_features if t else None,
        "categorical": t.categorical.tolist() if t else None,
        "categories": [c.tolist() for c in t.categories] if t else None,
        "baseline": t.baseline if t else None,
        "known_cat_bitsets": t.known_cat_bitsets.ravel().tolist() if t else None,
        "f_idx_map": t.f_idx_map.tolist() if t else None,
        "calibration_x": cal.x.tolist() if cal else None,
        "calibration_y": cal.y.tolist() if cal else None,
        "calibration_lo": cal.lo if cal else None,
        "calibration_hi": cal.hi if cal else None,
    }


class Stored(Mapping[str, BaggedWinModel]):
    """The models the last run stored, by key, each built from its rows (and checked)
    only when asked for: a weekly run needs one. A model that fails its checks is not
    there (so it is refitted), with what was wrong in ``unreadable``."""

    def __init__(self, heads: pl.DataFrame, trees: pl.DataFrame) -> None:
        self.heads, self.trees = heads, trees
        self.fit_days: dict[str, dt.date] = (
            dict(heads.select("model_key", "fit_at").unique().iter_rows()) if len(heads) else {}
        )
        self.unreadable: dict[str, str] = {}
        self._built: dict[str, BaggedWinModel] = {}

    def __getitem__(self, key: str) -> BaggedWinModel:
        if key not in self.fit_days or key in self.unreadable:
            raise KeyError(key)
        if key not in self._built:
            try:
                self._built[key] = self._build(key)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                self.unreadable[key] = f"model {key[:12]}: {exc}"
                raise KeyError(key) from exc
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fit_days)

    def __len__(self) -> int:
        return len(self.fit_days)

    def _build(self, key: str) -> BaggedWinModel:
        heads = self.heads.filter(pl.col("model_key") == key).sort("member")
        trees = self.trees.filter(pl.col("model_key") == key)
        by_member = {int(i[0]): g.sort("tree") for i, g in trees.group_by("member")}
        if [int(x) for x in heads["member"]] != list(range(len(heads))):
            raise ValueError("members are not numbered 0..n-1")
        members = [_member(r, by_member.get(int(r["member"]))) for r in heads.iter_rows(named=True)]
        return BaggedWinModel.of(members)


def read(ctx: Context) -> Stored:
    """The models the last run stored (built when asked for). Read in any order: a model's
    members and trees are sorted on their numbers when it is built."""
    return Stored(ctx.table(TABLES[0], ordered=False), ctx.table(TABLES[1], ordered=False))


def _member(r: dict[str, Any], trees: pl.DataFrame | None) -> WinModel:
    m = WinModel(random_state=int(r["random_state"]))
    m.n_train_ = int(r["n_train"])
    m.base_rate_ = float(r["base_rate"])
    m.features_ = list(r["features"])
    m.codes_ = {c: {} for c in _CODES}
    for f, v, i in zip(r["code_field"], r["code_value"], r["code_index"], strict=True):
        m.codes_[f][v] = int(i)
    m.stage_age_ = dict(zip(r["stage"], r["stage_age"], strict=True))
    m.booked_ = dict(zip(r["booked_stage"], r["booked_share"], strict=True))
    m.calibrator_ = None
    if r["calibration_x"] is not None:
        x, y = (np.array(r[c], dtype=np.float64) for c in ("calibration_x", "calibration_y"))
        if len(x) != len(y) or not len(y):
            raise ValueError("calibration points do not pair up")
        m.calibrator_ = Isotonic(x, y, float(r["calibration_lo"]), float(r["calibration_hi"]))
    if not r["has_trees"]:
        m.model_ = None
        return m
    if trees is None or trees.is_empty():
        raise ValueError("no trees stored")
    n_features = int(r["n_features"])
    if n_features != len(m.features_):
        raise ValueError("the trees' feature count is not the model's")
    known = np.array(r["known_cat_bitsets"], dtype=np.uint32).reshape(-1, 8)
    f_idx = np.array(r["f_idx_map"], dtype=np.uint32)
    categorical = np.array(r["categorical"], dtype=np.int64)
    categories = tuple(np.array(c, dtype=np.float64) for c in r["categories"])
    if (
        len(f_idx) != n_features
        or len(categorical) != len(categories)
        or (len(categorical) and (categorical.min() < 0 or categorical.max() >= n_features))
        or (len(f_idx) and len(known) and int(f_idx.max()) >= len(known))
    ):
        raise ValueError("categorical features out of range")
    nodes, bitsets = [], []
    for t in trees.iter_rows(named=True):
        arr = np.zeros(len(t["node_value"]), dtype=NODE_DTYPE)
        for c, n in zip(_NODE, NODE_DTYPE.names, strict=True):
            arr[n] = t[c]
        bits = np.array(t["cat_bitsets"], dtype=np.uint32).reshape(-1, 8)
        _check_tree(arr, bits, n_features, known, f_idx)
        nodes.append(arr)
        bitsets.append(bits)
    m.model_ = Trees(
        n_features,
        categorical,
        categories,
        float(r["baseline"]),
        tuple(nodes),
        tuple(bitsets),
        known,
        f_idx,
    )
    return m


def _check_tree(
    nodes: np.ndarray, bits: np.ndarray, n_features: int, known: np.ndarray, f_idx: np.ndarray
) -> None:
    """``check_nodes``, and a categorical split's bitsets are there."""
    split = check_nodes(nodes, n_features)
    cat = split & (nodes["is_categorical"] != 0)
    if cat.any() and (
        (nodes["bitset_idx"][cat] >= len(bits)).any()
        or (f_idx[nodes["feature_idx"][cat]] >= len(known)).any()
    ):
        raise ValueError("a categorical split without its bitset")
