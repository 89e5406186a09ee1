"""Identity resolution: normalisation, the model, clustering without chaining, and
precision / recall against the generator's truth and the real hand-labelled orgs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from revstack.data.errors import InputError
from revstack.data.identity import FellegiSunter, pairwise_scores, prepare, read_records, resolve
from revstack.data.identity._cluster import average_linkage, cluster
from revstack.data.identity._model import Session
from revstack.data.warehouse import Warehouse, frame
from tests.conftest import ROOT

ORGS = "dedupe_orgs/csv_example_input_with_true_ids.csv"


def test_names_domains_and_phones_normalise_to_one_key() -> None:
    records = pl.DataFrame(
        {
            "record_id": ["1", "2", "3", "4"],
            "name": [
                "ACME Intl. Corp.",
                "Acme International Corporation",
                "Société Générale S.A.",
                "the acme co",
            ],
            "web": ["https://www.Acme.com/contact", "acme.com", "jane@gmail.com", "bob@acme.com"],
            "tel": ["+1 (512) 757-6000", "512.757.6000", "", "12"],
        }
    )
    p = prepare(records, {"name": "name", "domain": "web", "phone": "tel"})
    assert p["name"].to_list() == [
        "acme international",
        "acme international",
        "societe generale",
        "acme",
    ]
    assert p["domain"].to_list() == [
        "acme.com",
        "acme.com",
        None,
        "acme.com",
    ]  # free mail is no company
    assert p["phone"].to_list()[:2] == ["15127576000", "5127576000"] and p["phone"][3] is None
    people = prepare(
        pl.DataFrame({"record_id": ["a", "b"], "n": ["Bob Smith", "Dr. Robert  SMITH"]}),
        {"name": "n"},
        name_type="person",
    )
    assert people["name"].to_list() == ["robert smith", "robert smith"]


def test_a_name_keyed_in_as_a_web_address_or_with_a_long_legal_form_is_the_company() -> None:
    records = pl.DataFrame(
        {
            "record_id": ["1", "2", "3", "4", "5", "6"],
            "name": [
                "Arsope.Co.Uk",
                "www.acme.com",
                "Orromi Systems Aktiebolag",
                "Kasoko Foods Ltda.",
                "Booking Holdings",
                "St. Mary Hospital",
            ],
        }
    )
    names = prepare(records, {"name": "name"})["name"].to_list()
    assert names == [
        "arsope",
        "acme",
        "orromi systems",
        "kasoko foods",
        "booking",
        "st mary hospital",
    ]


def test_em_recovers_the_parameters_that_generated_the_pairs() -> None:
    rng = np.random.default_rng(4)
    m = [np.array([0.05, 0.15, 0.8]), np.array([0.1, 0.9])]
    u = [np.array([0.9, 0.08, 0.02]), np.array([0.97, 0.03])]
    n_match, n_non = 3_000, 30_000

    def draw(p: list[np.ndarray], n: int) -> np.ndarray:
        return np.column_stack([rng.choice(len(q), size=n, p=q) for q in p])

    cand = np.vstack([draw(m, n_match), draw(u, n_non)])
    pats, counts = np.unique(cand, axis=0, return_counts=True)
    rpats, rcounts = np.unique(draw(u, 200_000), axis=0, return_counts=True)
    model = FellegiSunter().fit(
        [Session(pats, counts, ())],
        (pats, counts),
        (rpats, rcounts),
        [3, 2],
        total_pairs=n_match + n_non,
    )
    for est, true in zip(model.m_, m, strict=True):
        assert np.abs(est - true).max() < 0.04
    assert model.lambda_ == pytest.approx(n_match / (n_match + n_non), rel=0.15)


def test_average_linkage_does_not_chain_through_one_record() -> None:
    # A~B and B~C are strong, A and C are clearly different people.
    prob = np.array([[0, 0.95, 0.01], [0.95, 0, 0.9], [0.01, 0.9, 0]])
    assert len(set(average_linkage(prob, 0.5).tolist())) == 2
    pairs = pl.DataFrame(
        {"left_id": ["a", "b"], "right_id": ["b", "c"], "probability": [0.95, 0.9]}
    )

    def score_all(p: pl.DataFrame) -> pl.DataFrame:
        full = {("a", "b"): 0.95, ("b", "c"): 0.9, ("a", "c"): 0.01}
        return p.with_columns(
            probability=pl.Series([full[k] for k in zip(p["left_id"], p["right_id"], strict=True)])
        )

    out = cluster(pairs, pl.Series(["a", "b", "c", "d"]), 0.5, score_all)
    by = dict(zip(out["record_id"], out["cluster_id"], strict=True))
    assert by["a"] == by["b"] != by["c"] and by["d"] == "d"  # connected components would give one
    conf = dict(zip(out["record_id"], out["confidence"], strict=True))
    assert conf["a"] == pytest.approx(0.95) and conf["c"] == pytest.approx(0.1)


def _greedy_average_linkage(prob: np.ndarray, threshold: float) -> np.ndarray:
    """The plain greedy form: every step compares every pair of groups (n^3)."""
    n = len(prob)
    sums = prob.astype(float).copy()
    np.fill_diagonal(sums, -np.inf)
    sizes, label, alive = np.ones(n), np.arange(n), np.ones(n, dtype=bool)
    while True:
        link = sums / np.outer(sizes, sizes)
        link[~alive, :] = -np.inf
        link[:, ~alive] = -np.inf
        i, j = np.unravel_index(np.argmax(link), link.shape)
        if link[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        sums[i, :] += sums[j, :]
        sums[:, i] += sums[:, j]
        sums[i, i] = -np.inf
        sizes[i] += sizes[j]
        alive[j] = False
        label[label == j] = i
    return label


def test_average_linkage_joins_as_the_greedy_form_does_and_weights_count_twins() -> None:
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(1, 40))
        # Few distinct values, as the rule set gives (ties everywhere), or any value;
        # now and then a pair kept apart (-inf).
        values = np.array([0.05, 0.3, 0.4, 0.6, 0.65, 0.7]) if trial % 2 else None
        upper = rng.choice(values, (n, n)) if values is not None else rng.random((n, n))
        upper[rng.random((n, n)) < 0.03] = -np.inf
        prob = np.triu(upper, 1)
        prob = prob + prob.T
        assert np.array_equal(average_linkage(prob, 0.5), _greedy_average_linkage(prob, 0.5))
    # Twins whose pair is the best there is join first: a row weighted by their number
    # gives the same groups as a row each.
    n = 30
    upper = np.triu(rng.random((n, n)) * 0.9, 1)
    prob = upper + upper.T
    copies = rng.integers(1, 4, n)
    rows = np.repeat(np.arange(n), copies)
    expanded = prob[np.ix_(rows, rows)]
    expanded[rows[:, None] == rows[None, :]] = 1.0
    full = _greedy_average_linkage(expanded, 0.5)
    weighted = average_linkage(prob, 0.5, copies)
    first = np.concatenate([[0], np.cumsum(copies)[:-1]])
    assert np.array_equal(first[weighted], full[first])


def test_components_all_above_the_threshold_group_as_average_linkage_does() -> None:
    # Components whose every pair is above the threshold are one group without average
    # linkage, their members' linkage from row sums up to seven records: the groups and
    # linkages, to the last bit, must be what average linkage and each member's mean
    # with the rest of its group give. Some components have a pair exactly at the
    # threshold (no shortcut), some a pair under it, some rule-set-like ties.
    rng = np.random.default_rng(5)
    prob: dict[tuple[str, str], float] = {}
    expected: dict[str, tuple[str, float | None]] = {}
    links = []
    for c in range(120):
        n = int(rng.integers(3, 13))
        ids = [f"c{c:03d}_{i:02d}" for i in range(n)]
        kind = c % 4
        if kind == 3:
            p = rng.choice(np.array([0.6, 0.65, 0.7, 0.95]), (n, n))
        else:
            p = 0.5 + 0.5 * rng.random((n, n))
        if kind == 1:
            p[0, n - 1] = 0.5  # exactly at the threshold: average linkage decides
        if kind == 2:
            p[0, n - 1] = 0.1  # under it
        p = np.triu(p, 1)
        p = p + p.T
        for i in range(n):
            for j in range(i + 1, n):
                prob[(ids[i], ids[j])] = float(p[i, j])
        links += [(ids[i], ids[i + 1], float(p[i, i + 1])) for i in range(n - 1)]
        groups = average_linkage(p, 0.5)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            for i in idx:
                mean = float(p[i, idx[idx != i]].mean()) if len(idx) > 1 else None
                expected[ids[i]] = (ids[idx.min()], mean)
    pairs = pl.DataFrame(links, schema=["left_id", "right_id", "probability"], orient="row")

    def score_all(asked: pl.DataFrame) -> pl.DataFrame:
        keys = zip(asked["left_id"], asked["right_id"], strict=True)
        return asked.with_columns(probability=pl.Series([prob[k] for k in keys]))

    out = cluster(pairs, pl.Series(sorted(expected)), 0.5, score_all, detail=True)
    got = {r: (c, x) for r, c, x in out.select("record_id", "cluster_id", "linkage").iter_rows()}
    assert got == expected
    assert out["cluster_id"].n_unique() > 120  # some components were split


@pytest.fixture(scope="module")
def orgs(shared_data: Path) -> pl.DataFrame:
    return pl.read_csv(shared_data / ORGS, infer_schema=False).rename({"Id": "record_id"})


@pytest.mark.slow
def test_real_labelled_organisations_are_found_with_precision_and_recall_above_floors(
    orgs: pl.DataFrame,
) -> None:
    res = resolve(orgs, {"name": "Site name", "address": "Address", "zip": "Zip", "phone": "Phone"})
    scores = pairwise_scores(res.clusters, orgs.select("record_id", entity_id="True Id"))
    # Measured 0.90 / 0.91 (docs/identity.md); the floors leave room for seed noise only.
    assert scores["precision"] >= 0.87 and scores["recall"] >= 0.87, scores
    assert scores["true_pairs"] == 6608
    # Deterministic by seed, whatever the row order.
    again = resolve(
        orgs.reverse(), {"name": "Site name", "address": "Address", "zip": "Zip", "phone": "Phone"}
    )
    assert again.clusters.equals(res.clusters)


def _truth(con, kind: str) -> pl.DataFrame:
    return frame(
        con,
        "SELECT record_id, true_entity_id AS entity_id FROM truth.entities WHERE object_type = $k",
        {"k": kind},
    )


def test_generated_duplicates_are_found_against_truth(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        accounts = frame(
            con,
            """SELECT account_id AS record_id, name, website, phone, street, city, postal_code,
                      parent_account_id FROM crm.accounts""",
        )
        contacts = frame(
            con,
            """SELECT c.contact_id AS record_id, concat_ws(' ', first_name, last_name) AS name,
                                        email, c.phone, coalesce(email, a.website) AS domain
                                 FROM crm.contacts c LEFT JOIN crm.accounts a USING (account_id)""",
        )
        truth_a, truth_c = _truth(con, "accounts"), _truth(con, "contacts")
    res = resolve(
        accounts,
        {
            "name": "name",
            "domain": "website",
            "phone": "phone",
            "address": "street",
            "city": "city",
            "zip": "postal_code",
            "parent": "parent_account_id",
        },
    )
    a = pairwise_scores(res.clusters, truth_a)
    # measured 1.0 / 0.89 on small seed 3 until subsidiaries shared their group's website
    # and switchboard (issue #17): 0.85-0.87 / 0.95 since (docs/generator.md), and
    # 0.967 / 0.987 with the CRM's hierarchy, the shared phones' and websites' term
    # frequencies and the names keyed in as web addresses (docs/identity.md)
    assert a["precision"] >= 0.93 and a["recall"] >= 0.93, a
    # The surest links are the rightest: a look-alike company no longer scores highest
    # (before the hierarchy, 89% of links at 0.95 or more were right, 75% of those below;
    # since a place's agreements count once, every link of this seed is right).
    ids = truth_a.rename({"record_id": "left_id", "entity_id": "l"})
    links = (
        res.pairs.filter(pl.col("probability") >= 0.5)
        .join(ids, on="left_id")
        .join(ids.rename({"left_id": "right_id", "l": "r"}), on="right_id")
        .with_columns(right=pl.col("l") == pl.col("r"), sure=pl.col("probability") >= 0.95)
    )
    share = dict(links.group_by("sure").agg(pl.col("right").mean()).iter_rows())
    assert share[True] >= 0.93 and share[True] >= share.get(False, 0.0), share
    # What a reviewer reads adds up: a shared street, zip and city count once (the others
    # say so and weigh 0), a common city's adjustment is in its weight.
    prior = np.log2(res.model.lambda_ / (1 - res.model.lambda_))
    place = res.pairs.filter(
        (pl.col("g_address") == pl.col("g_address").max()) & (pl.col("g_zip") == 2)
    ).head(50)
    explained = res.explain(place)
    sums = explained.group_by("left_id", "right_id").agg(pl.col("weight").sum())
    both = place.join(sums, on=["left_id", "right_id"])
    assert len(both) == len(place) > 0
    assert ((both["weight"] + prior - both["match_weight"]).abs() < 0.05).all()
    once = explained.filter(pl.col("level").str.ends_with("(counted once, one place)"))
    assert len(once) >= len(place) and (once["weight"] == 0).all()
    res = resolve(
        contacts,
        {"name": "name", "email": "email", "phone": "phone", "domain": "domain"},
        name_type="person",
    )
    c = pairwise_scores(res.clusters, truth_c)
    assert c["precision"] >= 0.95 and c["recall"] >= 0.95, c  # measured 1.0 / 0.99
    # The evidence a reviewer reads: every comparison of a pair, with its level and weight.
    top = res.pairs.sort("probability", descending=True).head(1)
    explained = res.explain(top)
    assert set(explained["kind"]) == {"name", "email", "phone", "domain"}
    assert explained["weight"].sum() + np.log2(
        res.model.lambda_ / (1 - res.model.lambda_)
    ) == pytest.approx(top["match_weight"].item(), abs=0.05)


def _dedupe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "revstack", "dedupe", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_dedupe_command_works_on_any_csv_and_refuses_bad_input_whole(
    shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / ORGS
    out = tmp_path / "out.csv"
    ok = _dedupe(
        str(src),
        "--id",
        "Id",
        "--name",
        "Site name",
        "--field",
        "address=Address",
        "--field",
        "phone=Phone",
        "--out",
        str(out),
        "--truth",
        "True Id",
        "--json",
    )
    assert ok.returncode == 0, ok.stderr
    written = pl.read_csv(out, infer_schema=False)
    assert written.columns == ["record_id", "cluster_id", "confidence"] and len(written) == 3337
    before = out.read_bytes()
    for args, message in [
        (["--name", "Site nam"], "no column 'Site nam'"),
        (["--name", "Site name", "--field", "adress=Address"], "unknown kind 'adress'"),
        (["--name", "Site name", "--field", "phone"], "is not KIND=COLUMN"),
    ]:
        bad = _dedupe(str(src), "--id", "Id", *args, "--out", str(out))
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (
            bad.stderr
        )
        assert out.read_bytes() == before  # nothing half-written
    dup = tmp_path / "dup.csv"
    dup.write_text("id,company\n1,Acme\n2,Globex\n1,Acme Corp\n,Initech\n")
    bad = _dedupe(str(dup), "--id", "id", "--name", "company", "--out", str(tmp_path / "x.csv"))
    assert (
        bad.returncode == 2
        and "id '1' repeats on rows 2, 4" in bad.stderr
        and "empty id" in bad.stderr
    )
    assert not (tmp_path / "x.csv").exists()


def test_a_file_is_read_for_its_named_columns_only(tmp_path: Path) -> None:
    # A CRM export has many columns; only the id and the named ones are kept (headers
    # stripped of a byte-order mark and spaces as before), and a column not found is
    # reported with every column the file has, read or not.
    export = tmp_path / "export.csv"
    export.write_text("\ufeffId , Name,Notes,Email\n1,Acme,x,a@acme.com\n2, ,y,\n")
    got = read_records(export, "Id", {"name": "Name", "email": "Email"})
    assert got.columns == ["_row", "record_id", "Name", "Email"]
    assert got.rows() == [(2, "1", "Acme", "a@acme.com"), (3, "2", None, None)]
    with pytest.raises(InputError) as bad:
        read_records(export, "Id", {"name": "Company"})
    assert "the file has Id, Name, Notes, Email" in str(bad.value.problems[0])


def test_golden_records_follow_the_documented_survivorship_rules(wh: Warehouse) -> None:
    from revstack.data.identity import golden_records

    with wh.connect() as con:
        con.execute("""
            INSERT INTO crm.accounts (account_id, name, website, industry, employees, phone, updated_at, source) VALUES
              ('a1', 'Acme Corp', 'acme.com', NULL, 120, '+1 512 555 0100', TIMESTAMP '2026-01-01', 'generated'),
              ('a2', 'ACME Corporation', NULL, 'Software', 150, NULL, TIMESTAMP '2026-06-01', 'generated'),
              ('a3', 'Acme', 'www.acme.com', NULL, 99, NULL, TIMESTAMP '2025-01-01', 'salesforce');
            INSERT INTO foundation.entity_map VALUES
              ('accounts', 'a1', 'a1', 1, 'self', now()), ('accounts', 'a2', 'a1', 1, 'merge', now()),
              ('accounts', 'a3', 'a1', 1, 'merge', now());
        """)
        g = golden_records(con, "accounts")
    by = {r["field"]: r for r in g.iter_rows(named=True)}
    assert (
        by["name"]["value"] == "Acme" and by["name"]["rule"] == "most trusted source"
    )  # salesforce
    assert by["employees"]["source_record_id"] == "a3"  # trusted beats recent
    assert by["industry"]["value"] == "Software" and by["industry"]["rule"] == "only value"
    assert by["website"]["source_record_id"] == "a3"
    # Without a trusted source, the most recent record wins.
    with wh.connect() as con:
        con.execute("UPDATE crm.accounts SET source = 'generated'")
        g = golden_records(con, "accounts")
    by = {r["field"]: r for r in g.iter_rows(named=True)}
    assert by["employees"]["value"] == "150" and by["employees"]["rule"] == "most recent"
    assert set(g["entity_id"]) == {"a1"}


@pytest.mark.slow
def test_a_switchboard_many_companies_share_is_weaker_evidence_than_one_two_share(
    small_company: Warehouse,
) -> None:
    with small_company.connect() as con:
        accounts = frame(
            con,
            "SELECT account_id AS record_id, name, website, phone, street, city, postal_code FROM crm.accounts",
        )
    # Eight unrelated companies on one office switchboard, and two on another of their
    # own; nothing else in common (no website, each its own street), so each pair of
    # them differs only in how common the number is.
    names = [
        "Zorblax",
        "Quintaro",
        "Velmuth",
        "Ostrakan",
        "Pirenzo",
        "Galdova",
        "Hesketh",
        "Ubrino",
    ]
    planted = pl.DataFrame(
        {
            "record_id": [f"Z{i}" for i in range(10)],
            "name": [f"{n} Widgets" for n in names] + ["Marradine Foods", "Cobbleton Labs"],
            "website": [None] * 10,
            "phone": ["+1 415 555 0142"] * 8 + ["+1 415 555 0199"] * 2,
            "street": [f"{100 + i} Elm St" for i in range(10)],
            "city": ["Springfield"] * 10,
            "postal_code": [None] * 10,
        },
        schema=accounts.schema,
    )
    fields = {"name": "name", "domain": "website", "phone": "phone", "address": "street"}
    fields |= {"city": "city", "zip": "postal_code"}
    res = resolve(pl.concat([accounts, planted]), fields)
    gcols = [f"g_{c.kind}" for c in res.comparisons]
    shared = res.pairs.filter((pl.col("left_id") == "Z0") & (pl.col("right_id") == "Z1"))
    own = res.pairs.filter((pl.col("left_id") == "Z8") & (pl.col("right_id") == "Z9"))
    assert shared.select(gcols).rows() == own.select(gcols).rows()  # the same levels
    assert shared["match_weight"].item() < own["match_weight"].item() - 1.5


def test_a_large_component_is_grouped_over_its_twins_as_over_its_records() -> None:
    # a, b and c are twins (alike in every field), d is like them, e links to d only.
    prob = {("a", "b"): 0.95, ("a", "c"): 0.95, ("b", "c"): 0.95}
    prob |= {("a", "d"): 0.9, ("b", "d"): 0.9, ("c", "d"): 0.9, ("d", "e"): 0.6}
    ids = pl.Series(["a", "b", "c", "d", "e"])
    twins = pl.Series(["a", "a", "a", "d", "e"])

    def score_all(p: pl.DataFrame) -> pl.DataFrame:
        keys = zip(p["left_id"], p["right_id"], strict=True)
        return p.with_columns(probability=pl.Series([prob.get(k, 0.1) for k in keys]))

    pairs = score_all(
        pl.DataFrame({"left_id": ["a", "a", "b", "c", "d"], "right_id": ["b", "d", "d", "d", "e"]})
    )
    whole = cluster(pairs, ids, 0.5, score_all)
    # Over 3 records the component of 5 is large: grouped over a (for three), d and e.
    large = cluster(pairs, ids, 0.5, score_all, max_component=3, twins=twins)
    assert large.equals(whole)
    # The records in another order, the twins aligned with them: the same clusters.
    shuffled = cluster(
        pairs,
        ids.reverse(),
        0.5,
        score_all,
        max_component=3,
        twins=twins.reverse(),
    )
    assert shuffled.sort("record_id").equals(whole)
    assert whole["cluster_id"].to_list() == ["a", "a", "a", "a", "e"]
    # a's mean with b, c and d; e alone, one minus its best link
    assert whole["confidence"].to_list() == [0.9333, 0.9333, 0.9333, 0.9, 0.4]
    # Before twins a component this large was split by links of 0.999 only: all alone.
    strong = cluster(pairs, ids, 0.5, score_all, max_component=3, max_nodes=2, twins=twins)
    assert strong["cluster_id"].to_list() == ["a", "b", "c", "d", "e"]
    # Twins that do not match each other (a person's marks) are not one row.
    prob[("a", "b")] = prob[("a", "c")] = prob[("b", "c")] = 0.0
    apart = cluster(pairs, ids, 0.5, score_all, max_component=3, twins=twins)
    assert apart.equals(cluster(pairs, ids, 0.5, score_all))
    assert apart["cluster_id"].n_unique() >= 3


def test_clustering_a_hub_by_its_strong_links_leaves_out_pairs_of_unknown_records() -> None:
    # a, b, c are one component, too large to score whole at max_nodes=2: only the
    # strong link a~b groups them, so a's confidence is its mean with b from the
    # pairs themselves and c's one minus its best link. (a, zz) names no record: left out.
    pairs = pl.DataFrame(
        {
            "left_id": ["a", "b", "a", "c"],
            "right_id": ["b", "c", "zz", "d"],
            "probability": [0.9995, 0.6, 0.99, 0.0005],
            "g_name": [3, 1, 3, 0],  # a column clustering has no use for
        }
    )

    def score_all(p: pl.DataFrame) -> pl.DataFrame:
        raise AssertionError(f"no component is small enough to score whole: {p}")

    ids = pl.Series(["d", "c", "b", "a"])  # not ascending
    out = cluster(pairs, ids, 0.5, score_all, max_component=2, max_nodes=2, detail=True)
    assert out.columns == ["record_id", "cluster_id", "confidence", "component", "linkage"]
    assert out["record_id"].to_list() == ["a", "b", "c", "d"]
    assert out["cluster_id"].to_list() == ["a", "a", "c", "d"]
    assert out["confidence"].to_list() == [0.9995, 0.9995, 0.4, 1.0]
    assert out["component"].to_list() == ["a", "a", "a", "d"]
    assert out["linkage"].null_count() == 4  # no group came from average linkage
    plain = cluster(pairs, ids, 0.5, score_all, max_component=2, max_nodes=2)
    assert plain.equals(out.select("record_id", "cluster_id", "confidence"))
    # Under the confidence floor a link still links when the threshold is lower still,
    # but counts toward no confidence: c and d are one cluster with no pair to average.
    low = cluster(pairs.filter(pl.col("right_id") != "c"), ids, 0.0001, score_all)
    assert low["cluster_id"].to_list() == ["a", "a", "c", "c"]
    assert low["confidence"].to_list() == [0.9995, 0.9995, 1.0, 1.0]
