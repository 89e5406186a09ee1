"""Incremental identity resolution: a stored resolution, and a later one that redoes only
what changed (new, changed and removed records) on the real hand-labelled orgs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from revstack.data.identity import changes, resolve, resolve_incremental
from revstack.data.identity._cluster import cluster

ORGS = "dedupe_orgs/csv_example_input_with_true_ids.csv"
FIELDS = {"name": "Site name", "address": "Address", "zip": "Zip", "phone": "Phone"}
KEY = ["left_id", "right_id"]
# As the hygiene agent resolves week by week: twins resolve in full (test below).
WEEKLY = {"twins": False}


def test_a_component_nothing_touched_keeps_its_stored_clusters() -> None:
    pairs = pl.DataFrame(
        {"left_id": ["a", "b"], "right_id": ["b", "c"], "probability": [0.95, 0.9]}
    )

    def score_all(p: pl.DataFrame) -> pl.DataFrame:
        full = {("a", "b"): 0.95, ("b", "c"): 0.9, ("a", "c"): 0.01, ("a", "d"): 0.9}
        full |= {("b", "d"): 0.9, ("c", "d"): 0.01}
        return p.with_columns(
            probability=pl.Series([full[k] for k in zip(p["left_id"], p["right_id"], strict=True)])
        )

    ids = pl.Series(["a", "b", "c"])
    fresh = cluster(pairs, ids, 0.5, score_all, detail=True)
    assert fresh["cluster_id"].to_list() == ["a", "a", "c"]  # a, c clearly differ
    assert fresh["component"].to_list() == ["a", "a", "a"]
    # A stored clustering of the same component (as an earlier model grouped it) stands.
    stored = fresh.select("record_id", "component", cluster_id=pl.lit("a"), linkage=pl.lit(0.62))
    kept = cluster(pairs, ids, 0.5, score_all, fixed=stored, detail=True)
    assert kept["cluster_id"].to_list() == ["a", "a", "a"]
    assert kept["confidence"].to_list() == [0.62] * 3
    # A record joining the component (a new link) means the component is grouped again.
    grown = pl.concat(
        [pairs, pl.DataFrame({"left_id": ["b"], "right_id": ["d"], "probability": [0.9]})]
    )
    again = cluster(grown, pl.Series(["a", "b", "c", "d"]), 0.5, score_all, fixed=stored)
    assert again["cluster_id"].to_list() == ["a", "a", "c", "a"]


@pytest.fixture(scope="module")
def orgs(shared_data: Path) -> pl.DataFrame:
    return pl.read_csv(shared_data / ORGS, infer_schema=False).rename({"Id": "record_id"})


@pytest.fixture(scope="module")
def week(orgs: pl.DataFrame) -> dict[str, pl.DataFrame | object]:
    """A resolution stored a week ago, and this week's records: 42 new (held back then),
    one planted duplicate, one record whose fields all changed, one removed."""
    ids = orgs["record_id"].sort()
    held = set(ids.gather_every(80).to_list())
    before = orgs.filter(~pl.col("record_id").is_in(list(held)))
    first = resolve(before, FIELDS, **WEEKLY)
    sizes = first.clusters.group_by("cluster_id").len()
    pair = first.clusters.join(sizes.filter(pl.col("len") == 2), on="cluster_id").sort("record_id")
    changed, partner = pair["record_id"][0], pair["record_id"][1]
    lonely = first.clusters.join(sizes.filter(pl.col("len") == 1), on="cluster_id")["record_id"]
    original, removed = lonely[3], lonely[7]
    far = orgs.filter(pl.col("record_id") == lonely[11]).row(0, named=True)
    now = (
        pl.concat(
            [
                orgs.filter(pl.col("record_id") != removed),
                orgs.filter(pl.col("record_id") == original).with_columns(
                    record_id=pl.lit("planted")
                ),
            ]
        )
        .with_columns(
            [
                pl.when(pl.col("record_id") == changed)
                .then(pl.lit(far[c]))
                .otherwise(pl.col(c))
                .alias(c)
                for c in FIELDS.values()
            ]
        )
        .sort("record_id")
    )
    return {
        "first": first,
        "now": now,
        "changed": changed,
        "partner": partner,
        "original": original,
        "removed": removed,
        "held": held,
    }


@pytest.mark.slow
def test_nothing_changed_gives_the_stored_resolution_back(orgs: pl.DataFrame) -> None:
    first = resolve(orgs, FIELDS, **WEEKLY)
    again = resolve_incremental(orgs, FIELDS, first.stored(), **WEEKLY)
    assert again.incremental["pairs_compared"] == 0 and again.incremental["new"] == 0
    assert again.clusters.equals(first.clusters)
    stored = first.stored().pairs
    assert again.pairs.select(stored.columns).sort(KEY).equals(stored.sort(KEY))


@pytest.mark.slow
def test_new_changed_and_removed_records_are_resolved_and_the_rest_stands(week) -> None:
    first, now = week["first"], week["now"]
    stored = first.stored()
    new = len(week["held"]) + 1
    assert changes(now, FIELDS, stored) == {"new": new, "changed": 1, "removed": 1}
    res = resolve_incremental(now, FIELDS, stored, **WEEKLY)
    assert not res.incremental["full"] and res.incremental["pairs_compared"] > 0
    by = dict(res.clusters.select("record_id", "cluster_id").iter_rows())
    # The planted duplicate arrived this week and is found.
    assert by["planted"] == by[week["original"]]
    # The changed record's old link is gone, scored afresh on its new fields.
    assert by[week["changed"]] != by[week["partner"]]
    old = res.pairs.filter(
        (pl.col("left_id") == min(week["changed"], week["partner"]))
        & (pl.col("right_id") == max(week["changed"], week["partner"]))
    )
    assert old.is_empty() or old["probability"].max() < 0.5
    # The removed record is gone from clusters and pairs.
    assert week["removed"] not in by
    assert not res.pairs.filter(
        (pl.col("left_id") == week["removed"]) | (pl.col("right_id") == week["removed"])
    ).height
    # Pairs among unchanged records keep their stored scores exactly; pairs that involve
    # a new or changed record are the ones a full blocking of this week's records finds,
    # with the same rules and levels, scored with the stored model.
    touched = [*week["held"], "planted", week["changed"]]
    involves = pl.col("left_id").is_in(touched) | pl.col("right_id").is_in(touched)
    kept = res.pairs.filter(~involves).select(stored.pairs.columns).sort(KEY)
    assert kept.equals(
        stored.pairs.join(
            pl.DataFrame({"left_id": [week["removed"], week["changed"]]}), on="left_id", how="anti"
        )
        .join(
            pl.DataFrame({"right_id": [week["removed"], week["changed"]]}),
            on="right_id",
            how="anti",
        )
        .sort(KEY)
    )
    full = resolve(now, FIELDS, **WEEKLY)
    gcols = [f"g_{c.kind}" for c in full.comparisons]
    fresh = res.pairs.filter(involves).select(*KEY, "rules", *gcols).sort(KEY)
    assert fresh.equals(full.pairs.filter(involves).select(*KEY, "rules", *gcols).sort(KEY))
    rescored = res.score(res.pairs.filter(involves).select(KEY)).sort(KEY)
    assert rescored["probability"].to_list() == pytest.approx(
        res.pairs.filter(involves).sort(KEY)["probability"].to_list()
    )

    # Clusters nothing touched stand as stored: records whose link component neither
    # held a changed or removed record nor holds a new or changed one now.
    def components_of(state: pl.DataFrame, ids: list[str]) -> pl.Series:
        return state.filter(pl.col("record_id").is_in(ids))["component"].implode()

    assert res.state is not None
    untouched = stored.records.filter(
        ~pl.col("component").is_in(
            components_of(stored.records, [week["changed"], week["removed"]])
        )
    ).join(
        res.state.filter(~pl.col("component").is_in(components_of(res.state, touched))),
        on="record_id",
        how="semi",
    )
    assert untouched.height > 3000
    moved = untouched.join(res.clusters, on="record_id").filter(
        pl.col("cluster_id") != pl.col("cluster_id_right")
    )
    assert moved.is_empty()


@pytest.mark.slow
def test_other_settings_resolve_in_full(week) -> None:
    first, now = week["first"], week["now"]
    res = resolve_incremental(now, FIELDS, first.stored(), threshold=0.6, **WEEKLY)
    assert res.incremental["full"] and "settings" in res.incremental["why"]
    assert res.model is not first.model


def test_with_twins_a_later_run_resolves_in_full_as_the_twins_may_have_changed() -> None:
    # a1..a5 alike in every field, d1 and e1 sharing their phone; blocks of over 4 records
    # are paired through one twin (a1). Without a1 the full run pairs a2 with the rest;
    # pairs stored from the run with a1 hold none of a2's, and no record of a2..a5 changed.
    rows = {"record_id": [f"a{i}" for i in range(1, 6)] + ["d1", "e1"]}
    rows["Site name"] = ["Acme Widgets Inc"] * 5 + ["Dorado Gear", "Elm Tools"]
    rows["Phone"] = ["555 123 4567"] * 7
    before = pl.DataFrame(rows)
    fields = {"name": "Site name", "phone": "Phone"}
    first = resolve(before, fields, max_block=4)
    now = before.filter(pl.col("record_id") != "a1")
    full = resolve(now, fields, max_block=4)
    assert {("a2", "a3"), ("a2", "d1")} <= set(full.pairs.select(KEY).iter_rows())
    again = resolve_incremental(now, fields, first.stored(), max_block=4)
    assert again.incremental["full"] and "twins" in again.incremental["why"]
    assert again.pairs.select(KEY).sort(KEY).equals(full.pairs.select(KEY).sort(KEY))
    assert again.clusters.equals(full.clusters)
    # Without twins (the hygiene agent's weekly runs) the later run stays incremental.
    plain = resolve(before, fields, max_block=4, twins=False)
    week = resolve_incremental(now, fields, plain.stored(), max_block=4, twins=False)
    assert not week.incremental.get("full")


def _candidates(
    prepared: pl.DataFrame, changed: list[str] | None, max_block: int, twins: bool = False
) -> set:
    from revstack.data.identity._compare import blocking_rules, pairs_sql
    from revstack.data.warehouse import scratch

    rules = blocking_rules({"phone", "email"})
    con = scratch()
    try:
        con.register("prepared_frame", prepared)
        con.execute("CREATE TABLE prepared AS SELECT * FROM prepared_frame")
        con.register(
            "changed_frame",
            pl.DataFrame({"record_id": changed or []}, schema={"record_id": pl.String}),
        )
        con.execute("CREATE TABLE changed AS SELECT * FROM changed_frame")
        sql = pairs_sql(rules, "changed" if changed is not None else None, twins=twins)
        return set(con.execute(sql, {"max_block": max_block}).fetchall())
    finally:
        con.close()


def test_blocking_the_changed_records_sizes_their_blocks_over_every_record() -> None:
    # Four records share a phone (a block of four), a and b an e-mail too; e is alone.
    prepared = pl.DataFrame(
        {
            "record_id": ["a", "b", "c", "d", "e"],
            "phone": ["5551234567"] * 4 + ["5559999999"],
            "email": ["x@y.com", "x@y.com", None, "z@y.com", None],
        }
    )
    for max_block in (3, 4):
        full = _candidates(prepared, None, max_block)
        for changed in (["a"], ["c"], ["a", "d"], ["e"], []):
            found = _candidates(prepared, changed, max_block)
            # exactly the pairs of a full blocking that involve a changed record, with the
            # rules that found them
            assert found == {p for p in full if p[0] in changed or p[1] in changed}
    # a block of four is too large at 3: a and b are paired by their e-mail alone (rule
    # bit 1; the phone's is 2)
    assert _candidates(prepared, ["a"], 3) == {("a", "b", 1)}
    assert _candidates(prepared, ["a"], 4) == {("a", "b", 3), ("a", "c", 2), ("a", "d", 2)}


def test_a_block_of_many_records_but_few_different_ones_pairs_each_with_its_twin() -> None:
    # Five records share a phone: a, b and c are twins (all fields alike, twin a), d and
    # e are two more; e also shares d's e-mail.
    prepared = pl.DataFrame(
        {
            "record_id": ["a", "b", "c", "d", "e"],
            "twin": ["a", "a", "a", "d", "e"],
            "phone": ["5551234567"] * 5,
            "email": ["x@y.com", "x@y.com", "x@y.com", "z@y.com", "z@y.com"],
        }
    )
    # Five records, three different ones: at 3 the phone's block is kept, one of the
    # twins paired with the others and each twin with it (bit 2); at 4 or 5 in full.
    assert _candidates(prepared, None, 3, twins=True) == {
        ("a", "b", 3),
        ("a", "c", 3),
        ("b", "c", 1),  # the e-mail's block is small: paired in full
        ("a", "d", 2),
        ("a", "e", 2),
        ("d", "e", 3),
    }
    assert _candidates(prepared, None, 5, twins=True) == _candidates(prepared, None, 5)
    assert ("b", "d", 2) in _candidates(prepared, None, 5, twins=True)
    # At 2 the phone's three different records are too many; the e-mail's block of
    # three twins is one record (without twins, too large)
    assert _candidates(prepared, None, 2, twins=True) == {
        ("a", "b", 1),
        ("a", "c", 1),
        ("d", "e", 1),
    }
    assert _candidates(prepared, None, 2) == {("d", "e", 1)}
    full = _candidates(prepared, None, 3, twins=True)
    for changed in (["a"], ["b"], ["d"], ["b", "e"]):
        found = _candidates(prepared, changed, 3, twins=True)
        assert found == {p for p in full if p[0] in changed or p[1] in changed}


def test_records_out_of_order_or_twice_are_fingerprinted_and_clustered_as_sorted() -> None:
    from revstack.data.identity import fingerprints
    from revstack.data.identity._cluster import ascending

    assert ascending(pl.Series(["a", "b", "c"])) and ascending(pl.Series([], dtype=pl.String))
    assert not ascending(pl.Series(["a", "a", "b"]))  # twice
    assert not ascending(pl.Series(["b", "a"]))
    assert not ascending(pl.Series(["a", None, "c"]))
    fields = {"name": "n", "phone": "p"}
    mixed = pl.DataFrame(
        {"record_id": ["c", "a", "b", "a"], "n": ["x", "y", "z", "w"], "p": ["1", "2", "3", "4"]}
    )
    once = mixed.unique("record_id", keep="first", maintain_order=True).sort("record_id")
    assert once["n"].to_list() == ["y", "z", "x"]
    assert fingerprints(mixed, fields).equals(fingerprints(once, fields))
    assert fingerprints(mixed, fields)["record_id"].to_list() == ["a", "b", "c"]

    pairs = pl.DataFrame(
        {"left_id": ["a", "b", "a"], "right_id": ["b", "c", "c"], "probability": [0.9, 0.8, 0.002]}
    )

    def score_all(p: pl.DataFrame) -> pl.DataFrame:
        return p.join(pairs, on=["left_id", "right_id"], how="left").with_columns(
            pl.col("probability").fill_null(0.0)
        )

    sorted_ids = cluster(pairs, pl.Series(["a", "b", "c", "d"]), 0.5, score_all, detail=True)
    # c joins a and b only at their average, (0.8 + 0.002) / 2: it stays apart, its
    # confidence one minus its best link; d has no link at all
    assert sorted_ids["cluster_id"].to_list() == ["a", "a", "c", "d"]
    assert sorted_ids["confidence"].to_list() == [0.9, 0.9, 0.2, 1.0]
    assert sorted_ids["component"].to_list() == ["a", "a", "a", "d"]
    mixed_ids = cluster(pairs, pl.Series(["d", "b", "a", "c", "b"]), 0.5, score_all, detail=True)
    assert mixed_ids.equals(sorted_ids)
