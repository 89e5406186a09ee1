"""Account and contact merges against truth on generated companies, with their calibration.

For each seed: a small company (`revstack generate --scale small`, kept in ``--dir`` and
reused when there), its accounts and contacts resolved as the hygiene agent resolves
them (its fields and settings), and the merges it would propose: every record of a
cluster of two or more paired with the cluster's survivor (the agent's own choice),
at the probability of that pair, right when truth says the two are one entity. Pooled
over a seed group, with 95% Wilson intervals:

- pairwise precision and recall of the clusters (accounts, contacts);
- the account merges' calibration: the share right per match-probability band (a
  reviewer approving a batch of merges at 0.95-1.0 should find nearly all of them right,
  and more of them right than at 0.8-0.9);
- the merges whose names agree at no level, and how many of those the model is sure of
  (two companies at one address, docs/identity.md);
- the hierarchy: candidate pairs of accounts the CRM links parent and child, and how
  many of them ended in one cluster.

    python bench/bench_account_merges.py [--seeds 0 1 2 3] [--held-out 7 11 12]
        [--dir /tmp/companies] [--json] [--scale mid --seeds 7 --held-out]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.crm_hygiene._merge import (  # noqa: E402
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    _survivors,
)
from revstack.agents.engine import wilson  # noqa: E402
from revstack.data.generator import generate  # noqa: E402
from revstack.data.identity import pairwise_scores, resolve  # noqa: E402
from revstack.data.warehouse import Warehouse, frame, release_all  # noqa: E402

KINDS = ("accounts", "contacts")
BANDS = ((0.0, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.0001))

_ACCOUNTS = "SELECT account_id AS record_id, * EXCLUDE (account_id) FROM crm.accounts"
_CONTACTS = """
SELECT c.contact_id AS record_id, c.*, concat_ws(' ', c.first_name, c.last_name) AS full_name,
       coalesce(c.email, a.website) AS company_domain
FROM crm.contacts c LEFT JOIN crm.accounts a USING (account_id)
"""
_TRUTH = """
SELECT record_id, true_entity_id AS entity_id FROM truth.entities WHERE object_type = $k
"""


def _company(folder: Path, seed: int, scale: str) -> Path:
    path = folder / f"{scale}{seed}.duckdb"
    if not path.exists():
        generate(Warehouse(path), scale=scale, seed=seed)
        release_all()  # let go of the file before reading it
    return path


def _merges(res: Any, records: pl.DataFrame, truth: pl.DataFrame, kind: str) -> pl.DataFrame:
    """(probability, right) of every merge the agent would propose on a fresh company."""
    none = pl.DataFrame(schema={"record_id": pl.String, "entity_id": pl.String})
    info = _survivors(records, res.clusters, none, kind)
    todo = info.filter(pl.col("record_id") != pl.col("entity")).select(
        "record_id",
        left_id=pl.min_horizontal("record_id", "entity"),
        right_id=pl.max_horizontal("record_id", "entity"),
    )
    pairs = res.pairs.select("left_id", "right_id", "probability", "g_name")
    missing = todo.select("left_id", "right_id").join(pairs, on=["left_id", "right_id"], how="anti")
    if not missing.is_empty():  # linked through others: the pair itself is scored
        pairs = pl.concat([pairs, res.score(missing).select(pairs.columns)])
    t = truth.select("record_id", "entity_id")
    return (
        todo.join(pairs, on=["left_id", "right_id"], how="left")
        .join(t.rename({"record_id": "left_id", "entity_id": "l"}), on="left_id")
        .join(t.rename({"record_id": "right_id", "entity_id": "r"}), on="right_id")
        .select("probability", right=pl.col("l") == pl.col("r"), names_differ=pl.col("g_name") == 0)
    )


def _hierarchy(res: Any, records: pl.DataFrame) -> dict[str, int]:
    """Candidate pairs the CRM links parent and child, and those put in one cluster."""
    parent = records.select("record_id", parent=pl.col("parent_account_id").cast(pl.String))
    linked = res.pairs.join(parent.rename({"record_id": "left_id", "parent": "lp"}), on="left_id")
    linked = linked.join(parent.rename({"record_id": "right_id", "parent": "rp"}), on="right_id")
    linked = linked.filter(
        (pl.col("lp") == pl.col("right_id")) | (pl.col("rp") == pl.col("left_id"))
    )
    c = res.clusters.select("record_id", "cluster_id")
    together = linked.join(c.rename({"record_id": "left_id", "cluster_id": "lc"}), on="left_id")
    together = together.join(c.rename({"record_id": "right_id", "cluster_id": "rc"}), on="right_id")
    return {
        "parent_child_candidates": len(linked),
        "parent_child_at_0.5": linked.filter(pl.col("probability") >= 0.5).height,
        "parent_child_clustered": together.filter(pl.col("lc") == pl.col("rc")).height,
    }


def _seed(folder: Path, seed: int, scale: str) -> dict[str, Any]:
    con = duckdb.connect(str(_company(folder, seed, scale)), read_only=True)
    try:
        accounts, contacts = con.sql(_ACCOUNTS).pl(), con.sql(_CONTACTS).pl()
        ta, tc = (frame(con, _TRUTH, {"k": k}) for k in KINDS)
    finally:
        con.close()
    t = time.perf_counter()
    together = (("address", "zip", "phone"),)  # as the agent resolves accounts
    ra = resolve(accounts, ACCOUNT_FIELDS, move_together=together, twins=False)
    seconds = time.perf_counter() - t
    rc = resolve(contacts, CONTACT_FIELDS, name_type="person", twins=False)
    return {
        "seed": seed,
        "accounts": pairwise_scores(ra.clusters, ta),
        "contacts": pairwise_scores(rc.clusters, tc),
        "merges": _merges(ra, accounts, ta, "accounts").to_dicts(),
        "hierarchy": _hierarchy(ra, accounts),
        "account_seconds": round(seconds, 2),
    }


def _share(k: int, n: int) -> str:
    ci = wilson(k, n)
    if ci is None:
        return "-"
    return f"{k / n:.1%} of {n:,} [{ci[0]:.1%}-{ci[1]:.1%}]"


def _report(label: str, runs: list[dict[str, Any]]) -> None:
    print(f"\n{label}: seeds {' '.join(str(r['seed']) for r in runs)}")
    for kind in ("accounts", "contacts"):
        correct = sum(r[kind]["correct_pairs"] for r in runs)
        pred = sum(r[kind]["predicted_pairs"] for r in runs)
        true = sum(r[kind]["true_pairs"] for r in runs)
        print(f"  {kind} pairs  precision {_share(correct, pred)}  recall {_share(correct, true)}")
    merges = pl.DataFrame([m for r in runs for m in r["merges"]])
    print(f"  account merges right: {_share(int(merges['right'].sum()), len(merges))}")
    for lo, hi in BANDS:
        band = merges.filter((pl.col("probability") >= lo) & (pl.col("probability") < hi))
        print(
            f"    probability {lo:.2f}-{min(hi, 1.0):.2f}: "
            f"{_share(int(band['right'].sum()), len(band))}"
        )
    # Two companies in one building (docs/identity.md): names that agree at no level.
    odd = merges.filter(pl.col("names_differ"))
    sure = odd.filter(pl.col("probability") >= 0.95)
    print(
        f"  merges whose names agree at no level: {_share(int(odd['right'].sum()), len(odd))};"
        f" at 0.95 or more: {_share(int(sure['right'].sum()), len(sure))}"
    )
    h = {k: sum(r["hierarchy"][k] for r in runs) for k in runs[0]["hierarchy"]}
    print(f"  CRM parent/child candidate pairs: {h}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--held-out", type=int, nargs="*", default=[7, 11, 12])
    parser.add_argument(
        "--dir", help="where the generated companies are kept (default: a temp dir)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per seed as well")
    parser.add_argument(
        "--scale", choices=["small", "mid"], default="small", help="mid: one seed at a time"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        groups = {
            ("tuning" if args.scale == "small" else args.scale): [
                _seed(folder, s, args.scale) for s in args.seeds
            ],
            "held out": [_seed(folder, s, args.scale) for s in args.held_out],
        }
    if args.json:
        for runs in groups.values():
            for r in runs:
                print(json.dumps({k: v for k, v in r.items() if k != "merges"}))
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    for label, runs in groups.items():
        if runs:
            _report(label, runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"\n{time.perf_counter() - start:.0f} s in all, peak RSS {peak:.2f} GB")


if __name__ == "__main__":
    main()
