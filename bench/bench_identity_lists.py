"""The matcher on lists nobody here made: F1 and time per list, beside two baselines.

Three shapes of list, each split by true entity into a tuning half (even entity ids: the
half the name levels and the rule set were tuned on) and a held-out half (odd ids: never
looked at while tuning). Only held-out figures say how the matcher does on a new list.

- names only: dedupe_orgs' site names (../shared/data/dedupe_orgs), the restaurant
  names of tests/fixtures/identity/restaurants.csv, and the Dutch patent applicants of
  tests/fixtures/identity/patstat_orgs.csv (KU Leuven's hand-checked organisations;
  its tuning half was looked at while tuning from 2026-12-06 22:00 UTC, never its
  held-out half), whole and with each distinct spelling once; and the organisations of
  the U.S. Treasury's sanctions list, each entry's name with its aliases
  (tests/fixtures/identity/ofac_sdn_orgs.csv: transliterations, forms in other
  languages, acronyms, other names; its tuning half looked at from 2026-12-07 14:47 UTC);
- name + address + city: the restaurants;
- the full dedupe_orgs record (name, address, zip, phone), as bench_dedupe.py runs it;
- and, because no public labelled list of company names with typos was found, one this
  bench MAKES from the real Fortune 500 names (../shared/data/fortune500): half the
  companies get a second record with a typo, a legal form, capitals or "Holdings". It is
  not a list nobody here made: seed 1 was looked at while tuning, seed 2 was not. The
  same with each company's website as a CRM holds it (missing for one record in ten, a
  second record's written otherwise or missing), for names with domains, whose public
  labelled list was not found either (made 2026-12-07; nothing was tuned on it).

``--answers N`` adds a column: our F1 after a person answers N pairs in four rounds, as
the Data quality page's clerical review asks them (each round: the pairs most worth an
answer, one of each kind, answered from the list's true ids; the next resolution learns
from every answer so far).

Beside ours: a 6-letter name-prefix key (records whose folded names start alike are one
entity), and Splink 5 when ``--splink PYTHON`` names an interpreter that has it (a
throwaway venv: Splink is never a dependency of revstack):

    python -m venv /tmp/splink && /tmp/splink/bin/pip install splink polars
    python bench/bench_identity_lists.py --splink /tmp/splink/bin/python
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.data.identity import pairwise_scores, resolve, review_pairs  # noqa: E402

ORGS = ROOT.parent / "shared" / "data" / "dedupe_orgs" / "csv_example_input_with_true_ids.csv"
RESTAURANTS = ROOT / "tests" / "fixtures" / "identity" / "restaurants.csv"
PATSTAT = ROOT / "tests" / "fixtures" / "identity" / "patstat_orgs.csv"
SANCTIONS = ROOT / "tests" / "fixtures" / "identity" / "ofac_sdn_orgs.csv"
FORTUNE = ROOT.parent / "shared" / "data" / "fortune500" / "fortune500.csv"

# Splink as a user of it would set it up on these columns: Jaro-Winkler levels per field,
# term-frequency adjustments on the name, blocking on the name's first letters and on
# each other field, u by random sampling, m by EM on two blocking rules.
_SPLINK = r"""
import json, sys
import polars as pl
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
df = pl.read_csv(sys.argv[1], infer_schema=False)
fields = [c for c in df.columns if c != "unique_id"]
comparisons = [cl.JaroWinklerAtThresholds("name", [0.95, 0.88, 0.75]).configure(
    term_frequency_adjustments=True)]
comparisons += [cl.JaroWinklerAtThresholds(f, [0.92, 0.8]) for f in fields if f != "name"]
rules = [block_on("substr(name, 1, 4)")] + [block_on(f) for f in fields if f != "name"]
settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                           blocking_rules_to_generate_predictions=rules)
linker = Linker(DuckDBAPI().register(df.to_arrow()), settings, log_level=40)
linker.training.estimate_probability_two_random_records_match(
    [block_on("name")], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=0)
for rule in rules[:2]:
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    except Exception as exc:
        print("EM skipped:", type(exc).__name__, file=sys.stderr)
pred = linker.inference.predict(threshold_match_probability=0.01)
clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.5)
out = pl.from_arrow(clusters.as_duckdbpyrelation().select("unique_id, cluster_id").arrow())
out.write_csv(sys.argv[2])
"""


def _lists() -> list[tuple[str, str, pl.DataFrame, dict[str, str]]]:
    orgs = pl.read_csv(ORGS, infer_schema=False).rename({"Id": "record_id", "True Id": "entity"})
    rest = pl.read_csv(RESTAURANTS, infer_schema=False).rename(
        {"id": "record_id", "entity_id": "entity"}
    )
    pat = pl.read_csv(PATSTAT, infer_schema=False).rename(
        {"person_id": "record_id", "leuven_id": "entity"}
    )
    sdn = pl.read_csv(SANCTIONS, infer_schema=False).rename({"ent_num": "entity"})
    out = []
    for half, parity in (("tuning", 0), ("held-out", 1)):
        o = orgs.filter(pl.col("entity").cast(pl.Int64) % 2 == parity)
        r = rest.filter(pl.col("entity").cast(pl.Int64) % 2 == parity)
        p = pat.filter(pl.col("entity").cast(pl.Int64) % 2 == parity)
        s = sdn.filter(pl.col("entity").cast(pl.Int64) % 2 == parity)
        out += [
            ("names only: dedupe_orgs site names", half, o, {"name": "Site name"}),
            ("names only: restaurants", half, r, {"name": "name"}),
            ("names only: patstat applicants", half, p, {"name": "person_name"}),
            # The same, each distinct spelling once: an exact repeat is no question.
            (
                "names only: patstat distinct names",
                half,
                p.unique("person_name", keep="first", maintain_order=True),
                {"name": "person_name"},
            ),
            ("names only: sanctioned organisations", half, s, {"name": "name"}),
            (
                "name+address+city: restaurants",
                half,
                r,
                {"name": "name", "address": "address", "city": "city"},
            ),
            (
                "full record: dedupe_orgs",
                half,
                o,
                {"name": "Site name", "address": "Address", "zip": "Zip", "phone": "Phone"},
            ),
        ]
    for half, seed in (("tuning", 1), ("held-out", 2)):
        typos = _fortune_typos(seed)
        out.append(("names only: Fortune 500 + typos MADE HERE", half, typos, {"name": "name"}))
    for half, seed in (("tuning", 1), ("held-out", 2)):
        out.append(
            (
                "name + domain: Fortune 500 + typos MADE HERE",
                half,
                _with_websites(_fortune_typos(seed), seed),
                {"name": "name", "domain": "website"},
            )
        )
    return out


def _with_websites(typos: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Each record with its company's website as a CRM holds one: one record in ten
    without it; a second record's written otherwise (scheme, www., capitals, a page) seven
    times in ten and missing the other three."""
    rng = random.Random(seed * 7919)
    sites = [s.strip() for s in pl.read_csv(FORTUNE, infer_schema=False)["website"]]
    out = []
    for record_id, entity in typos.select("record_id", "entity").iter_rows():
        site = sites[int(entity)]
        if record_id.endswith("a"):
            out.append(None if rng.random() < 0.1 else site)
            continue
        if rng.random() < 0.3:
            out.append(None)
            continue
        host = site.split("//", 1)[-1].removeprefix("www.").rstrip("/")
        out.append(
            rng.choice(
                [host, f"https://{host}/", f"www.{host}".upper(), f"http://www.{host}/about-us"]
            )
        )
    return typos.with_columns(website=pl.Series(out, dtype=pl.String))


def _mistyped(word: str, rng: random.Random) -> str:
    """One letter dropped, swapped with the next, or replaced (words of four or more)."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    how = rng.random()
    if how < 1 / 3:
        return word[:i] + word[i + 1 :]
    if how < 2 / 3:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeiourstn") + word[i + 1 :]


def _fortune_typos(seed: int) -> pl.DataFrame:
    """Fortune 500 names, half of them twice: the second with one or more typos, a legal
    form, capitals, or "Holdings" added."""
    rng = random.Random(seed)
    names = [n.strip() for n in pl.read_csv(FORTUNE, infer_schema=False)["company_name"]]
    rows = []
    for i, name in enumerate(names):
        rows.append((f"{i}a", name, str(i)))
        if rng.random() >= 0.5:
            continue
        words, how = name.split(), rng.random()
        if how < 0.3:
            j = rng.randrange(len(words))
            words[j] = _mistyped(words[j], rng)
        elif how < 0.5:
            words.append(rng.choice(["Inc.", "Corp", "Corporation", "LLC", "Co.", "Incorporated"]))
        elif how < 0.65:
            words = [w.upper() for w in words]
        elif how < 0.8:
            words = [_mistyped(w, rng) for w in words]
        else:
            words.append("Holdings")
        rows.append((f"{i}b", " ".join(words), str(i)))
    return pl.DataFrame(rows, schema=["record_id", "name", "entity"], orient="row")


def _prefix(records: pl.DataFrame, name: str) -> pl.DataFrame:
    key = pl.col(name).str.to_lowercase().str.replace_all("[^a-z0-9]", "").str.slice(0, 6)
    return records.select("record_id", cluster_id=pl.coalesce(key, pl.col("record_id")))


def _cleaned(kind: str, col: pl.Expr) -> pl.Expr:
    """A field as a careful Splink user cleans it: lower case, punctuation to spaces; of a
    website, the host alone (the scheme, www. and the page say nothing)."""
    col = col.str.to_lowercase()
    if kind == "domain":
        col = col.str.replace(r"^[a-z]+://", "").str.replace(r"^www\.", "").str.replace(r"/.*$", "")
    return col.str.replace_all(r"[^a-z0-9 ]", " ").str.strip_chars()


def _splink(python: str, records: pl.DataFrame, fields: dict[str, str]) -> pl.DataFrame | None:
    cols = {"unique_id": pl.col("record_id")} | {
        k: _cleaned(k, pl.col(c)) for k, c in fields.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        records.select(**cols).write_csv(src)
        run = subprocess.run(
            [python, "-c", _SPLINK, str(src), str(dst)], capture_output=True, text=True
        )
        if run.returncode:  # on one field: EM cannot train, and prediction raises
            return None
        return pl.read_csv(dst, infer_schema=False).rename({"unique_id": "record_id"})


def _answered(
    records: pl.DataFrame, fields: dict[str, str], first, n: int, rounds: int = 4
) -> dict[str, float | int]:
    """F1 after ``n`` answers given in ``rounds`` rounds, each on the latest resolution."""
    entity = dict(records.select("record_id", "entity").iter_rows())
    truth = records.select("record_id", entity_id="entity")
    labels = pl.DataFrame(schema={"left_id": pl.String, "right_id": pl.String, "same": pl.Boolean})
    res = first
    for r in range(rounds):
        k = n * (r + 1) // rounds - n * r // rounds
        gcols = [f"g_{c.kind}" for c in res.comparisons]
        asked = review_pairs(res.pairs, gcols, k, labels)
        same = [entity[a] == entity[b] for a, b in asked.select("left_id", "right_id").iter_rows()]
        labels = pl.concat(
            [labels, asked.select("left_id", "right_id").with_columns(same=pl.Series(same))]
        )
        res = resolve(records, fields, labels=labels)
    return pairwise_scores(res.clusters, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splink", help="a Python interpreter that has splink installed")
    parser.add_argument("--json", action="store_true", help="one JSON line per list")
    parser.add_argument(
        "--answers", type=int, default=0, help="also our F1 after N answers (four rounds)"
    )
    parser.add_argument("--only", help="only the lists whose label holds this text")
    parser.add_argument(
        "--half",
        choices=("tuning", "held-out"),
        help="only this half of each list (while tuning: --half tuning, never held-out)",
    )
    args = parser.parse_args()
    print(
        f"{'list':38s} {'half':9s} {'recs':>5s}  {'ours F1':>7s} {'P':>5s} {'R':>5s} "
        f"{'s':>5s}  {'method':6s}  {'prefix':>6s}  {'splink':>6s} {'s':>5s}"
        + (f"  {'+' + str(args.answers) + ' answers':>11s}" if args.answers else "")
    )
    for label, half, records, fields in _lists():
        if (args.only and args.only not in label) or (args.half and half != args.half):
            continue
        truth = records.select("record_id", entity_id="entity")
        t = time.perf_counter()
        res = resolve(records, fields)
        ours_s = time.perf_counter() - t
        ours = pairwise_scores(res.clusters, truth)
        prefix = pairwise_scores(_prefix(records, fields["name"]), truth)
        taught = _answered(records, fields, res, args.answers) if args.answers else None
        splink_f1, splink_s = "-", "-"
        if args.splink:
            t = time.perf_counter()
            clusters = _splink(args.splink, records, fields)
            splink_s = f"{time.perf_counter() - t:.1f}"
            splink_f1 = "failed"
            if clusters is not None:
                splink_f1 = f"{pairwise_scores(clusters, truth)['f1']:.3f}"
        if args.json:
            print(
                json.dumps(
                    {
                        "list": label,
                        "half": half,
                        "ours": ours,
                        "seconds": ours_s,
                        "method": res.method,
                        "prefix": prefix,
                        "splink_f1": splink_f1,
                        "answers": args.answers,
                        "ours_after_answers": taught,
                    }
                )
            )
            continue
        print(
            f"{label:38s} {half:9s} {len(records):5d}  {ours['f1']:7.3f} "
            f"{ours['precision']:5.3f} {ours['recall']:5.3f} {ours_s:5.1f}  {res.method:6s}  "
            f"{prefix['f1']:6.3f}  {splink_f1:>6s} {splink_s:>5s}"
            + (f"  {taught['f1']:11.3f}" if taught else "")
        )


if __name__ == "__main__":
    main()
