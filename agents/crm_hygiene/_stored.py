"""The identity resolution kept in the warehouse, so a weekly run redoes only what changed.

A full resolution of mid (prepare every record, block, compare the candidate pairs and a
million random ones, estimate the model by EM, group every component) was most of a
weekly hygiene run, though a week changes a few records in a hundred. Each run now
stores what it resolved (migration 019): per object type the model's numbers (m, u,
the prior, what people's answers shifted), each record's fingerprint of the compared
fields, link component and cluster, and the scored candidate pairs (those of
probability 0.001 or more: the rest link nothing). A later run
resolves incrementally from it (``data.identity.resolve_incremental``) while all of
these hold, and resolves in full (the model estimated again) when one does not:

- the settings, definitions and agent version are the same (``model_key``), and the
  resolver's own (fields, comparisons, blocking rules, polars' version; checked by the
  resolver);
- people's answers are the ones the model learnt from (``labels_digest``);
- the model was estimated less than ``full_resolution_weeks`` weeks before the run's
  as-of (0: every run is full), and not after it;
- fewer than ``full_resolution_share`` of the records counted at the estimate are new,
  changed or removed since (summed run by run).

Like the forecast's deal models and pipeline health's risk model: plain numbers and
strings, never pickled; what is read is checked, and a store that fails its checks
means a full run. Each run's rows replace the last run's (the contract's ``replaces``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from revstack.agents.engine import Context
from revstack.data.identity import KINDS, FellegiSunter, StoredResolution, agree_groups

__all__ = ["STORE_TABLES", "Estimate", "labels_digest", "model_key", "read", "stale", "to_rows"]

STORE_TABLES = ("ops.identity_models", "ops.identity_records", "ops.identity_pairs")
# Bumped when what is stored, or how the agent reads it back, changes. (A change in how
# the model is estimated bumps the resolver's own MODEL_VERSION, in its signature.)
FORMAT = 1
_GCOLS = [f"g_{k}" for k in KINDS]


def model_key(
    definitions: Any, *, version: str, fields: Mapping[str, str], settings: Mapping[str, Any]
) -> str:
    """What a stored resolution depends on besides the records and the resolver's own
    settings: the agent's version and settings, and the definitions."""
    dump = getattr(definitions, "model_dump_json", None)
    return hashlib.sha256(
        json.dumps(
            {
                "format": FORMAT,
                "version": version,
                "fields": dict(fields),
                "settings": dict(settings),
                "definitions": dump() if dump is not None else repr(definitions),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()


def labels_digest(answers: pl.DataFrame) -> str:
    """A digest of people's answers (left_id, right_id, same) as a set."""
    rows = answers.select(
        pl.col("left_id").cast(pl.String),
        pl.col("right_id").cast(pl.String),
        pl.col("same").cast(pl.Boolean),
    ).sort("left_id", "right_id")
    return hashlib.sha256(rows.write_csv().encode()).hexdigest()


@dataclass(frozen=True)
class Estimate:
    """When and on what the stored model was estimated, and how far records moved since."""

    key: str
    labels: str
    as_of: dt.datetime
    by_run: str
    records: int
    moved: int


def read(ctx: Context) -> tuple[dict[str, tuple[StoredResolution, Estimate]], str]:
    """The stored resolution of each object type (checked), or {} and why not."""
    models = ctx.table(STORE_TABLES[0])
    if models.is_empty():
        return {}, "no stored resolution"
    # In any order: the resolution joins them on the record ids and sorts the pairs, and
    # sorting mid's 330k stored records by their key was a third of reading them.
    records = ctx.table(STORE_TABLES[1], ordered=False)
    pairs = ctx.table(STORE_TABLES[2], ordered=False)
    out = {}
    try:
        for r in models.iter_rows(named=True):
            kind = r["object_type"]
            if kind in out:
                raise ValueError(f"two stored models for {kind}")
            out[kind] = _one(r, records, pairs)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        return {}, f"stored resolution unreadable ({exc})"
    return out, ""


def _one(
    r: dict[str, Any], records: pl.DataFrame, pairs: pl.DataFrame
) -> tuple[StoredResolution, Estimate]:
    kind = r["object_type"]
    n_levels = [int(n) for n in r["n_levels"]]
    m = [np.array(x, dtype=np.float64) for x in r["m"]]
    u = [np.array(x, dtype=np.float64) for x in r["u"]]
    if not (len(m) == len(u) == len(n_levels) == len(r["kinds"])) or any(
        len(a) != n or len(b) != n for a, b, n in zip(m, u, n_levels, strict=True)
    ):
        raise ValueError(f"{kind}: m and u do not match the comparisons' levels")
    if any(not np.isfinite(a).all() or (a <= 0).any() for a in (*m, *u)):
        raise ValueError(f"{kind}: m and u must be positive numbers")
    lam = float(r["prior"])
    if not 0 < lam < 1:
        raise ValueError(f"{kind}: a prior outside (0, 1)")
    groups = tuple(tuple(int(k) for k in g) for g in r["groups"])
    if any(k < 0 or k >= len(m) for g in groups for k in g):
        raise ValueError(f"{kind}: a group names a comparison the model does not have")
    # Not stored: which comparisons agree as one follows from the kinds.
    model = FellegiSunter(groups=groups, agree=agree_groups(list(r["kinds"])))
    model.n_levels_, model.m_, model.u_, model.lambda_, model.sessions_ = n_levels, m, u, lam, []
    shifts = None
    if r["shift_kind"]:
        shifts = pl.DataFrame(
            {"kind": r["shift_kind"], "shift": r["shift"]},
            schema={"kind": pl.String, "shift": pl.Float64},
        )
    gcols = [f"g_{k}" for k in r["kinds"]]
    own_pairs = pairs.filter(pl.col("object_type") == kind).select(
        "left_id", "right_id", "rules", *gcols, "match_weight", "probability"
    )
    for k, g in enumerate(gcols):
        levels = own_pairs[g].cast(pl.Int64)
        low, high = levels.min(), levels.max()
        if levels.null_count() or (
            low is not None and (int(low) < -1 or int(high) >= n_levels[k])  # type: ignore[arg-type]
        ):
            raise ValueError(f"{kind}: stored pairs' {g} outside the comparison's levels")
    stored = StoredResolution(
        signature=r["signature"],
        model=model,
        method=r["method"],
        warnings=list(r["warnings"]),
        label_shifts=shifts,
        records=records.filter(pl.col("object_type") == kind).select(
            "record_id", "fingerprint", "component", "cluster_id", "linkage"
        ),
        pairs=own_pairs.with_columns(pl.col(g).cast(pl.Int32) for g in gcols),
    )
    estimate = Estimate(
        key=r["model_key"],
        labels=r["labels_digest"],
        as_of=r["estimated_as_of"],
        by_run=r["estimated_by_run"] or r["run_id"],
        records=int(r["records_at_estimate"]),
        moved=int(r["moved_since"]),
    )
    return stored, estimate


def stale(
    estimate: Estimate,
    *,
    key: str,
    labels: str,
    as_of: dt.datetime,
    moved: int,
    weeks: float,
    share: float,
) -> str:
    """Why the stored resolution calls for a full one at ``as_of`` ('' when it does not);
    ``moved``: records new, changed or removed since it was stored."""
    if weeks <= 0:
        return "a full resolution every run (full_resolution_weeks: 0)"
    if estimate.key != key:
        return "the settings, definitions or agent version changed"
    if estimate.labels != labels:
        return "people's answers about pairs changed"
    if estimate.as_of > as_of:
        return f"the model was estimated at {estimate.as_of:%Y-%m-%d}, after this run's as-of"
    if as_of - estimate.as_of >= dt.timedelta(weeks=weeks):
        return f"the model is {(as_of - estimate.as_of).days} days old (every {weeks:g} weeks)"
    total = estimate.moved + moved
    if total >= share * max(estimate.records, 1):
        return (
            f"{total:,} of {estimate.records:,} records new, changed or removed since the "
            f"estimate (at most {share:.0%})"
        )
    return ""


def to_rows(
    kind: str, stored: StoredResolution, estimate: Estimate, kinds: list[str]
) -> dict[str, pl.DataFrame]:
    """One object type's stored resolution as rows of the three tables (the engine adds
    the run id); ``estimate.by_run`` empty: this run estimated it."""
    model = stored.model
    shifts = stored.label_shifts
    names = [g for g in _GCOLS if g in stored.pairs.columns]
    head = pl.DataFrame(
        [
            {
                "object_type": kind,
                "model_key": estimate.key,
                "signature": stored.signature,
                "labels_digest": estimate.labels,
                "estimated_as_of": estimate.as_of,
                "estimated_by_run": estimate.by_run or None,
                "records_at_estimate": estimate.records,
                "moved_since": estimate.moved,
                "method": stored.method,
                "warnings": stored.warnings,
                "kinds": kinds,
                "n_levels": [int(n) for n in model.n_levels_],
                "m": [a.tolist() for a in model.m_],
                "u": [a.tolist() for a in model.u_],
                "prior": float(model.lambda_),
                "groups": [list(g) for g in model.groups],
                "shift_kind": [] if shifts is None else shifts["kind"].to_list(),
                "shift": [] if shifts is None else shifts["shift"].to_list(),
            }
        ],
        schema=_HEAD_SCHEMA,
    )
    records = stored.records.select(
        object_type=pl.lit(kind),
        record_id="record_id",
        fingerprint=pl.col("fingerprint").cast(pl.UInt64),
        component="component",
        cluster_id="cluster_id",
        linkage="linkage",
    )
    pairs = stored.pairs.select(
        pl.lit(kind).alias("object_type"),
        "left_id",
        "right_id",
        "rules",
        *[pl.col(g).cast(pl.Int8) for g in names],
        "match_weight",
        "probability",
    )
    return {STORE_TABLES[0]: head, STORE_TABLES[1]: records, STORE_TABLES[2]: pairs}


_HEAD_SCHEMA: dict[str, Any] = {
    "object_type": pl.String,
    "model_key": pl.String,
    "signature": pl.String,
    "labels_digest": pl.String,
    "estimated_as_of": pl.Datetime("us"),
    "estimated_by_run": pl.String,
    "records_at_estimate": pl.Int64,
    "moved_since": pl.Int64,
    "method": pl.String,
    "warnings": pl.List(pl.String),
    "kinds": pl.List(pl.String),
    "n_levels": pl.List(pl.Int32),
    "m": pl.List(pl.List(pl.Float64)),
    "u": pl.List(pl.List(pl.Float64)),
    "prior": pl.Float64,
    "groups": pl.List(pl.List(pl.Int32)),
    "shift_kind": pl.List(pl.String),
    "shift": pl.List(pl.Float64),
}
