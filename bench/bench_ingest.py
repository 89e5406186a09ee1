"""Time imports: the three real datasets, and a synthetic Salesforce export scaled up from
the sample's shape (deterministic by seed). Prints rows per second.

    python bench/bench_ingest.py [--opportunities 200000]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.data.ingest import ingest  # noqa: E402
from revstack.data.warehouse import Warehouse  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
]


def synthetic_salesforce(target: Path, n_opps: int, seed: int = 7) -> int:
    """Account/Opportunity/OpportunityHistory CSVs with the sample's headers."""
    rng = np.random.default_rng(seed)
    target.mkdir(parents=True)
    n_acc = max(n_opps // 4, 1)
    for name in ("Account.csv", "Opportunity.csv", "OpportunityHistory.csv"):
        header = next(csv.reader((SHARED / "salesforce_sample" / name).open(encoding="utf-8")))
        with (target / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, quoting=csv.QUOTE_ALL)
            w.writerow(header)
            rows = (
                n_acc
                if name == "Account.csv"
                else n_opps
                if name == "Opportunity.csv"
                else 2 * n_opps
            )
            for i in range(rows):
                r = dict.fromkeys(header, "")
                if name == "Account.csv":
                    r.update(
                        Id=f"001A{i:012d}",
                        Name=f"Company {i} Inc",
                        Website=f"company{i}.example",
                        NumberOfEmployees=str(int(rng.integers(5, 5000))),
                        AnnualRevenue=str(int(rng.integers(1, 900)) * 100000),
                        CreatedDate="2024-01-02 10:00:00",
                        LastModifiedDate="2025-06-01 10:00:00",
                        OwnerId="005A1",
                    )
                elif name == "Opportunity.csv":
                    r.update(
                        Id=f"006A{i:012d}",
                        AccountId=f"001A{int(rng.integers(0, n_acc)):012d}",
                        Name=f"Deal {i}",
                        StageName=STAGES[int(rng.integers(0, 7))],
                        Amount=str(int(rng.integers(1, 500)) * 100),
                        CloseDate="2025-09-30 00:00:00",
                        Probability="20",
                        ForecastCategoryName="Pipeline",
                        CreatedDate="2025-01-02 10:00:00",
                        LastModifiedDate="2025-06-01 10:00:00",
                        OwnerId="005A1",
                    )
                else:
                    r.update(
                        Id=f"008A{i:012d}",
                        OpportunityId=f"006A{i // 2:012d}",
                        CreatedDate="2025-03-01 10:00:00",
                        StageName=STAGES[i % 5],
                        Amount="1000",
                        CloseDate="2025-09-30 00:00:00",
                        Probability="20",
                        ForecastCategory="Pipeline",
                    )
                w.writerow([r[h] for h in header])
    return n_acc + 3 * n_opps


def timed(label: str, fmt: str, directory: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp) / "bench.duckdb")
        t = time.perf_counter()
        summary = ingest(wh, fmt, directory)
        seconds = time.perf_counter() - t
    rows = sum(summary["rows"].values())
    print(f"{label}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--opportunities", type=int, default=200_000)
    args = parser.parse_args()
    timed("maven_crm (real)", "maven", SHARED / "maven_crm")
    timed("salesforce_sample (real)", "salesforce", SHARED / "salesforce_sample")
    timed("hubspot fixture", "hubspot", ROOT / "tests" / "fixtures" / "hubspot")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        synthetic_salesforce(Path(tmp) / "sf", args.opportunities)
        print(
            f"(wrote a synthetic Salesforce export with {args.opportunities:,} opportunities in {time.perf_counter() - t:.1f} s)"
        )
        timed(
            f"synthetic salesforce, {args.opportunities:,} opportunities",
            "salesforce",
            Path(tmp) / "sf",
        )
