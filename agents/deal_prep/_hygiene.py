"""Open hygiene issues on the records a briefing uses: duplicates and blank required fields.

Duplicates come from identity resolution: the hygiene agent's latest clusters
(``ops.identity_clusters``, suspected duplicates with their confidence) and the merges
people approved (``foundation.entity_map`` rows mapping a record to another entity).
Before the hygiene agent has run, a simple check this module can compute stands in, and
the briefing says which one fired: accounts with the same normalised name (``data.normalize.company_key``)
or the same website domain; contacts with the same email, or the same name on the
same account. Blank required fields are ``definitions.yaml``'s, compiled by
``contracts.required_fields_sql``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from revstack.agents.engine import Context
from revstack.contracts import required_fields_sql
from revstack.data.normalize import company_key, domain_from_website

__all__ = ["Duplicate", "Hygiene", "find_hygiene", "IDENTITY_MAP", "NAME_CHECK"]

IDENTITY_MAP = "identity map"
NAME_CHECK = "name check"
MAX_OTHERS = 5
_NAMED = "SELECT * FROM ({}) WHERE record_id IN (SELECT unnest($ids))"
# Where a duplicate's identity row was read: the hygiene run's suspected clusters, or
# the identity map's approved merges.
CLUSTERS = "ops.identity_clusters"
IDENTITY_TABLE = "foundation.entity_map"
_MAP_SCHEMA: dict[str, pl.DataType] = {
    "object_type": pl.String(),
    "record_id": pl.String(),
    "entity_id": pl.String(),
    "confidence": pl.Float64(),
}


@dataclass(frozen=True)
class Duplicate:
    """``record`` looks like the same thing as ``other``; ``basis`` says why."""

    other: str
    method: str  # IDENTITY_MAP | NAME_CHECK
    basis: str  # entity E12 (confidence 0.93) | same name key 'acme' | same domain acme.com ...
    field: str  # the field both records share (entity_id, name, website, email)


@dataclass
class Hygiene:
    blanks: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    duplicates: dict[tuple[str, str], list[Duplicate]] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)  # object kind -> method used
    entity_rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    others: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # rows of the 'other' records


def _kind(object_type: pl.Expr) -> pl.Expr:
    # the map's object_type is 'account' in the first schema and 'accounts' in later code
    return object_type.str.to_lowercase().str.strip_suffix("s") + "s"


def _from_map(em: pl.DataFrame, obj: str, ids: Sequence[str], h: Hygiene) -> None:
    rows = em.filter(pl.col("kind") == obj)
    wanted = set(ids)
    # Only the groups of two or more with a record asked about are looked at (on mid,
    # tens of thousands of groups, a few thousand records asked about).
    groups = (
        rows.group_by("entity_id")
        .agg(pl.col("record_id").sort())
        .filter(
            (pl.col("record_id").list.len() > 1)
            & pl.col("record_id").list.eval(pl.element().is_in(list(wanted))).list.any()
        )
    )
    members = {r: g for g, recs in groups.iter_rows() for r in recs}
    by_record = {
        r["record_id"]: r
        for r in rows.filter(pl.col("record_id").is_in(list(members))).iter_rows(named=True)
    }
    for r in rows.filter(pl.col("record_id").is_in(list(wanted))).iter_rows(named=True):
        h.entity_rows[(obj, r["record_id"])] = r
    for group in groups.iter_rows(named=True):
        recs = group["record_id"]
        for rec in (x for x in recs if x in wanted):
            dups = []
            for other in [x for x in recs if x != rec][:MAX_OTHERS]:
                h.entity_rows[(obj, other)] = by_record[other]
                conf = by_record[rec]["confidence"]
                dups.append(
                    Duplicate(
                        other,
                        IDENTITY_MAP,
                        f"entity {members[rec]} (confidence {conf:.2f})",
                        "entity_id",
                    )
                )
            h.duplicates[(obj, rec)] = dups


def _groups(
    df: pl.DataFrame, id_col: str, key: str, ids: set[str]
) -> dict[str, tuple[str, list[str]]]:
    """record -> (the shared key value, the other records with it), for records in ``ids``."""
    grouped = (
        df.filter(pl.col(key).is_not_null() & (pl.col(key) != ""))
        .group_by(key)
        .agg(pl.col(id_col).sort())
        .filter(pl.col(id_col).list.len() > 1)
    )
    out: dict[str, tuple[str, list[str]]] = {}
    for value, recs in grouped.iter_rows():
        for r in recs:
            if r in ids:
                out[r] = (value, [x for x in recs if x != r])
    return out


def _fallback(
    df: pl.DataFrame,
    obj: str,
    id_col: str,
    keys: dict[str, tuple[str, str]],
    ids: Sequence[str],
    h: Hygiene,
) -> None:
    wanted = set(ids)
    found: dict[str, list[Duplicate]] = defaultdict(list)
    for key, (fieldname, label) in keys.items():
        groups = _groups(df, id_col, key, wanted)
        for rec, (value, others) in groups.items():
            for other in others[:MAX_OTHERS]:
                if all(d.other != other for d in found[rec]):
                    found[rec].append(
                        Duplicate(other, NAME_CHECK, f"same {label} {value!r}", fieldname)
                    )
    rows = {
        r[id_col]: r
        for r in df.filter(
            pl.col(id_col).is_in([d.other for v in found.values() for d in v])
        ).iter_rows(named=True)
    }
    for rec, dups in found.items():
        if dups:
            h.duplicates[(obj, rec)] = dups
            for d in dups:
                h.others[(obj, d.other)] = rows[d.other]


def find_hygiene(
    ctx: Context,
    definitions: Any,
    *,
    accounts: Sequence[str],
    contacts: Sequence[str],
    opportunities: Sequence[str],
    all_accounts: pl.DataFrame,
    all_contacts: pl.DataFrame,
) -> Hygiene:
    """Duplicates and blank required fields of the named records."""
    h = Hygiene()
    raw = ctx.table("foundation.entity_map")
    # Every record has an identity row (its own entity until a merge): only merged ones tell.
    merged = raw.filter(pl.col("entity_id") != pl.col("record_id"))
    heads = raw.join(
        merged.select("object_type", record_id="entity_id").unique(),
        on=["object_type", "record_id"],
        how="semi",
    )
    # Each hygiene run adds its clusters (about 90k rows on mid): only the latest run's.
    latest = ctx.latest_run("ops.identity_clusters")
    # Each row says where it was read, so a statement cites the row it came from: a
    # suspected cluster is the hygiene run's, not the identity map's (which holds a
    # record as its own entity until its merge is approved).
    suspected = latest.select(
        "object_type",
        "record_id",
        entity_id="cluster_id",
        confidence="confidence",
        run_id=pl.col("run_id").cast(pl.String),
        cited=pl.lit(CLUSTERS),
    )
    approved = [
        df.select("object_type", "record_id", "entity_id", "confidence").with_columns(
            run_id=pl.lit(None, pl.String), cited=pl.lit(IDENTITY_TABLE)
        )
        for df in (merged, heads)
    ]
    combined = pl.concat([suspected, *approved])
    combined = combined.unique(["object_type", "record_id"], keep="first", maintain_order=True)
    em = ctx.validated(
        "foundation.entity_map", combined, _MAP_SCHEMA, key="record_id"
    ).with_columns(kind=_kind(pl.col("object_type")))
    for obj, ids in (("accounts", accounts), ("contacts", contacts)):
        if not em.filter(pl.col("kind") == obj).is_empty():
            h.method[obj] = IDENTITY_MAP
            _from_map(em, obj, ids, h)
    if "accounts" not in h.method:
        h.method["accounts"] = NAME_CHECK
        acc = all_accounts.select(
            "account_id",
            "name",
            "website",
            name_key=company_key(pl.col("name")),
            domain=domain_from_website(pl.col("website")),
        )
        _fallback(
            acc,
            "accounts",
            "account_id",
            {"name_key": ("name", "normalised name"), "domain": ("website", "website domain")},
            accounts,
            h,
        )
    if "contacts" not in h.method:
        h.method["contacts"] = NAME_CHECK
        con = all_contacts.select(
            "contact_id",
            "account_id",
            "first_name",
            "last_name",
            "email",
            email_key=pl.col("email").str.to_lowercase().str.strip_chars(),
            name_key=pl.concat_str(
                [
                    pl.col("account_id"),
                    pl.col("first_name").str.to_lowercase(),
                    pl.col("last_name").str.to_lowercase(),
                ],
                separator="|",
            ),
        )
        _fallback(
            con,
            "contacts",
            "contact_id",
            {
                "email_key": ("email", "email"),
                "name_key": ("last_name", "name on the same account"),
            },
            contacts,
            h,
        )
    for obj, ids, table in (
        ("accounts", accounts, "crm.accounts"),
        ("contacts", contacts, "crm.contacts"),
        ("opportunities", opportunities, "crm.opportunities"),
    ):
        if not ids:
            continue
        # only the named records' blanks leave DuckDB (not every blank of the CRM)
        blanks = ctx.sql(
            _NAMED.format(required_fields_sql(definitions, obj)),
            tables=[table],
            params={"ids": list(ids)},
        )
        for rec, fieldname in blanks.sort("record_id", "field").iter_rows():
            h.blanks.setdefault((obj, rec), []).append(fieldname)
    return h
