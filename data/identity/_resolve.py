"""resolve(): records in, clusters out, with every scored pair and the model's reasons."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from revstack.data.identity._cluster import ascending, cluster
from revstack.data.identity._compare import (
    ONE_PLACE,
    Comparison,
    Rule,
    agree_groups,
    apart_kinds,
    blocking_rules,
    comparisons_for,
    gamma_sql,
    pairs_sql,
)
from revstack.data.identity._labels import apply_shifts, learn_shifts
from revstack.data.identity._model import FellegiSunter, Session
from revstack.data.identity._prepare import prepare
from revstack.data.identity._rules import cannot_learn, rule_probability, unsettled_sessions
from revstack.data.identity._terms import add_term_columns
from revstack.data.progress import Progress, report
from revstack.data.warehouse import scratch

__all__ = ["Resolution", "StoredResolution", "fingerprints", "resolve"]

# Bumped when what a stored resolution holds, or how a later run reads it, changes.
STORE_FORMAT = 1
# Bumped when how the model is estimated or a pair scored changes without the SQL of the
# comparisons changing (2: the name's levels kept in order, the hierarchy left out of EM;
# 3: a name's "& Co." folded as a legal form, so stored names are keyed again; both
# 2026-12-06; 4: a place's agreements count once, 2026-12-07; 5: single letters in a row
# joined, so stored names are keyed again, and a name alone's spellings scored above
# containment by the rule set, 2026-12-07; 6: a training session EM cannot settle left
# out of the estimates rather than the model, and a pair with nothing but its
# organisation name to compare scored as a names-only list's pair is, 2026-12-07; 7: a
# one-word name's spellings with a letter left out as blocking keys, 2026-12-08; 8: the
# same of any name's rarest word, and a five-letter word's whole spelling, 2026-12-08): a
# model stored before is estimated again (a full run), not reused.
MODEL_VERSION = 8
# Pairs under this probability are not stored: they link nothing and change no
# confidence (clustering leaves them out of both), and they are most of the candidate
# pairs (176k of 187k on mid's accounts).
STORE_FLOOR = 0.001

# What a reviewer reads about a pair of records the list itself links parent and child.
APART = "one is the other's parent: two entities, never merged"
# And about a pair whose names place them in different countries.
APART_PLACE = "the names place them in different countries: two entities, never merged"

_STEPS = ["preparing", "blocking", "comparing", "estimating", "clustering"]


@dataclass
class Resolution:
    """The outcome of one resolution run.

    ``clusters``: record_id, cluster_id, confidence (every record). ``pairs``: every
    candidate pair with its probability, match weight and one level per comparison
    (``g_<kind>``). ``model`` holds the estimated m and u; ``explain`` turns a pair's
    levels into what a reviewer reads. ``method`` is "model", or "rules" when the model
    could not learn (``warnings`` says why) and the fallback rule set decided.
    """

    clusters: pl.DataFrame
    pairs: pl.DataFrame
    model: FellegiSunter
    comparisons: list[Comparison]
    timings: dict[str, float] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    prepared: pl.DataFrame | None = None
    method: str = "model"
    warnings: list[str] = field(default_factory=list)
    # What people's answers taught, per kind of pair (see _labels.py); None without any.
    label_shifts: pl.DataFrame | None = None
    # For the next run (``stored``): the settings and comparisons' digest, each record's
    # fingerprint, link component and linkage.
    signature: str = ""
    state: pl.DataFrame | None = None
    # An incremental run's counts (records new, changed, removed; pairs compared;
    # records grouped again), or why it resolved in full; empty for a full run.
    incremental: dict[str, object] = field(default_factory=dict)

    def score(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Score any (left_id, right_id) pairs of the resolved records with the fitted model."""
        con = scratch()
        try:
            con.register("prepared", self.prepared)
            con.register("extra_pairs", pairs.select("left_id", "right_id"))
            gammas = con.sql(
                gamma_sql(self.comparisons, "extra_pairs", apart=_hierarchy(self.prepared))
            ).pl()
        finally:
            con.close()
        scored = _score(gammas, self.model, self.comparisons, rules=self.method == "rules")
        gcols = [f"g_{c.kind}" for c in self.comparisons]
        return _keep_apart(apply_shifts(scored, self.label_shifts, gcols))

    def explain(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Per pair and comparison: the level's label and what it adds to the match weight
        (log2 m/u, a common value's adjustment when ``pairs`` has its ``tf_`` column, 0
        where a group counts it once through another: the label says so), so that the
        prior and the weights add up to the pair's match weight; and for a pair the
        list's hierarchy keeps apart (``apart``), a row saying so (weight 0: it is not
        evidence to add but the last word, see ``_keep_apart``)."""
        gcols = [f"g_{c.kind}" for c in self.comparisons]
        g = pairs.select(gcols).to_numpy().astype(np.int64)
        parts = self.model.weights(g, _tf_adjust(pairs, g, self.model, self.comparisons))
        own = self.model.level_weights()  # each on its own, before any group
        grouped = {k: "counted once, one place" for grp in self.model.agree for k in grp}
        moved = {k: "counted once, moves together" for grp in self.model.groups for k in grp}
        rows = []
        for k, c in enumerate(self.comparisons):
            alone = np.where(g[:, k] >= 0, own[k][np.clip(g[:, k], 0, None)], 0.0)
            once = (parts[:, k] == 0) & (alone != 0)
            note = np.where(alone > 0, grouped.get(k, ""), moved.get(k, ""))
            rows.append(
                pairs.select("left_id", "right_id").with_columns(
                    kind=pl.lit(c.kind),
                    level=pl.Series(
                        [
                            f"{c.label(int(x))} ({n})" if o and n else c.label(int(x))
                            for x, o, n in zip(g[:, k], once, note, strict=True)
                        ]
                    ),
                    weight=pl.Series(parts[:, k]).round(2),
                )
            )
        if "apart" in pairs.columns:
            pairs = pairs.with_columns(pl.col("apart_parent", "apart_place").fill_null(False))
            for kind, level, which in (
                ("hierarchy", APART, pl.col("apart_parent")),
                ("places", APART_PLACE, pl.col("apart_place") & ~pl.col("apart_parent")),
            ):
                rows.append(
                    pairs.filter(which).select(
                        "left_id",
                        "right_id",
                        kind=pl.lit(kind),
                        level=pl.lit(level),
                        weight=pl.lit(0.0),
                    )
                )
        return pl.concat(rows)

    def stored(self) -> StoredResolution:
        """What a later run needs to resolve only what changed (``resolve_incremental``)."""
        if self.state is None:
            raise ValueError("this resolution kept no state for a later run")
        records = self.state.join(
            self.clusters.select("record_id", "cluster_id"), on="record_id", how="left"
        )
        gcols = [f"g_{c.kind}" for c in self.comparisons]
        pairs = self.pairs.filter(pl.col("probability") >= STORE_FLOOR).select(
            "left_id",
            "right_id",
            pl.col("rules").fill_null(0).cast(pl.Int64),
            *[pl.col(g).cast(pl.Int8) for g in gcols],
            "match_weight",
            "probability",
        )
        return StoredResolution(
            self.signature,
            self.model,
            self.method,
            list(self.warnings),
            self.label_shifts,
            records.select("record_id", "fingerprint", "component", "cluster_id", "linkage"),
            pairs,
        )

    def parameters(self) -> list[dict]:
        """m, u and weight per comparison level, for the docs and the dashboard."""
        out = []
        for k, c in enumerate(self.comparisons):
            for level in range(self.model.n_levels_[k]):
                m, u = float(self.model.m_[k][level]), float(self.model.u_[k][level])
                out.append(
                    {
                        "kind": c.kind,
                        "level": c.label(level),
                        "m": round(m, 5),
                        "u": round(u, 7),
                        "weight": round(float(np.log2(m / u)), 2),
                    }
                )
        return out


@dataclass(frozen=True)
class StoredResolution:
    """A resolution kept for the next run: its settings' digest, the model's numbers,
    what people's answers shifted, each record's fingerprint (of the compared fields),
    link component, cluster and linkage, and the scored candidate pairs of probability
    ``STORE_FLOOR`` or more."""

    signature: str
    model: FellegiSunter
    method: str
    warnings: list[str]
    label_shifts: pl.DataFrame | None
    records: pl.DataFrame  # record_id, fingerprint, component, cluster_id, linkage
    pairs: pl.DataFrame  # left_id, right_id, rules, g_<kind>..., match_weight, probability


def fingerprints(records: pl.DataFrame, fields: dict[str, str]) -> pl.DataFrame:
    """(record_id, fingerprint): a hash of each record's compared fields, the first row
    of a repeated id as ``resolve`` keeps it. Polars' row hash is stable within one
    version only, so the signature of a resolution carries the version."""
    columns = sorted(set(fields.values()))
    data = records.select(pl.col("record_id").cast(pl.String), *columns)
    in_order = ascending(data["record_id"])
    if not in_order:
        data = data.unique("record_id", keep="first", maintain_order=True)
    out = data.select(
        "record_id", fingerprint=data.select(columns).hash_rows(seed=7).cast(pl.UInt64)
    )
    return out if in_order else out.sort("record_id")


def _prepared(
    records: pl.DataFrame, fields: dict[str, str], name_type: str
) -> tuple[pl.DataFrame, list[Comparison], list[Rule]]:
    # Sorted, so the random pairs (and so the model) depend on the seed, not on row order.
    prepared = prepare(records, fields, name_type=name_type)
    if not ascending(prepared["record_id"]):  # the warehouse's records come so, by key
        prepared = prepared.unique("record_id", keep="first", maintain_order=True).sort("record_id")
    prepared = add_term_columns(prepared)
    if not ascending(prepared["record_id"]):  # as it was given, unless the terms' join moved it
        prepared = prepared.sort("record_id")
    # A field no record has is no field: it would count as a comparison (and hide that a
    # name is all there is to go on) while telling nothing apart.
    columns = {
        c
        for c in prepared.columns
        if prepared.is_empty() or prepared[c].null_count() < len(prepared)
    }
    comparisons = comparisons_for(columns)
    if not comparisons:
        raise ValueError("no field to compare records on")
    return prepared, comparisons, blocking_rules(columns)


def _twins(prepared: pl.DataFrame, labels: pl.DataFrame | None = None) -> pl.Series:
    """Each prepared record's twin: the smallest id of the records whose prepared fields
    are all the same as its own (itself, most often). Twins agree with each other at the
    best level of every comparison and with any third record exactly as each other do,
    so blocking pairs one of them for all (``pairs_sql``) and clustering groups them as
    one weighted record (``cluster``). Never a twin: a record that is another's parent
    (apart from that one record, not from its twins) or that a person marked in a pair
    (a mark is about that record)."""
    columns = [
        c
        for c, dtype in prepared.schema.items()
        if c != "record_id" and not isinstance(dtype, pl.List | pl.Struct)
    ]
    twin = pl.col("record_id").min().over(columns) if columns else pl.col("record_id")
    alone = pl.lit(False)
    if "parent" in prepared.columns:
        alone = pl.col("record_id").is_in(prepared["parent"].drop_nulls().implode())
    if labels is not None and not labels.is_empty():
        marked = pl.concat([labels["left_id"], labels["right_id"]]).cast(pl.String)
        alone = alone | pl.col("record_id").is_in(marked.implode())
    # Records that cannot be a twin are taken out before the smallest id is found, so
    # none is the twin of another either.
    keyed = prepared.select("record_id", *columns).with_columns(alone=alone)
    free = keyed.filter(~pl.col("alone"))
    if columns:
        # Alike records hash alike, so a record whose hash no other shares is its own
        # twin; the exact window runs over the rest only (over every record and all its
        # columns it was the most of preparing a million contacts).
        free = free.filter(free.select(columns).hash_rows(seed=0).is_duplicated())
    free = free.select("record_id", twin=twin)
    return (
        keyed.select("record_id")
        .join(free, on="record_id", how="left", maintain_order="left")
        .select(pl.coalesce("twin", "record_id"))
        .to_series()
        .alias("twin")
    )


def _signature(
    fields: dict[str, str],
    comparisons: list[Comparison],
    rules: list[Rule],
    settings: dict[str, object],
) -> str:
    """What a resolution's pairs and model depend on besides the records: the fields, the
    comparisons' and blocking rules' SQL, the settings, the store's format and polars'
    version. A later run resolves incrementally only under the same signature."""
    return hashlib.sha256(
        json.dumps(
            {
                "format": STORE_FORMAT,
                "model": MODEL_VERSION,
                "fields": fields,
                "compare": gamma_sql(
                    comparisons, "pairs", apart=_signature_apart(fields, comparisons)
                ),
                "block": pairs_sql(rules, twins=bool(settings.get("twins"))),
                "one_place": ONE_PLACE,
                "settings": settings,
                "polars": pl.__version__,
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()


def resolve(
    records: pl.DataFrame,
    fields: dict[str, str],
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
) -> Resolution:
    """Cluster ``records`` (a ``record_id`` column plus the columns in ``fields``,
    kind -> column) into entities.

    Candidate pairs come from blocking rules chosen by the kinds given; the
    Fellegi-Sunter model is estimated on them (u from ``random_pairs`` random pairs drawn
    with ``seed``); pairs at or above ``threshold`` link records, and average linkage
    inside each linked group keeps one bad link from chaining entities together.
    ``random_pairs`` defaults to four per record, at least 250k and at most 1M (Splink's
    default sample). ``move_together`` names groups of kinds that change at once (a
    company keyed in from another office has a new street, postcode and switchboard):
    their disagreements count once. Right for company records; wrong where the entity
    is a site (then a different address is a different entity).

    ``labels`` (left_id, right_id, same: bool), pairs a person marked, teach the
    matcher about their kinds of pair (one level per comparison): every candidate pair of
    a kind moves toward the share of that kind marked the same (docs/identity.md,
    Labels), and every marked pair is decided as marked (1 or 0) before clustering.

    ``twins``: records alike in every prepared field are twins (``_twins``): an oversized
    block of few different records is paired through one of each twin set, and a large
    component grouped over twin sets. Off for a resolution that is stored and resolved
    incrementally later (the hygiene agent's): which records are twins, and which of them
    stands for the set, can change without the records themselves changing, so a later
    run's pairs would not be a full run's (``resolve_incremental`` resolves in full when
    it is on).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    report(progress, _STEPS[0], 0, len(_STEPS))
    prepared, comparisons, rules = _prepared(records, fields, name_type)
    settings = _settings(name_type, threshold, max_block, random_pairs, seed, move_together, twins)
    twin = _twins(prepared, labels) if twins else prepared["record_id"].alias("twin")
    con = scratch()
    try:
        con.execute("SET enable_progress_bar = false")  # our own bar reports progress
        con.register("prepared_frame", prepared.with_columns(twin))
        con.execute("CREATE TABLE prepared AS SELECT * FROM prepared_frame")
        con.unregister("prepared_frame")
        lap("prepare")
        report(progress, _STEPS[1], 1, len(_STEPS))
        con.execute(
            f"CREATE TABLE candidates AS {pairs_sql(rules, twins=twins)}", {"max_block": max_block}
        )
        lap("block")
        report(progress, _STEPS[2], 2, len(_STEPS))
        hierarchy = _hierarchy(prepared)
        pairs = con.sql(gamma_sql(comparisons, "candidates", apart=hierarchy)).pl()
        # What was compared is let go as soon as its levels are out: on the large
        # company each copy held while the next step ran took gigabytes (docs/scale.md,
        # The large company). Clustering asks the connection for ``prepared`` only.
        con.execute("DROP TABLE candidates")
        n_random = random_pairs or min(1_000_000, max(250_000, 4 * len(prepared)))
        rand = _random_pairs(prepared["record_id"], n_random, seed)
        con.register("random_frame", rand)
        con.execute("CREATE TABLE random_pairs AS SELECT * FROM random_frame")
        con.unregister("random_frame")
        del rand
        random_g = con.sql(gamma_sql(comparisons, "random_pairs")).pl()
        con.execute("DROP TABLE random_pairs")
        lap("compare")
        report(progress, _STEPS[3], 3, len(_STEPS))
        gcols = [f"g_{c.kind}" for c in comparisons]
        n_levels = [len(c.levels) + 1 for c in comparisons]
        total = len(prepared) * (len(prepared) - 1) // 2
        # Pairs the list's hierarchy says are two entities are no unknowns: left out of EM
        # (as a subsidiary agreeing with its parent on the website, switchboard and
        # most of the name, they would teach it that such agreement means one company).
        # Lazily, and only the columns EM counts: a filtered copy of every candidate pair
        # with all its columns was the estimate's peak on the large company.
        known = pairs.lazy().select("rules", *gcols, *(["apart"] if hierarchy else []))
        if hierarchy:
            known = known.filter(~pl.col("apart"))
        model = _fit(known, random_g, comparisons, rules, n_levels, total, move_together)
        del known, random_g
        marked = _marked(con, labels, comparisons, hierarchy)
        warnings = cannot_learn(
            model, comparisons, len(prepared), total, _sure_pairs(pairs, gcols, n_levels)
        )
        by_rules = bool(warnings)
        scored = _score(pairs, model, comparisons, rules=by_rules)
        shifts = None
        if marked is not None:
            shifts = learn_shifts(scored, _score(marked, model, comparisons, rules=by_rules), gcols)
        pairs = _keep_apart(
            _decide(
                apply_shifts(scored, shifts, gcols), marked, comparisons, model, by_rules, shifts
            ),
            marked,
        )
        del scored
        lap("estimate")
        report(progress, _STEPS[4], 4, len(_STEPS))

        score_all = _scorer(con, model, comparisons, by_rules, shifts, gcols, marked, hierarchy)
        detailed = cluster(
            pairs,
            prepared["record_id"],
            threshold,
            score_all,
            twins=twin if twins else None,
            detail=True,
        )
        lap("cluster")
        report(progress, _STEPS[4], len(_STEPS), len(_STEPS))
    finally:
        con.close()
    return Resolution(
        detailed.drop("component", "linkage"),
        pairs,
        model,
        comparisons,
        timings,
        [r.name for r in rules],
        prepared,
        method="rules" if by_rules else "model",
        warnings=warnings
        + (["fell back to the documented rule set"] if by_rules else unsettled_sessions(model)),
        label_shifts=shifts,
        signature=_signature(fields, comparisons, rules, settings),
        state=fingerprints(records, fields).join(
            detailed.select("record_id", "component", "linkage"), on="record_id"
        ),
    )


def _settings(
    name_type: str,
    threshold: float,
    max_block: int,
    random_pairs: int | None,
    seed: int,
    move_together: tuple[tuple[str, ...], ...],
    twins: bool,
) -> dict[str, object]:
    return {
        "name_type": name_type,
        "threshold": threshold,
        "max_block": max_block,
        "random_pairs": random_pairs,
        "seed": seed,
        "move_together": [list(g) for g in move_together],
        "twins": twins,
    }


def _random_pairs(ids: pl.Series, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    size = len(ids)
    if size < 2:
        return pl.DataFrame(
            {"left_id": [], "right_id": []}, schema={"left_id": pl.String, "right_id": pl.String}
        )
    n = int(min(n, size * (size - 1) // 2))
    a = rng.integers(0, size, n)
    b = rng.integers(0, size - 1, n)
    b = np.where(b >= a, b + 1, b)  # never a record with itself
    # Gathered by polars: strings through a numpy object array took ten times as long.
    ids = ids.alias("record_id")
    return pl.DataFrame({"left_id": ids.gather(a), "right_id": ids.gather(b)})


def _patterns(
    frame: pl.DataFrame | pl.LazyFrame, gcols: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct comparison patterns of ``frame`` and how many pairs have each."""
    grouped = frame.lazy().group_by(gcols).len().collect()
    return grouped.select(gcols).to_numpy().astype(np.int64), grouped["len"].to_numpy()


def _fit(
    pairs: pl.LazyFrame,
    random_g: pl.DataFrame,
    comparisons: list[Comparison],
    rules: list[Rule],
    n_levels: list[int],
    total_pairs: int,
    move_together: tuple[tuple[str, ...], ...],
) -> FellegiSunter:
    gcols = [f"g_{c.kind}" for c in comparisons]
    kinds = [c.kind for c in comparisons]
    # One session per distinct set of fields the rules block on.
    by_fixed: dict[tuple[int, ...], int] = {}
    for i, r in enumerate(rules):
        fixed = tuple(sorted(kinds.index(k) for k in r.kinds if k in kinds))
        by_fixed[fixed] = by_fixed.get(fixed, 0) | (1 << i)
    sessions = []
    for fixed, mask in by_fixed.items():
        patterns, counts = _patterns(pairs.filter((pl.col("rules") & mask) != 0), gcols)
        if len(counts):
            sessions.append(Session(patterns, counts, fixed=fixed))
    groups = tuple(tuple(kinds.index(k) for k in group if k in kinds) for group in move_together)
    # An organisation name's levels are ordered by how alike two names are
    # (_model._monotone). A person's are not: "same family, close given" and "close
    # family, same given" are alternatives, neither stricter (and on mid seed 7 capping
    # them cost contacts 22 of 44,470 right pairs).
    ordered = tuple(k for k, c in enumerate(comparisons) if "name_sorted" in c.columns)
    return FellegiSunter(groups=groups, agree=agree_groups(kinds), ordered=ordered).fit(
        sessions, _patterns(pairs, gcols), _patterns(random_g, gcols), n_levels, total_pairs
    )


def _marked(
    con: duckdb.DuckDBPyConnection,
    labels: pl.DataFrame | None,
    comparisons: list[Comparison],
    hierarchy: tuple[str, ...] = (),
) -> pl.DataFrame | None:
    """People's marked pairs with their comparison levels (None without any)."""
    if labels is None or labels.is_empty():
        return None
    con.register("labels_frame", _ordered(labels))
    try:
        con.execute("CREATE TABLE labelled AS SELECT * FROM labels_frame")
    finally:
        con.unregister("labels_frame")
    return con.sql(gamma_sql(comparisons, "labelled", apart=hierarchy)).pl()


def _scorer(
    con: duckdb.DuckDBPyConnection,
    model: FellegiSunter,
    comparisons: list[Comparison],
    by_rules: bool,
    shifts: pl.DataFrame | None,
    gcols: list[str],
    marked: pl.DataFrame | None,
    hierarchy: tuple[str, ...] = (),
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """What clustering asks for the pairs it needs beyond the candidates: each scored as a
    candidate is (the model or the rules, people's answers on top)."""

    def score_all(extra: pl.DataFrame) -> pl.DataFrame:
        con.register("extra_frame", extra)
        try:
            con.execute("CREATE OR REPLACE TABLE extra_pairs AS SELECT * FROM extra_frame")
        finally:
            con.unregister("extra_frame")
        gammas = con.sql(gamma_sql(comparisons, "extra_pairs", apart=hierarchy)).pl()
        scored = _score(gammas, model, comparisons, rules=by_rules)
        return _keep_apart(_override(apply_shifts(scored, shifts, gcols), marked), marked)

    return score_all


def _hierarchy(prepared: pl.DataFrame | None) -> tuple[str, ...]:
    """Why the records' pairs may be kept apart (``apart_kinds``): the records carry their
    parent's id (the ``parent`` kind), their organisation names the places they name."""
    return () if prepared is None else apart_kinds(prepared.columns)


def _signature_apart(fields: dict[str, str], comparisons: list[Comparison]) -> tuple[str, ...]:
    """``_hierarchy`` as the fields and comparisons say it will be, before preparing."""
    org = any("name_sorted" in c.columns for c in comparisons)
    return apart_kinds({*fields, *(["name_places"] if org else [])})


def _keep_apart(pairs: pl.DataFrame, marked: pl.DataFrame | None = None) -> pl.DataFrame:
    """Pairs with probability 0 where one record is the other's parent, or their names
    place them in different countries (``apart``).

    The list's own hierarchy says they are two entities (a subsidiary is not its
    parent, however alike their names, websites and switchboards); so does a name that
    adds a country to another (a group's national company: docs/identity.md, Places in
    names). That has the last word, after the model, people's answers about kinds of
    pair and marks of single pairs (a place only until a person marks the pair the
    same; a parent always: merging a record into its own parent would make it its own
    parent). The pair's match weight stays the fields' evidence, so a reviewer sees both.
    """
    if "apart" not in pairs.columns or pairs.is_empty():
        return pairs
    if marked is not None and "apart_place" in pairs.columns:
        # Names are a hint and a person's "same" outweighs it; a parent link is not.
        same = marked.filter(pl.col("same")).select("left_id", "right_id", _same=pl.lit(True))
        pairs = (
            pairs.join(same, on=["left_id", "right_id"], how="left")
            .with_columns(apart_place=pl.col("apart_place") & pl.col("_same").is_null())
            .with_columns(apart=pl.col("apart_parent") | pl.col("apart_place"))
            .drop("_same")
        )
    return pairs.with_columns(
        probability=pl.when(pl.col("apart")).then(0.0).otherwise(pl.col("probability"))
    )


def _ordered(labels: pl.DataFrame) -> pl.DataFrame:
    """Marked pairs as (left_id < right_id, same), each once (the last mark wins)."""
    a, b = pl.col("left_id").cast(pl.String), pl.col("right_id").cast(pl.String)
    return (
        labels.select(
            left_id=pl.min_horizontal(a, b),
            right_id=pl.max_horizontal(a, b),
            same=pl.col("same").cast(pl.Boolean),
        )
        .filter(pl.col("left_id") != pl.col("right_id"))
        .unique(["left_id", "right_id"], keep="last", maintain_order=True)
    )


def _override(scored: pl.DataFrame, marked: pl.DataFrame | None) -> pl.DataFrame:
    """A marked pair's probability is its mark: 1 when the same, 0 when different."""
    if marked is None or scored.is_empty():
        return scored
    marks = marked.select("left_id", "right_id", mark=pl.col("same").cast(pl.Float64))
    return (
        scored.join(marks, on=["left_id", "right_id"], how="left")
        .with_columns(probability=pl.coalesce("mark", "probability"))
        .drop("mark")
    )


def _decide(
    pairs: pl.DataFrame,
    marked: pl.DataFrame | None,
    comparisons: list[Comparison],
    model: FellegiSunter,
    by_rules: bool,
    shifts: pl.DataFrame | None,
) -> pl.DataFrame:
    """The candidate pairs, plus marked pairs blocking missed, each marked one as marked."""
    if marked is None:
        return pairs
    extra = marked.join(pairs.select("left_id", "right_id"), on=["left_id", "right_id"], how="anti")
    if not extra.is_empty():
        extra = _score(extra.drop("same"), model, comparisons, rules=by_rules)
        extra = apply_shifts(extra, shifts, [f"g_{c.kind}" for c in comparisons])
        extra = extra.with_columns(rules=pl.lit(0, pl.Int64))  # no blocking rule found it
        pairs = pl.concat([pairs, extra], how="diagonal_relaxed")
    return _override(pairs, marked)


def _sure_pairs(pairs: pl.DataFrame, gcols: list[str], n_levels: list[int]) -> int:
    """Candidate pairs agreeing at the best level on every field both have (two at least,
    when there are two)."""
    if pairs.is_empty():
        return 0
    g = pairs.select(gcols).to_numpy().astype(np.int64)
    best = np.array(n_levels) - 1
    present = g >= 0
    top = (g == best) | ~present
    return int(((present.sum(axis=1) >= min(2, len(gcols))) & top.all(axis=1)).sum())


def _tf_adjust(
    pairs: pl.DataFrame, g: np.ndarray, model: FellegiSunter, comparisons: list[Comparison]
) -> np.ndarray:
    """Per pair and comparison, the term-frequency adjustment of its best level: log2 of
    u at that level over how common the agreed value is (0 where it does not apply)."""
    adjust = np.zeros(g.shape)
    for k, c in enumerate(comparisons):
        if not c.tf or f"tf_{c.kind}" not in pairs.columns:
            continue
        best = len(c.levels)
        tf = pairs[f"tf_{c.kind}"].fill_null(0.0).to_numpy()
        u_best = float(model.u_[k][best])
        at_best = (g[:, k] == best) & (tf > 0)
        adjust[:, k] = np.where(
            at_best, np.log2(u_best / np.where(tf > 0, np.maximum(tf, u_best * 1e-3), 1.0)), 0.0
        )
    return adjust


def _name_alone(g: np.ndarray, comparisons: list[Comparison]) -> tuple[int, np.ndarray] | None:
    """The organisation name's column and the pairs that have nothing else to compare
    (every other field missing on one side), or None.

    Such a pair is a pair of a names-only list, and is decided as one is (the rule set's
    names-alone points). The model would weigh its name against a prior learnt over pairs
    that mostly have more to go on: in a list a third duplicated, "Apple" / "Apple LLC"
    with one website missing stayed under 0.5 while every pair with both websites linked
    (docs/identity.md, Names with websites). A person's name alone is left to the model:
    many people share one."""
    org = [k for k, c in enumerate(comparisons) if "name_sorted" in c.columns]
    if not org or len(comparisons) == 1:
        return None
    others = [k for k in range(len(comparisons)) if k != org[0]]
    alone: np.ndarray = np.all(g[:, others] < 0, axis=1)
    return (org[0], alone) if alone.any() else None


def _score(
    pairs: pl.DataFrame, model: FellegiSunter, comparisons: list[Comparison], *, rules: bool
) -> pl.DataFrame:
    """Pairs with their match weight and probability: the model's, with the best level
    of a term-frequency comparison adjusted by how common the agreed value is, or the
    fallback rule set's (``rules``)."""
    if pairs.is_empty():
        return pairs.with_columns(
            probability=pl.lit(None, pl.Float64), match_weight=pl.lit(None, pl.Float64)
        )
    g = pairs.select([f"g_{c.kind}" for c in comparisons]).to_numpy().astype(np.int64)
    if rules:
        p = rule_probability(g, comparisons)
        weight = np.log2(p / (1 - p))
    else:
        weight = model.match_weight(g, _tf_adjust(pairs, g, model, comparisons))
        p = 1.0 / (1.0 + np.exp2(-np.clip(weight, -60, 60)))
        name_alone = _name_alone(g, comparisons)
        if name_alone is not None:
            k, alone = name_alone
            p = np.where(alone, rule_probability(g[:, [k]], [comparisons[k]]), p)
            weight = np.where(alone, np.log2(p / (1 - p)), weight)
    return pairs.with_columns(
        match_weight=pl.Series(weight).round(3),
        probability=pl.Series(p),
    )
