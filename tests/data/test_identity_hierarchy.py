"""A list's own hierarchy (a CRM's parent accounts): a record and its parent are two
entities, however alike, on the generated company's accounts and planted cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from revstack.data.identity import pairwise_scores, resolve, resolve_incremental
from revstack.data.identity._cluster import average_linkage
from revstack.data.warehouse import Warehouse, frame

FIELDS = {
    "name": "name",
    "domain": "website",
    "phone": "phone",
    "address": "street",
    "city": "city",
    "zip": "postal_code",
}
WITH_PARENT = FIELDS | {"parent": "parent_account_id"}
TOGETHER = (("address", "zip", "phone"),)  # as the hygiene agent resolves accounts (twins off)


@pytest.fixture(scope="module")
def accounts(small_company: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame]:
    with small_company.connect() as con:
        records = frame(
            con,
            """SELECT account_id AS record_id, name, website, phone, street, city, postal_code,
                      parent_account_id, created_at FROM crm.accounts""",
        )
        truth = frame(
            con,
            """SELECT record_id, true_entity_id AS entity_id FROM truth.entities
               WHERE object_type = 'accounts'""",
        )
    return records, truth


def _group(records: pl.DataFrame) -> dict:
    """The first company with a website and a phone and no parent of its own."""
    return (
        records.filter(
            pl.col("website").is_not_null()
            & pl.col("phone").is_not_null()
            & pl.col("parent_account_id").is_null()
        )
        .sort("record_id")
        .row(0, named=True)
    )


def _planted(records: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The records plus, for one company with a website and a phone, a subsidiary named
    after it, on its website and switchboard, at another address, linked
    to it as its parent; and a record of the parent keyed in again at that same other
    address (so it links to both). Returns the records and the parent's id."""
    parent = _group(records)
    sub = parent | {
        "record_id": "ZSUB",
        # No country in the name: only the hierarchy keeps this one apart (a name that
        # adds a country is the places test's).
        "name": f"{parent['name']} Services",
        "street": "12 Unter den Linden",
        "city": "Berlin",
        "postal_code": "10117",
        "parent_account_id": parent["record_id"],
    }
    again = sub | {"record_id": "ZDUP", "name": parent["name"], "parent_account_id": None}
    return pl.concat([records, pl.DataFrame([sub, again], schema=records.schema)]), parent[
        "record_id"
    ]


def _cluster_of(res, record_id: str) -> str:  # type: ignore[no-untyped-def]
    return res.clusters.filter(pl.col("record_id") == record_id)["cluster_id"].item()


def _pair(res, a: str, b: str) -> dict:  # type: ignore[no-untyped-def]
    return res.pairs.filter(
        (pl.col("left_id") == min(a, b)) & (pl.col("right_id") == max(a, b))
    ).row(0, named=True)


@pytest.mark.slow
def test_a_subsidiary_on_its_parents_website_and_switchboard_is_never_merged_into_it(
    accounts: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    records, _ = accounts
    planted, parent = _planted(records)
    # Without the hierarchy the subsidiary is a merge: name, website and phone agree.
    blind = resolve(planted, FIELDS, move_together=TOGETHER, twins=False)
    assert _pair(blind, parent, "ZSUB")["probability"] >= 0.5
    res = resolve(planted, WITH_PARENT, move_together=TOGETHER, twins=False)
    pair = _pair(res, parent, "ZSUB")
    assert pair["apart"] and pair["probability"] == 0.0
    assert pair["match_weight"] > 0  # the fields' evidence is kept for the reviewer
    # ZDUP is the parent keyed in again at the subsidiary's address: it links to both,
    # and average linkage must still never put the parent and its subsidiary together.
    assert _pair(res, "ZDUP", "ZSUB")["probability"] >= 0.5
    assert _cluster_of(res, parent) != _cluster_of(res, "ZSUB")
    why = res.explain(
        res.pairs.filter((pl.col("left_id") == min(parent, "ZSUB")) & pl.col("apart"))
    )
    assert "hierarchy" in why["kind"].to_list()
    assert "never merged" in why.filter(pl.col("kind") == "hierarchy")["level"].item()


def test_average_linkage_never_groups_a_pair_known_apart() -> None:
    # b matches a and c strongly; a and c are known to be two entities.
    prob = np.array([[0, 0.99, -np.inf], [0.99, 0, 0.99], [-np.inf, 0.99, 0]])
    labels = average_linkage(prob, 0.5)
    assert labels[0] != labels[2]
    assert labels[1] in (labels[0], labels[2])


@pytest.mark.slow
def test_no_crm_parent_and_child_share_a_cluster_and_precision_rises(
    accounts: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    records, truth = accounts
    blind = pairwise_scores(
        resolve(records, FIELDS, move_together=TOGETHER, twins=False).clusters, truth
    )
    res = resolve(records, WITH_PARENT, move_together=TOGETHER, twins=False)
    linked = records.filter(pl.col("parent_account_id").is_not_null())
    assert len(linked) > 5
    by = dict(res.clusters.select("record_id", "cluster_id").iter_rows())
    assert all(by[c] != by[p] for c, p in linked.select("record_id", "parent_account_id").rows())
    # Every candidate pair the hierarchy links scores 0, and they are left out of EM.
    apart = res.pairs.filter(pl.col("apart"))
    assert len(apart) > 0 and apart["probability"].max() == 0.0
    scores = pairwise_scores(res.clusters, truth)
    assert scores["precision"] > blind["precision"], (scores, blind)
    assert scores["recall"] >= blind["recall"] - 0.01, (scores, blind)


@pytest.mark.slow
def test_a_resolution_stored_before_the_hierarchy_was_given_is_redone_in_full(
    accounts: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    records, _ = accounts
    planted, parent = _planted(records)
    before = resolve(planted, FIELDS, move_together=TOGETHER, twins=False).stored()
    # What is stored has no column for the hierarchy: nothing to migrate.
    assert "apart" not in before.pairs.columns and "g_parent" not in before.pairs.columns
    res = resolve_incremental(planted, WITH_PARENT, before, move_together=TOGETHER, twins=False)
    assert res.incremental["full"]
    assert _cluster_of(res, parent) != _cluster_of(res, "ZSUB")
    # Stored under the hierarchy, a later week keeps the pair apart incrementally too,
    # when the subsidiary's record changes and is scored again with the stored model.
    stored = res.stored()
    week = planted.with_columns(
        street=pl.when(pl.col("record_id") == "ZSUB")
        .then(pl.lit("14 Unter den Linden"))
        .otherwise(pl.col("street"))
    )
    again = resolve_incremental(week, WITH_PARENT, stored, move_together=TOGETHER, twins=False)
    assert not again.incremental["full"] and again.incremental["changed"] == 1
    assert _pair(again, parent, "ZSUB")["probability"] == 0.0
    assert _cluster_of(again, parent) != _cluster_of(again, "ZSUB")


def test_a_looser_name_level_never_weighs_more_than_a_stricter_one() -> None:
    from revstack.data.identity._model import _monotone

    # levels: different, loose, containment, exact (best last); containment's u at the
    # floor makes it outweigh exact, a level no match reached sets no bound.
    m = np.array([0.05, 0.0, 0.15, 0.8])
    u = np.array([0.99, 0.01, 1e-6, 1e-5])
    capped = _monotone(m, u)
    w = np.log2(m[2:] / capped[2:])
    assert w[0] == pytest.approx(w[1]) and capped[2] > u[2]
    assert capped[3] == u[3] and capped[0] == u[0]  # the best and "different" untouched
    ordered = _monotone(np.array([0.1, 0.2, 0.7]), np.array([0.9, 0.09, 0.01]))
    assert np.array_equal(ordered, [0.9, 0.09, 0.01])  # already in order: unchanged


@pytest.mark.slow
def test_a_model_stored_by_an_older_resolver_is_estimated_again(
    accounts: tuple[pl.DataFrame, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    from revstack.data.identity import _resolve

    records, _ = accounts
    current = _resolve.MODEL_VERSION
    monkeypatch.setattr(_resolve, "MODEL_VERSION", current - 1)
    old = resolve(records, WITH_PARENT, move_together=TOGETHER, twins=False).stored()
    monkeypatch.setattr(_resolve, "MODEL_VERSION", current)
    res = resolve_incremental(records, WITH_PARENT, old, move_together=TOGETHER, twins=False)
    assert res.incremental["full"]
    same = resolve_incremental(
        records, WITH_PARENT, res.stored(), move_together=TOGETHER, twins=False
    )
    assert not same.incremental["full"]


def test_names_that_place_two_organisations_in_different_countries_are_apart() -> None:
    import duckdb

    from revstack.data.identity._places import apart_sql, name_places
    from revstack.data.identity._prepare import org_name

    pairs = [
        ("Acme GmbH", "Acme Germany GmbH", True),  # one adds a country
        ("Acme UK Ltd", "Acme Deutschland GmbH", True),  # two countries
        ("Acme Asia Pacific", "Acme EMEA", True),  # two regions
        ("Acme USA Inc", "Acme United States Corp.", False),  # one place, two spellings
        ("Acme Inc", "ACME, Inc.", False),
        ("Bank of America", "BofA", False),  # not one name inside the other
        ("Japan Airlines", "JAL", False),  # an acronym
        ("American Express", "American Express Co", False),  # an adjective is no place
        ("Acme Germany", "Acme Gemrany", False),  # a typo is not a second place
    ]
    names = pl.DataFrame(
        {"l": [p[0] for p in pairs], "r": [p[1] for p in pairs], "want": [p[2] for p in pairs]}
    )
    # Each side a struct (name, name_places), as a prepared record's columns.
    sides = {
        s: names.select(
            pl.struct(name=org_name(pl.col(s)), name_places=name_places(org_name(pl.col(s))))
        ).to_series()
        for s in ("l", "r")
    }
    con = duckdb.connect()
    con.register("p", pl.DataFrame({"l": sides["l"], "r": sides["r"]}))
    got = [row[0] for row in con.sql(f"SELECT {apart_sql()} FROM p").fetchall()]
    con.close()
    assert got == names["want"].to_list(), list(zip(pairs, got, strict=True))


@pytest.mark.slow
def test_in_a_list_with_a_hierarchy_a_national_company_is_never_merged_into_its_group(
    accounts: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    records, _ = accounts
    parent = _group(records)
    # Not linked in the CRM: named after the group with its country, on its website
    # and switchboard; beside it the group keyed in again with its legal form.
    sub = parent | {"record_id": "ZDE", "name": f"{parent['name']} Germany GmbH"}
    again = parent | {"record_id": "ZDUP", "name": f"{parent['name']} Inc."}
    planted = pl.concat([records, pl.DataFrame([sub, again], schema=records.schema)])
    pid = parent["record_id"]
    # A flat list (no hierarchy) keeps the old reading: flat lists often count a group's
    # national companies one organisation.
    blind = resolve(planted, FIELDS, move_together=TOGETHER, twins=False)
    assert _pair(blind, pid, "ZDE")["probability"] >= 0.5
    res = resolve(planted, WITH_PARENT, move_together=TOGETHER, twins=False)
    pair = _pair(res, pid, "ZDE")
    assert pair["apart"] and pair["apart_place"] and not pair["apart_parent"]
    assert pair["probability"] == 0.0 and pair["match_weight"] > 0
    assert _pair(res, pid, "ZDUP")["probability"] >= 0.5  # the duplicate still merges
    assert _cluster_of(res, pid) == _cluster_of(res, "ZDUP") != _cluster_of(res, "ZDE")
    why = res.explain(res.pairs.filter(pl.col("apart") & (pl.col("right_id") == "ZDE")))
    assert "different countries" in why.filter(pl.col("kind") == "places")["level"].to_list()[0]
    assert "hierarchy" not in why["kind"].to_list()
    # A person who says the two are one company outweighs the names.
    marked = resolve(
        planted,
        WITH_PARENT,
        move_together=TOGETHER,
        labels=pl.DataFrame({"left_id": [pid], "right_id": ["ZDE"], "same": [True]}),
    )
    assert not _pair(marked, pid, "ZDE")["apart"]
    assert _cluster_of(marked, pid) == _cluster_of(marked, "ZDE")
