"""Identity resolution of accounts and contacts, and merge proposals a reviewer can judge
in seconds: which fields agreed and how strongly, with the two records side by side.

A merge maps a duplicate record to its entity in foundation.entity_map (tier 2); the CRM
records themselves stay, as a CRM merge is for a person to carry out. The entity is the
cluster's survivor: the entity most of its records already map to (an earlier approved
merge), else its oldest record (the one deals and history hang on), then the most
complete, then the smallest id. Field values are chosen separately, by the golden-record
rules (data.identity.golden_records).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from revstack.agents.crm_hygiene import _stored
from revstack.agents.crm_hygiene._json import dumps
from revstack.agents.engine import Context
from revstack.data.identity import (
    Resolution,
    changes,
    fingerprints,
    resolve,
    resolve_incremental,
    review_pairs,
)

__all__ = ["merge_proposals", "ACCOUNT_FIELDS", "CONTACT_FIELDS", "REVIEW_PAIRS"]

# Pairs kept per object type for people to answer (Data quality, Clerical review): of
# each kind of pair, the one the matcher is least sure of.
REVIEW_PAIRS = 20
# A full resolution (the model estimated again, every pair compared, every component
# grouped) at least this often, and once this share of the records counted at the last
# estimate is new, changed or removed; between, a run redoes only what changed
# (docs/hygiene.md, Weekly runs). The contract's params override them.
FULL_RESOLUTION_WEEKS = 4
FULL_RESOLUTION_SHARE = 0.05

ACCOUNT_FIELDS = {
    "name": "name",
    "domain": "website",
    "phone": "phone",
    "address": "street",
    "city": "city",
    "zip": "postal_code",
    # Not compared: a subsidiary and its parent are two accounts (docs/identity.md).
    "parent": "parent_account_id",
}
CONTACT_FIELDS = {
    "name": "full_name",
    "email": "email",
    "phone": "phone",
    "domain": "company_domain",
}
_SHOW = {
    "accounts": [
        "name",
        "website",
        "phone",
        "street",
        "city",
        "postal_code",
        "country",
        "industry",
        "owner_id",
        "created_at",
    ],
    "contacts": ["full_name", "email", "phone", "title", "account_id", "created_at"],
}


KINDS = ("accounts", "contacts")


def _records(ctx: Context, kind: str) -> pl.DataFrame:
    """The records of one kind as the resolver takes them. Built one kind at a time: the
    large company's 5.4M contacts need not be held while its accounts resolve."""
    accounts = ctx.table("crm.accounts")
    if kind == "accounts":
        return accounts.rename({"account_id": "record_id"})
    contacts = ctx.table("crm.contacts").join(
        accounts.select("account_id", account_website="website"), on="account_id", how="left"
    )
    contacts = contacts.with_columns(
        full_name=pl.concat_str(
            [pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True
        ),
        company_domain=pl.coalesce("email", "account_website"),
    )
    return contacts.rename({"contact_id": "record_id"})


def _survivors(
    records: pl.DataFrame, clusters: pl.DataFrame, current: pl.DataFrame, kind: str
) -> pl.DataFrame:
    """(record_id, entity, current_entity) for records of multi-record clusters."""
    shown = [c for c in _SHOW[kind] if c in records.columns]
    multi = clusters.filter(pl.len().over("cluster_id") > 1)
    info = (
        multi.join(records.select("record_id", *shown), on="record_id", how="left")
        .join(current, on="record_id", how="left")
        .with_columns(
            current_entity=pl.coalesce("entity_id", "record_id"),
            filled=pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int32) for c in shown]),
        )
    )
    # An entity people already approved wins; otherwise the oldest, most complete record.
    approved = (
        info.filter(pl.col("current_entity") != pl.col("record_id"))
        .group_by("cluster_id", "current_entity")
        .len()
        .sort(["cluster_id", "len", "current_entity"], descending=[False, True, False])
        .unique("cluster_id", keep="first", maintain_order=True)
        .select("cluster_id", approved="current_entity")
    )
    best = (
        info.sort(
            ["cluster_id", "created_at", "filled", "record_id"],
            descending=[False, False, True, False],
            nulls_last=True,
        )
        .unique("cluster_id", keep="first", maintain_order=True)
        .select("cluster_id", best="record_id")
    )
    return (
        info.join(approved, on="cluster_id", how="left")
        .join(best, on="cluster_id")
        .with_columns(entity=pl.coalesce("approved", "best"))
    )


def _evidence(
    res: Resolution, todo: pl.DataFrame, records: pl.DataFrame, kind: str
) -> pl.DataFrame:
    shown = [c for c in _SHOW[kind] if c in records.columns]
    keyed = todo.with_columns(
        left_id=pl.min_horizontal("record_id", "entity"),
        right_id=pl.max_horizontal("record_id", "entity"),
    )
    pairs = res.pairs
    missing = (
        keyed.select("left_id", "right_id")
        .unique()
        .join(pairs, on=["left_id", "right_id"], how="anti")
    )
    if not missing.is_empty():  # the survivor was linked through others: score the pair itself
        pairs = pl.concat([pairs, res.score(missing)], how="diagonal_relaxed")
    scored = keyed.join(pairs.drop("rules", strict=False), on=["left_id", "right_id"], how="left")
    # Compared again for the card: a stored (incremental) run's pairs keep their levels
    # but not how common each agreed value is, and the card's weights must add up.
    explained = res.explain(res.score(keyed.select("left_id", "right_id").unique()))
    per_pair = explained.group_by("left_id", "right_id").agg(
        comparisons=pl.struct(field="kind", level="level", weight="weight")
    )
    side = records.select("record_id", *shown)
    rows = []
    data = scored.join(per_pair, on=["left_id", "right_id"], how="left")
    dup = {
        r["record_id"]: r
        for r in side.filter(pl.col("record_id").is_in(data["record_id"].implode())).iter_rows(
            named=True
        )
    }
    sur = {
        r["record_id"]: r
        for r in side.filter(pl.col("record_id").is_in(data["entity"].implode())).iter_rows(
            named=True
        )
    }
    for r in data.iter_rows(named=True):
        comps = sorted(r["comparisons"] or [], key=lambda c: -abs(c["weight"]))
        agreed = [f"{c['field']} {c['level']}" for c in comps if c["weight"] > 0]
        differ = [f"{c['field']} {c['level']}" for c in comps if c["weight"] < 0]
        survivor = sur.get(r["entity"], {"record_id": r["entity"]})
        label = survivor.get("name") or survivor.get("full_name") or r["entity"]
        reason = (
            f"likely the same {kind[:-1]} as {r['entity']} {label!r}: "
            + ", ".join(agreed[:4] or ["no field agrees strongly"])
            + (f"; differs: {', '.join(differ[:2])}" if differ else "")
            + f" (match probability {r['probability']:.3f})"
            + (
                "; the model could not learn from these records, so the documented rule "
                "set decided: " + "; ".join(res.warnings)
                if res.method == "rules"
                else ""
            )
        )
        rows.append(
            {
                "record_id": r["record_id"],
                "probability": float(r["probability"]),
                "reason": reason,
                "evidence": dumps(
                    {
                        "object": kind,
                        "survivor": r["entity"],
                        "match_probability": round(float(r["probability"]), 4),
                        "match_weight": r["match_weight"],
                        "method": res.method,
                        "comparisons": comps,
                        "records": {"duplicate": dup.get(r["record_id"]), "survivor": survivor},
                        "cluster": r["members"],
                    }
                ),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "record_id": pl.String,
            "probability": pl.Float64,
            "reason": pl.String,
            "evidence": pl.String,
        },
    )


def _answers(ctx: Context, kind: str, records: pl.DataFrame) -> pl.DataFrame:
    """People's latest answer about each pair of ``records`` (left_id, right_id, same)."""
    marks = ctx.table(
        "ops.identity_labels", ["label_id", "object_type", "left_id", "right_id", "same"]
    )
    ids = records["record_id"]
    return (
        marks.filter(pl.col("object_type") == kind)
        .sort("label_id")
        .unique(["left_id", "right_id"], keep="last", maintain_order=True)
        # a record merged away or deleted since it was marked has nothing left to teach
        .filter(pl.col("left_id").is_in(ids.implode()) & pl.col("right_id").is_in(ids.implode()))
        .select("left_id", "right_id", "same")
    )


def _to_review(res: Resolution, answered: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The pairs most worth an answer, with each comparison's level and weight."""
    gcols = [f"g_{c.kind}" for c in res.comparisons]
    ask = review_pairs(res.pairs, gcols, REVIEW_PAIRS, answered)
    if ask.is_empty():
        return pl.DataFrame()
    why = (
        res.explain(ask)
        .group_by("left_id", "right_id", maintain_order=True)
        .agg(levels=pl.struct("kind", "level", "weight"))
    )
    return ask.join(why, on=["left_id", "right_id"]).select(
        object_type=pl.lit(kind),
        left_id="left_id",
        right_id="right_id",
        rank=pl.int_range(1, pl.len() + 1, dtype=pl.Int32),
        probability=pl.col("probability").round(4),
        levels=pl.col("levels").map_elements(lambda s: dumps(s.to_list()), return_dtype=pl.String),
    )


def _resolve(
    ctx: Context,
    kind: str,
    records: pl.DataFrame,
    answered: pl.DataFrame,
    previous: tuple[Any, _stored.Estimate] | None,
    why: str,
    version: str,
) -> tuple[Resolution, dict[str, pl.DataFrame], dict[str, Any]]:
    """Resolve one object type, incrementally from ``previous`` unless a full resolution
    is due; (the resolution, its rows for the store, what the run's metadata says)."""
    fields = ACCOUNT_FIELDS if kind == "accounts" else CONTACT_FIELDS
    # A company keyed in from another office has a new street, postcode and
    # switchboard at once: those disagreements count once (docs/identity.md).
    together = (("address", "zip", "phone"),) if kind == "accounts" else ()
    settings: dict[str, Any] = {
        "name_type": "org" if kind == "accounts" else "person",
        "threshold": float(ctx.params.get("merge_threshold", 0.5)),
        "move_together": together,
        # Stored and resolved incrementally week by week: twins off (see ``resolve``).
        "twins": False,
    }
    key = _stored.model_key(ctx.definitions, version=version, fields=fields, settings=settings)
    labels = _stored.labels_digest(answered)
    as_of = ctx.as_of.replace(tzinfo=None)
    res = None
    if previous is not None:
        stored, estimate = previous
        # fingerprinted once: the count of what moved and the resolution both need them
        now = fingerprints(records, fields)
        moved = changes(records, fields, stored, now=now)
        why = _stored.stale(
            estimate,
            key=key,
            labels=labels,
            as_of=as_of,
            moved=sum(moved.values()),
            weeks=float(ctx.params.get("full_resolution_weeks", FULL_RESOLUTION_WEEKS)),
            share=float(ctx.params.get("full_resolution_share", FULL_RESOLUTION_SHARE)),
        )
        if not why:
            res = resolve_incremental(records, fields, stored, labels=answered, now=now, **settings)
            why = str(res.incremental.get("why", ""))
            if not why:
                estimate = _stored.Estimate(
                    estimate.key,
                    estimate.labels,
                    estimate.as_of,
                    estimate.by_run,
                    estimate.records,
                    estimate.moved + sum(moved.values()),
                )
    if res is None:
        res = resolve(records, fields, labels=answered, **settings)
    if why:  # this run estimated the model
        estimate = _stored.Estimate(key, labels, as_of, "", len(res.clusters), 0)
    rows = _stored.to_rows(kind, res.stored(), estimate, [c.kind for c in res.comparisons])
    about = {
        "resolution": "full" if why else "incremental",
        "full_because": why,
        "model_estimated_at": estimate.as_of.isoformat(),
        "model_estimated_by_run": estimate.by_run or "this run",
        "moved_since_estimate": estimate.moved,
        **({k: v for k, v in res.incremental.items() if k != "full"} if not why else {}),
    }
    return res, rows, about


def merge_proposals(
    ctx: Context, *, version: str = ""
) -> tuple[list[pl.DataFrame], pl.DataFrame, pl.DataFrame, dict[str, Any], dict[str, pl.DataFrame]]:
    """(merge proposal frames, ops.identity_clusters rows, ops.identity_review rows,
    metadata, rows of the stored resolution for the next run). ``version``: the agent's,
    part of what the stored resolution is keyed by."""
    current_all = ctx.table("foundation.entity_map", ["object_type", "record_id", "entity_id"])
    frames, clusters_out, review_out, meta = [], [], [], {}
    store: dict[str, list[pl.DataFrame]] = {t: [] for t in _stored.STORE_TABLES}
    previous, why_none = _stored.read(ctx)
    for kind in KINDS:
        records = _records(ctx, kind)
        answered = _answers(ctx, kind, records)
        res, rows, about = _resolve(
            ctx,
            kind,
            records,
            answered,
            previous.get(kind),
            why_none or f"no stored resolution of {kind}",
            version,
        )
        for table, data in rows.items():
            store[table].append(data)
        review_out.append(_to_review(res, answered, kind))
        current = current_all.filter(pl.col("object_type") == kind).select("record_id", "entity_id")
        info = _survivors(records, res.clusters, current, kind)
        members = info.group_by("cluster_id").agg(members=pl.col("record_id").sort())
        info = info.join(members, on="cluster_id")
        clusters_out.append(
            info.select(
                object_type=pl.lit(kind),
                record_id="record_id",
                cluster_id="entity",
                cluster_size=pl.col("members").list.len().cast(pl.Int32),
                confidence="confidence",
            )
        )
        todo = info.filter(pl.col("current_entity") != pl.col("entity"))
        # A merge already proposed (waiting for a reviewer, or decided) is dropped by the
        # engine as a repeat: its evidence, most of a weekly run's merge work, is not built.
        proposal = {
            "action_type": pl.lit(f"merge_{kind}"),
            "object_type": pl.lit("entity_map"),
            "record_id": pl.lit(f"{kind}:") + pl.col("record_id"),
            "field": pl.lit("entity_id"),
            "old_value": pl.lit('"') + pl.col("current_entity") + pl.lit('"'),
            "new_value": pl.lit('"') + pl.col("entity") + pl.lit('"'),
        }
        fresh = ctx.unrecorded(todo.select(**proposal)).select(
            record_id=pl.col("record_id").str.strip_prefix(f"{kind}:")
        )
        new = todo.join(fresh, on="record_id", how="semi", maintain_order="left")
        if not new.is_empty():
            ev = _evidence(res, new, records, kind)
            frames.append(
                new.join(ev, on="record_id").select(
                    **proposal,
                    confidence=pl.col("probability").clip(0.0, 1.0).round(4),
                    evidence="evidence",
                    reason="reason",
                )
            )
        meta[kind] = {
            "records": len(records),
            "candidate_pairs": len(res.pairs),
            # Pairs the CRM links parent and child, or whose names place them in
            # different countries: never proposed, however alike.
            **{
                f"kept_apart_by_{why}": int(res.pairs[f"apart_{why}"].sum())
                if f"apart_{why}" in res.pairs.columns
                else 0
                for why in ("parent", "place")
            },
            "in_clusters": len(info),
            "clusters": info["entity"].n_unique(),
            "to_merge": len(todo),
            "already_proposed": len(todo) - len(new),
            "seconds": res.timings,
            "lambda": res.model.lambda_,
            "method": res.method,
            "warnings": res.warnings,
            "answers": len(answered),
            **about,
        }
        # one kind's resolution is not held while the next resolves
        del records, res, info, todo, new
    review = [r for r in review_out if not r.is_empty()]
    return (
        frames,
        pl.concat(clusters_out),
        pl.concat(review) if review else pl.DataFrame(),
        meta,
        {t: pl.concat(parts, how="diagonal_relaxed") for t, parts in store.items()},
    )
