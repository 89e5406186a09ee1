"""revstack's matcher beside Splink, in one run, on the same inputs.

Inputs: the real hand-labelled organisations (../shared/data/dedupe_orgs), the generated
mid company's accounts and contacts (seed 1), and with --million one million generated
contacts. Both tools get the SAME prepared columns (our normalisation: legal forms,
nicknames, domains, phone digits) and the SAME blocking rules, so what is compared is
the model and the clustering: comparison levels, parameter estimation (u by random
sampling, m by EM per blocking rule) and how pairs become clusters (Splink: connected
components at 0.5; ours: average linkage at 0.5). Printed per input: pairwise precision,
recall, F1 and wall time of each, and the ratios ours / Splink.

    pip install -e '.[bench]'     # Splink is an optional benchmark dependency
    python bench/bench_dedupe.py [--million] [--skip-splink-million]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.data.identity import pairwise_scores, prepare, resolve  # noqa: E402
from revstack.data.identity._compare import blocking_rules  # noqa: E402
from revstack.data.identity._resolve import Resolution  # noqa: E402

ORGS = ROOT.parent / "shared" / "data" / "dedupe_orgs" / "csv_example_input_with_true_ids.csv"
ACCOUNT_FIELDS = {
    "name": "name",
    "domain": "website",
    "phone": "phone",
    "address": "street",
    "city": "city",
    "zip": "postal_code",
}
CONTACT_FIELDS = {
    "name": "full_name",
    "email": "email",
    "phone": "phone",
    "domain": "company_domain",
}


def _splink(records: pl.DataFrame, fields: dict[str, str], name_type: str) -> pl.DataFrame:
    """Splink 4/5 with DuckDB on our prepared columns and our blocking rules."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    prepared = (
        prepare(records, fields, name_type=name_type)
        .unique("record_id")
        .rename({"record_id": "unique_id"})
    )
    columns = set(prepared.columns)
    comparisons = []
    if "name_sorted" in columns:
        comparisons.append(cl.JaroWinklerAtThresholds("name", [0.95, 0.88, 0.75]))
    elif "name_given" in columns:
        comparisons.append(cl.JaroWinklerAtThresholds("name", [0.95, 0.9, 0.85]))
    for kind, thresholds in (("address", [0.92, 0.75]), ("city", [0.9])):
        if kind in columns:
            comparisons.append(cl.JaroWinklerAtThresholds(kind, thresholds))
    for kind in ("zip", "phone", "email", "domain"):
        if kind in columns:
            comparisons.append(cl.ExactMatch(kind))
    rules = [r.key for r in blocking_rules(columns)]
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(_expr(r)) for r in rules],
        retain_matching_columns=False,
    )
    linker = Linker(db.register(prepared.to_arrow()), settings, log_level=40)
    first = [c.key for c in blocking_rules(columns)][0]
    linker.training.estimate_probability_two_random_records_match(
        [block_on(_expr(first))], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=0)
    trained = 0
    for rule in rules[:4]:  # the first rules, as a Splink user trains on a few blocks
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(_expr(rule))
            )
            trained += 1
        except Exception as exc:
            print(f"    splink: EM on {rule!r} skipped ({type(exc).__name__})")
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.5)
    out = pl.from_arrow(clusters.as_duckdbpyrelation().select("unique_id, cluster_id").arrow())
    return out.rename({"unique_id": "record_id"}).cast(pl.String)  # type: ignore[union-attr]


def _expr(rule: str):
    from splink import ColumnExpression

    return ColumnExpression(rule) if not rule.isidentifier() else rule


def _compare(
    label: str,
    records: pl.DataFrame,
    truth: pl.DataFrame,
    fields: dict[str, str],
    name_type: str,
    splink: bool = True,
    together: tuple = (),
) -> None:
    t = time.perf_counter()
    ours: Resolution = resolve(records, fields, name_type=name_type, move_together=together)
    ours_s = time.perf_counter() - t
    s_ours = pairwise_scores(ours.clusters, truth)
    print(f"\n{label}: {len(records):,} records, {s_ours['true_pairs']:,} true pairs")
    print(
        f"  revstack  P {s_ours['precision']:.4f}  R {s_ours['recall']:.4f}  F1 {s_ours['f1']:.4f}  "
        f"{ours_s:7.1f} s  ({len(ours.pairs):,} pairs; {ours.timings})"
    )
    if not splink:
        print("  splink    skipped")
        return
    t = time.perf_counter()
    try:
        theirs = _splink(records, fields, name_type)
    except ImportError:
        print("  splink    not installed: pip install -e '.[bench]'")
        return
    splink_s = time.perf_counter() - t
    s_splink = pairwise_scores(theirs, truth)
    print(
        f"  splink    P {s_splink['precision']:.4f}  R {s_splink['recall']:.4f}  F1 {s_splink['f1']:.4f}  {splink_s:7.1f} s"
    )
    ratio_f1 = s_ours["f1"] / s_splink["f1"] if s_splink["f1"] else float("inf")
    print(
        f"  ratio     F1 ours/splink {ratio_f1:.3f}   wall time ours/splink {ours_s / splink_s:.2f}"
    )


def _generated(scale_name: str, seed: int, scale=None) -> dict[str, pl.DataFrame]:
    from revstack.data.generator import _generate
    from revstack.data.generator._config import SCALES

    if scale is not None:
        SCALES[scale_name] = scale
    tables = _generate.build_tables(scale_name, seed, dt.date(2026, 10, 1))
    accounts = tables["crm.accounts"].rename({"account_id": "record_id"})
    contacts = (
        tables["crm.contacts"]
        .join(
            tables["crm.accounts"].select("account_id", account_website="website"),
            on="account_id",
            how="left",
        )
        .with_columns(
            full_name=pl.concat_str(
                [pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True
            ),
            company_domain=pl.coalesce("email", "account_website"),
        )
        .rename({"contact_id": "record_id"})
    )
    entities = tables["truth.entities"].rename({"true_entity_id": "entity_id"})
    return {
        "accounts": accounts,
        "contacts": contacts,
        "truth_accounts": entities.filter(pl.col("object_type") == "accounts"),
        "truth_contacts": entities.filter(pl.col("object_type") == "contacts"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--million", action="store_true", help="also one million generated contacts"
    )
    parser.add_argument(
        "--skip-splink-million", action="store_true", help="time only ours on the million"
    )
    parser.add_argument("--skip-mid", action="store_true")
    args = parser.parse_args()

    orgs = pl.read_csv(ORGS, infer_schema=False).rename({"Id": "record_id"})
    _compare(
        "dedupe_orgs (real, hand-labelled)",
        orgs,
        orgs.select("record_id", entity_id="True Id"),
        {"name": "Site name", "address": "Address", "zip": "Zip", "phone": "Phone"},
        "org",
    )
    if not args.skip_mid:
        mid = _generated("mid", 1)
        # As the hygiene agent runs it: street, postcode and phone move together.
        _compare(
            "generated mid accounts (seed 1)",
            mid["accounts"],
            mid["truth_accounts"],
            ACCOUNT_FIELDS,
            "org",
            together=(("address", "zip", "phone"),),
        )
        _compare(
            "generated mid contacts (seed 1)",
            mid["contacts"],
            mid["truth_contacts"],
            CONTACT_FIELDS,
            "person",
        )
    if args.million:
        from revstack.data.generator._config import Scale

        big = _generated(
            "million",
            2,
            Scale(
                accounts=200_000,
                contacts_per_account=5.0,
                opportunities=200_000,
                reps=800,
                activities_per_deal_week=0.3,
            ),
        )
        _compare(
            f"{len(big['contacts']):,} generated contacts",
            big["contacts"],
            big["truth_contacts"],
            CONTACT_FIELDS,
            "person",
            splink=not args.skip_splink_million,
        )


if __name__ == "__main__":
    main()
