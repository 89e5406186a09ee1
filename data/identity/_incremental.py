"""resolve_incremental(): a resolution that redoes only what changed since a stored one.

A week on, most records are as they were. With the last resolution stored
(``Resolution.stored``), a later run:

- scores with the stored model (m, u, the prior and what people's answers shifted)
  instead of estimating it again: no random pairs, no EM;
- blocks only the records new or changed since (their fingerprint of the compared
  fields differs) against every record: each candidate pair that involves one of them
  is compared and scored; pairs among unchanged records keep their stored scores (those
  stored: of probability 0.001 or more), and pairs of a removed or changed record go;
- groups again only the link components that hold a new or changed record, or held a
  changed or removed one; every other component keeps its stored clusters.

What a full run would do differently: estimate the model again on the week's records;
recompute the term weights of names and cities for every pair (here only the new
pairs see the new weights); and drop the pairs of a block that has grown past
``max_block`` (here the stored ones stay). docs/hygiene.md, Weekly runs, measures the
difference. Under another signature (settings, fields, comparisons, polars' version)
the stored resolution is no use and the run is a full one.
"""

from __future__ import annotations

import time

import polars as pl

from revstack.data.identity._cluster import cluster
from revstack.data.identity._compare import gamma_sql, pairs_sql
from revstack.data.identity._labels import apply_shifts
from revstack.data.identity._resolve import (
    Resolution,
    StoredResolution,
    _decide,
    _hierarchy,
    _keep_apart,
    _marked,
    _prepared,
    _score,
    _scorer,
    _settings,
    _signature,
    fingerprints,
    resolve,
)
from revstack.data.progress import Progress, report
from revstack.data.warehouse import scratch

__all__ = ["changes", "resolve_incremental"]

_STEPS = ["preparing", "blocking new and changed records", "clustering what they touch"]


def changes(
    records: pl.DataFrame,
    fields: dict[str, str],
    stored: StoredResolution,
    *,
    now: pl.DataFrame | None = None,
) -> dict[str, int]:
    """How many records are new, changed (in a compared field) or removed since
    ``stored``. ``now``: the records' ``fingerprints``, when the caller has them."""
    if now is None:
        now = fingerprints(records, fields)
    joined = now.join(stored.records.select("record_id", "fingerprint"), on="record_id", how="left")
    was = joined["fingerprint_right"]
    new = int(was.is_null().sum())
    changed = int((was.is_not_null() & (joined["fingerprint"] != was)).sum())
    return {"new": new, "changed": changed, "removed": len(stored.records) - (len(now) - new)}


def resolve_incremental(
    records: pl.DataFrame,
    fields: dict[str, str],
    stored: StoredResolution,
    *,
    name_type: str = "org",
    threshold: float = 0.5,
    max_block: int = 200,
    random_pairs: int | None = None,
    seed: int = 0,
    move_together: tuple[tuple[str, ...], ...] = (),
    twins: bool = True,
    labels: pl.DataFrame | None = None,
    progress: Progress | None = None,
    now: pl.DataFrame | None = None,
) -> Resolution:
    """Resolve ``records`` as ``resolve`` would, redoing only what changed since
    ``stored`` (see the module docstring). The settings are ``resolve``'s; under other
    settings than ``stored`` was made with, a full ``resolve`` runs instead and
    ``Resolution.incremental`` says why. ``labels`` must be the answers the stored
    model learnt from: a change of answers calls for a new estimate (a full run).
    ``now``: the records' ``fingerprints``, when the caller has them (``changes``).
    With ``twins`` (``resolve``'s default) it always resolves in full: which records
    are twins, and which one stands for a set, can change without any of them changing
    (a twin removed, a new one with a smaller id), and the stored pairs would not say."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    report(progress, _STEPS[0], 0, len(_STEPS))
    prepared, comparisons, rules = _prepared(records, fields, name_type)
    settings = _settings(name_type, threshold, max_block, random_pairs, seed, move_together, twins)
    signature = _signature(fields, comparisons, rules, settings)
    gcols = [f"g_{c.kind}" for c in comparisons]
    why = "the settings or the comparisons changed"
    if twins:
        why = "a resolution with twins is resolved in full"
    if twins or signature != stored.signature or any(g not in stored.pairs.columns for g in gcols):
        full = resolve(
            records,
            fields,
            name_type=name_type,
            threshold=threshold,
            max_block=max_block,
            random_pairs=random_pairs,
            seed=seed,
            move_together=move_together,
            twins=twins,
            labels=labels,
            progress=progress,
        )
        full.incremental = {"full": True, "why": why}
        return full
    if now is None:
        now = fingerprints(records, fields)
    before = stored.records
    diff = now.join(before.select("record_id", "fingerprint"), on="record_id", how="left")
    changed = diff.filter(
        pl.col("fingerprint_right").is_null()
        | (pl.col("fingerprint") != pl.col("fingerprint_right"))
    ).select("record_id")
    removed = before.join(now, on="record_id", how="anti").select("record_id")
    gone = pl.concat([changed, removed])
    model, by_rules, shifts = stored.model, stored.method == "rules", stored.label_shifts
    lap("prepare")
    con = scratch()
    try:
        con.execute("SET enable_progress_bar = false")
        # Every record's prepared columns, read in place (registered for as long as the
        # connection is open) rather than copied into a table: 0.2 s per kind on mid.
        con.register("prepared_frame", prepared.to_arrow(compat_level=pl.CompatLevel.newest()))
        con.execute("CREATE VIEW prepared AS SELECT * FROM prepared_frame")
        con.register("changed_frame", changed)
        con.execute("CREATE TABLE changed AS SELECT * FROM changed_frame")
        con.unregister("changed_frame")
        report(progress, _STEPS[1], 1, len(_STEPS))
        con.execute(
            f"CREATE TABLE candidates AS {pairs_sql(rules, 'changed')}",
            {"max_block": max_block},
        )
        hierarchy = _hierarchy(prepared)
        fresh = con.sql(gamma_sql(comparisons, "candidates", apart=hierarchy)).pl()
        marked = _marked(con, labels, comparisons, hierarchy)
        fresh = apply_shifts(_score(fresh, model, comparisons, rules=by_rules), shifts, gcols)
        fresh = fresh.drop([c for c in fresh.columns if c.startswith("tf_")])
        kept = stored.pairs.join(
            gone.rename({"record_id": "left_id"}), on="left_id", how="anti"
        ).join(gone.rename({"record_id": "right_id"}), on="right_id", how="anti")
        if hierarchy:  # a stored pair is never apart: those score 0 and are not stored
            kept = kept.with_columns(
                apart_parent=pl.lit(False), apart_place=pl.lit(False), apart=pl.lit(False)
            )
        pairs = pl.concat([kept, fresh.select(kept.columns)], how="vertical_relaxed").sort(
            "left_id", "right_id"
        )
        pairs = _keep_apart(_decide(pairs, marked, comparisons, model, by_rules, shifts), marked)
        lap("block and compare")
        report(progress, _STEPS[2], 2, len(_STEPS))

        score_all = _scorer(con, model, comparisons, by_rules, shifts, gcols, marked, hierarchy)
        # Components that held a changed or removed record are grouped again, with the
        # components any new or changed record is in now.
        touched = before.join(gone, on="record_id", how="semi").select("component").unique()
        dirty = pl.concat(
            [changed, before.join(touched, on="component", how="semi").select("record_id")]
        )
        fixed = before.join(dirty, on="record_id", how="anti").join(
            now.select("record_id"), on="record_id", how="semi"
        )
        detailed = cluster(
            pairs,
            prepared["record_id"],
            threshold,
            score_all,
            fixed=fixed,
            detail=True,
        )
        lap("cluster")
        report(progress, _STEPS[2], len(_STEPS), len(_STEPS))
    finally:
        con.close()
    # every record of a component with a record that did not keep its stored cluster
    regrouped = detailed.join(
        detailed.join(fixed.select("record_id"), on="record_id", how="anti").select("component"),
        on="component",
        how="semi",
    )
    return Resolution(
        detailed.drop("component", "linkage"),
        pairs,
        model,
        comparisons,
        timings,
        [r.name for r in rules],
        prepared,
        method=stored.method,
        warnings=list(stored.warnings),
        label_shifts=shifts,
        signature=signature,
        state=now.join(detailed.select("record_id", "component", "linkage"), on="record_id"),
        incremental={
            "full": False,
            "new": int(diff["fingerprint_right"].is_null().sum()),
            "changed": len(changed) - int(diff["fingerprint_right"].is_null().sum()),
            "removed": len(removed),
            "pairs_compared": len(fresh),
            "pairs_kept": len(kept),
            "records_regrouped": len(regrouped),
        },
    )
