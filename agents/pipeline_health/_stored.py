"""The fitted risk model kept in the warehouse, for the next runs in new processes.

Before this, every run rebuilt every open deal's state at each of the past 108 Mondays
and refitted the model, though its training window only slides a week per run (most
of the agent's 22-34 s in a weekly run on mid). Now a run stores the model it used
(migration 017) with the stage benchmarks it was fitted with, and a later run reads it
back instead of refitting while all of these hold:

- the settings, definitions and library versions are the same (``model_key``);
- it was fitted less than ``refit_weeks`` weeks before the run's as-of, and not after it;
- the history it was fitted on is unchanged: the CRM rows the deal states read
  (``agents.features.TABLES``) stamped at or before its fit, as a set (``inputs``). A
  row imported late with an old timestamp, a history row rewritten, an activity moved
  to another contact by a merge: any of them refits.

The contact departures are not in ``inputs``: ``crm.contacts`` keeps no history, so
every week's edits to contacts change old moments' departures (the forecast found the
same, docs/forecast.md, Stored deal models); a stored model keeps the departures it
was fitted with, and today's deals are always scored with today's departures.

While a model is read back, the rules use the benchmarks stored with it (the model's
features divide by them), so a run between refits differs from a full refit in the
model and in the benchmarks; docs/pipeline_health.md, Stored model, measures by how
much. The tables hold numbers, lists of numbers and strings, never code; what is read
is checked before scikit-learn's tree walk sees it, and a model that fails is refitted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from revstack.agents.engine import Context
from revstack.agents.features import TABLES
from revstack.agents.pipeline_health._risk_model import FEATURES
from revstack.agents.pipeline_health._signals import Benchmarks

__all__ = [
    "MODEL_TABLES",
    "RowHashes",
    "StoredModel",
    "activity_hashes",
    "inputs_digest",
    "model_key",
    "read",
    "to_rows",
]

MODEL_TABLES = ("ops.risk_models", "ops.risk_model_trees")
# Bumped when what is stored, how a stored model scores, or what the fit reads changes.
FORMAT = 1
# The column each table's rows are stamped with: a row counts for a fit at T when its
# stamp is at or before T (a buying role without added_at counts from its deal's opening).
_STAMPS = {
    "crm.opportunity_history": "changed_at",
    "crm.activities": "occurred_at",
    "crm.opportunity_contacts": "added_at",
}
_NODE_FIELDS = (
    "value",
    "count",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
    "left",
    "right",
    "gain",
    "depth",
    "is_leaf",
    "bin_threshold",
    "is_categorical",
    "bitset_idx",
)


# Bumped when how the training labels are made changes (2: a deal won inside the horizon
# and its quarter is no risk; before 2026-12-07 every deal closed inside the horizon was
# labelled one), so a model fitted on the old labels is fitted again.
LABELS = 2


def model_key(definitions: Any, *, train_weeks: int, seed: int, model: Mapping[str, Any]) -> str:
    """What a fit depends on besides the data: settings, definitions, versions."""
    import sklearn  # imported late: a run that reads nothing back does not need it here

    return hashlib.sha256(
        json.dumps(
            {
                "format": FORMAT,
                "labels": LABELS,
                "train_weeks": train_weeks,
                "seed": seed,
                "model": dict(model),
                "features": FEATURES,
                "stages": [repr(s) for s in definitions.stages],
                "at_risk": repr(definitions.at_risk),
                "sklearn": sklearn.__version__,
                "polars": pl.__version__,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()


@dataclass(frozen=True)
class RowHashes:
    """A table's rows (``TABLES``' columns) as their hashes and stamps, without the rows:
    what ``inputs_digest`` reads of a table too large to hold (23.7M activity rows on the
    large company: 0.4 GB here against several GB as a frame)."""

    schema: str  # the selection's polars schema, as the digest spells it
    hashes: np.ndarray  # uint64, polars' row hash (seed 7) of each row
    stamps: pl.Series  # each row's stamp (_STAMPS)

    @classmethod
    def of(cls, parts: Iterable[pl.DataFrame], table: str) -> RowHashes:
        """Of a table read in parts (any order, any sizes): a row's hash is its own."""
        hashes, stamps, schema = [], [], None
        for part in parts:
            rows = part.select(TABLES[table])
            schema = schema or str(rows.schema)
            hashes.append(rows.hash_rows(seed=7).to_numpy())
            stamps.append(rows[_STAMPS[table]])
        if schema is None:
            raise ValueError(f"{table}: no parts, not even an empty one")
        return cls(schema, np.concatenate(hashes), pl.concat(stamps))


def activity_hashes(ctx: Context) -> RowHashes:
    """``crm.activities``' row hashes, read in parts from the warehouse (none held)."""
    table = "crm.activities"
    empty = ctx.table(table, TABLES[table], any_of={"opportunity_id": []})
    return RowHashes.of([empty, *ctx.batches(table, TABLES[table])], table)


def inputs_digest(
    frames: Mapping[str, pl.DataFrame],
    through: dt.datetime,
    hashed: Mapping[str, RowHashes] | None = None,
) -> str:
    """A digest of the rows the deal states read, stamped at or before ``through``, as a
    set (row order does not matter; polars' row hash, so the key carries its version).
    ``hashed``: tables given as their rows' hashes instead of in ``frames``."""
    h = hashlib.sha256(through.isoformat().encode())
    history = frames["crm.opportunity_history"]
    opened = history.group_by("opportunity_id").agg(_opened=pl.col("changed_at").min())
    for table, stamp in _STAMPS.items():
        if hashed is not None and table in hashed:
            given = hashed[table]
            keep = (given.stamps <= through).fill_null(False).to_numpy()
            kept = given.hashes[keep]
            h.update(f"{table}:{len(kept)}:{given.schema}".encode())
            if len(kept):
                h.update(np.sort(kept).tobytes())
            continue
        rows = frames[table].select(TABLES[table])
        at = pl.col(stamp)
        if table == "crm.opportunity_contacts":
            rows = rows.join(opened, on="opportunity_id", how="left")
            at = pl.coalesce(stamp, "_opened")
        rows = rows.filter(at <= through).select(TABLES[table])
        h.update(f"{table}:{len(rows)}:{rows.schema}".encode())
        if len(rows):
            h.update(np.sort(rows.hash_rows(seed=7).to_numpy()).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class StoredModel:
    """The model the last run stored: its numbers, benchmarks and provenance."""

    key: str
    inputs: str
    fit_as_of: dt.datetime
    training_moments: int
    bench: Benchmarks
    scorer: Any  # _risk_estimator.RiskScorer (scikit-learn is imported only when needed)
    run_id: str


def read(ctx: Context) -> tuple[StoredModel | None, str]:
    """The stored model (checked), or None and why not."""
    head, trees = ctx.table(MODEL_TABLES[0]), ctx.table(MODEL_TABLES[1])
    if head.is_empty():
        return None, "no stored model"
    if len(head) != 1:
        return None, f"{len(head)} stored models (one expected)"
    from revstack.agents.pipeline_health._risk_estimator import NODE_DTYPE, RiskScorer

    r = head.row(0, named=True)
    try:
        nodes = []
        for t in trees.sort("tree").iter_rows(named=True):
            arr = np.zeros(len(t["node_value"]), dtype=NODE_DTYPE)
            for f in _NODE_FIELDS:
                if len(t[f"node_{f}"]) != len(arr):
                    raise ValueError(f"tree {t['tree']}: node_{f} has the wrong length")
                arr[f] = t[f"node_{f}"]
            nodes.append(arr)
        if [int(t) for t in trees.sort("tree")["tree"]] != list(range(len(nodes))):
            raise ValueError("trees are not numbered 0..n-1")
        scorer = RiskScorer(
            used=np.array(r["used"], dtype=bool),
            reference=np.array(r["reference"], dtype=np.float64),
            baseline=float(r["baseline"]),
            nodes=tuple(nodes),
            iso_x=np.array(r["calibration_x"], dtype=np.float64),
            iso_y=np.array(r["calibration_y"], dtype=np.float64),
            iso_lo=float(r["calibration_lo"]),
            iso_hi=float(r["calibration_hi"]),
            n_train=int(r["n_train"]),
            base_rate=float(r["base_rate"]),
        ).check()
        if len(r["bench_stage"]) != len(r["bench_quiet_days"]) or len(r["bench_stage"]) != len(
            r["bench_stage_age"]
        ):
            raise ValueError("benchmarks do not pair up with their stages")
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        return None, f"stored model unreadable ({exc})"
    bench = Benchmarks(
        dict(zip(r["bench_stage"], map(float, r["bench_quiet_days"]), strict=True)),
        dict(zip(r["bench_stage"], map(float, r["bench_stage_age"]), strict=True)),
        int(r["bench_won_deals"]),
    )
    return StoredModel(
        key=r["model_key"],
        inputs=r["inputs"],
        fit_as_of=r["fit_as_of"],
        training_moments=int(r["training_moments"]),
        bench=bench,
        scorer=scorer,
        run_id=r["run_id"],
    ), ""


def to_rows(m: StoredModel) -> dict[str, pl.DataFrame]:
    """The model as rows of the two tables (the engine adds the run id)."""
    s, b = m.scorer, m.bench
    stages = list(b.quiet_days)
    head = pl.DataFrame(
        [
            {
                "model_key": m.key,
                "inputs": m.inputs,
                "fit_as_of": m.fit_as_of,
                "training_moments": m.training_moments,
                "n_train": s.n_train,
                "base_rate": s.base_rate,
                "used": s.used.tolist(),
                "reference": s.reference.tolist(),
                "baseline": s.baseline,
                "calibration_x": s.iso_x.tolist(),
                "calibration_y": s.iso_y.tolist(),
                "calibration_lo": s.iso_lo,
                "calibration_hi": s.iso_hi,
                "bench_stage": stages,
                "bench_quiet_days": [b.quiet_days[k] for k in stages],
                "bench_stage_age": [b.stage_age_days[k] for k in stages],
                "bench_won_deals": b.won_deals,
            }
        ],
        schema=_HEAD_SCHEMA,
    )
    trees = pl.DataFrame(
        [
            {"tree": i, **{f"node_{f}": nodes[f].tolist() for f in _NODE_FIELDS}}
            for i, nodes in enumerate(s.nodes)
        ],
        schema=_TREE_SCHEMA,
    )
    return {MODEL_TABLES[0]: head, MODEL_TABLES[1]: trees}


_HEAD_SCHEMA: dict[str, Any] = {
    "model_key": pl.String,
    "inputs": pl.String,
    "fit_as_of": pl.Datetime("us"),
    "training_moments": pl.Int32,
    "n_train": pl.Int64,
    "base_rate": pl.Float64,
    "used": pl.List(pl.Boolean),
    "reference": pl.List(pl.Float64),
    "baseline": pl.Float64,
    "calibration_x": pl.List(pl.Float64),
    "calibration_y": pl.List(pl.Float64),
    "calibration_lo": pl.Float64,
    "calibration_hi": pl.Float64,
    "bench_stage": pl.List(pl.String),
    "bench_quiet_days": pl.List(pl.Float64),
    "bench_stage_age": pl.List(pl.Float64),
    "bench_won_deals": pl.Int64,
}
_TREE_SCHEMA: dict[str, Any] = {
    "tree": pl.Int32,
    "node_value": pl.List(pl.Float64),
    "node_count": pl.List(pl.UInt32),
    "node_feature_idx": pl.List(pl.Int64),
    "node_num_threshold": pl.List(pl.Float64),
    "node_missing_go_to_left": pl.List(pl.UInt8),
    "node_left": pl.List(pl.UInt32),
    "node_right": pl.List(pl.UInt32),
    "node_gain": pl.List(pl.Float64),
    "node_depth": pl.List(pl.UInt32),
    "node_is_leaf": pl.List(pl.UInt8),
    "node_bin_threshold": pl.List(pl.UInt8),
    "node_is_categorical": pl.List(pl.UInt8),
    "node_bitset_idx": pl.List(pl.UInt32),
}
