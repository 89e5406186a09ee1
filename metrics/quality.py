"""The data-quality audit: the day-1 baseline of the CRM's data, stored as snapshots.

``audit`` measures completeness of required fields, duplicate rates, definition
violations, stale and phantom deals, departed champions and firmographic conflicts
with the enrichment provider, then rolls them into one 0-100 score. Where the
warehouse holds a generated company, every figure is set beside what the generator
really injected (truth.defects), so the audit itself is measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from revstack.contracts import Definitions, required_fields_sql, stage_violations_sql
from revstack.data.clock import now_utc
from revstack.data.inventory import data_as_of
from revstack.data.normalize import domain_from_website
from revstack.data.snapshots import save_quality_snapshot
from revstack.data.warehouse import Warehouse, frame, registered, scalar
from revstack.metrics._duplicates import account_duplicates, contact_duplicates

__all__ = ["QualityReport", "audit", "measure", "render_report", "SCORE_WEIGHTS"]

# How the single score weighs each dimension (documented in docs/audit.md).
SCORE_WEIGHTS = {"completeness": 0.35, "uniqueness": 0.25, "validity": 0.20, "freshness": 0.20}

_COUNT = {
    "accounts": "SELECT count(*) FROM crm.accounts",
    "contacts": "SELECT count(*) FROM crm.contacts",
    "opportunities": "SELECT count(*) FROM crm.opportunities",
}
_OPEN_BY_STAGE = """
SELECT stage, count(*) AS n FROM crm.opportunities WHERE NOT is_closed GROUP BY stage
"""

# Last completed activity of each open deal, any direction and two-way only.
_OPEN_DEALS = """
SELECT o.opportunity_id, o.stage, o.close_date, o.created_at, s.quiet_days,
       max(a.occurred_at) AS last_activity,
       max(a.occurred_at) FILTER (WHERE a.direction IN ('inbound', 'two_way')) AS last_two_way
FROM crm.opportunities o
LEFT JOIN stage_quiet s ON s.stage = o.stage
LEFT JOIN crm.activities a
       ON a.opportunity_id = o.opportunity_id AND a.status = 'completed'
      AND a.occurred_at <= $as_of
WHERE NOT o.is_closed
GROUP BY ALL
"""

_DEPARTED_CHAMPIONS = """
SELECT DISTINCT o.opportunity_id, c.contact_id
FROM crm.opportunities o
JOIN crm.opportunity_contacts oc ON oc.opportunity_id = o.opportunity_id AND oc.role = 'champion'
JOIN crm.contacts c ON c.contact_id = oc.contact_id
WHERE NOT o.is_closed AND (NOT c.is_active OR c.email_bounced)
"""

_ACCOUNTS_FIRMO = """
SELECT account_id, website, industry, employees, annual_revenue, country FROM crm.accounts
"""
_ENRICHMENT = """
SELECT domain, industry AS p_industry, employees AS p_employees,
       annual_revenue AS p_annual_revenue, country AS p_country
FROM ref.enrichment
QUALIFY row_number() OVER (PARTITION BY domain ORDER BY as_of DESC, provider) = 1
"""

_TRUTH_DEFECTS = "SELECT defect_class, object_type, record_id, field FROM truth.defects"


@dataclass
class QualityReport:
    """One audit: every figure, the score, what was found, and truth where known."""

    taken_at: dt.datetime
    as_of: dt.datetime | None
    score: float
    dimensions: dict[str, float]
    metrics: pl.DataFrame  # check_kind, object_type, item, numerator, denominator, value
    found: dict[str, int]  # defect class -> records flagged
    truth: dict[str, dict[str, int]] | None = None  # class -> {injected, detected}
    snapshot_id: int | None = None
    evidence: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "taken_at": self.taken_at,
            "as_of": self.as_of,
            "score": round(self.score, 2),
            "dimensions": {k: round(v, 4) for k, v in self.dimensions.items()},
            "found": self.found,
            "truth": self.truth,
            "metrics": self.metrics.to_dicts(),
        }


def _row(kind: str, obj: str, item: str, num: int, den: int) -> dict[str, Any]:
    return {
        "check_kind": kind,
        "object_type": obj,
        "item": item,
        "numerator": int(num),
        "denominator": int(den),
        "value": (num / den) if den else None,
    }


def _completeness(con, definitions: Definitions, totals: dict[str, int]):
    rows, missing_frames = [], {}
    for obj, fields in definitions.required_fields.items():
        missing = frame(con, required_fields_sql(definitions, obj))
        missing_frames[obj] = missing
        counts = dict(missing.group_by("field").len().iter_rows())
        for f in fields:
            present = totals[obj] - counts.get(f, 0)
            rows.append(_row("completeness", obj, f, present, totals[obj]))
    return rows, missing_frames


def _definitions(con, definitions: Definitions, as_of: dt.datetime):
    violations = frame(con, stage_violations_sql(definitions), {"as_of": as_of})
    open_by_stage = dict(con.execute(_OPEN_BY_STAGE).fetchall())
    bad_by_stage = dict(
        violations.select("opportunity_id", "stage").unique().group_by("stage").len().iter_rows()
    )
    rows = [
        _row("definition", "opportunities", stage, bad_by_stage.get(stage, 0), n)
        for stage, n in sorted(open_by_stage.items())
    ]
    return rows, violations


def _freshness(con, definitions: Definitions, as_of: dt.datetime):
    quiet = pl.DataFrame(
        {
            "stage": [s.key for s in definitions.stages],
            "quiet_days": [s.quiet_days or 0 for s in definitions.stages],
        }
    )
    with registered(con, "stage_quiet", quiet):
        deals = frame(con, _OPEN_DEALS, {"as_of": as_of})
    as_of_lit = pl.lit(as_of)
    deals = deals.with_columns(
        days_since_any=(as_of_lit - pl.coalesce("last_activity", "created_at")).dt.total_days(),
        days_since_two_way=(as_of_lit - pl.coalesce("last_two_way", "created_at")).dt.total_days(),
        days_past_close=(as_of_lit.dt.date() - pl.col("close_date")).dt.total_days(),
    )
    ph = definitions.phantom
    stale = deals.filter(pl.col("days_since_any") > definitions.stale_days)
    phantom = deals.filter(
        (pl.col("days_past_close") > ph.days_past_close)
        & (pl.col("days_since_two_way") > pl.col("quiet_days") * ph.quiet_multiple)
    )
    n = len(deals)
    rows = [
        _row(
            "stale", "opportunities", f"no activity in {definitions.stale_days} days", len(stale), n
        ),
        _row("phantom", "opportunities", "close date long past and quiet", len(phantom), n),
    ]
    return rows, stale, phantom


def _firmographic_conflicts(con) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    accounts = frame(con, _ACCOUNTS_FIRMO).with_columns(
        domain=domain_from_website(pl.col("website"))
    )
    provider = frame(con, _ENRICHMENT)
    joined = accounts.join(provider, on="domain", how="inner")

    def rel_diff(a: str, b: str) -> pl.Expr:
        return (pl.col(a).cast(pl.Float64) - pl.col(b).cast(pl.Float64)).abs() / pl.max_horizontal(
            pl.col(a).cast(pl.Float64).abs(), pl.col(b).cast(pl.Float64).abs(), pl.lit(1.0)
        )

    checks = {
        "industry": pl.col("industry").str.to_lowercase()
        != pl.col("p_industry").str.to_lowercase(),
        "country": pl.col("country").str.to_lowercase() != pl.col("p_country").str.to_lowercase(),
        "employees": rel_diff("employees", "p_employees") > 0.25,
        "annual_revenue": rel_diff("annual_revenue", "p_annual_revenue") > 0.25,
    }
    flagged = joined.with_columns(**{f"c_{k}": expr.fill_null(False) for k, expr in checks.items()})
    rows = [
        _row("firmographic_conflict", "accounts", k, int(flagged[f"c_{k}"].sum()), len(joined))
        for k in checks
    ]
    conflicts = flagged.filter(pl.any_horizontal([f"c_{k}" for k in checks])).select(
        "account_id", *[f"c_{k}" for k in checks]
    )
    return rows, conflicts


def measure(con: duckdb.DuckDBPyConnection, definitions: Definitions) -> QualityReport:
    """Measure data quality without storing anything."""
    taken_at = now_utc()
    as_of = data_as_of(con) or taken_at
    totals = {obj: int(scalar(con, sql)) for obj, sql in _COUNT.items()}

    rows, missing = _completeness(con, definitions, totals)
    dup_rows, dup_found = [], {}
    for obj, finder in (("accounts", account_duplicates), ("contacts", contact_duplicates)):
        d = finder(con)
        exact_redundant = len(d["exact"]) - d["exact"]["group"].n_unique() if len(d["exact"]) else 0
        dup_rows.append(
            _row("duplicates_exact", obj, "redundant records", exact_redundant, totals[obj])
        )
        dup_rows.append(
            _row("duplicates_suspected", obj, "records", len(d["suspected"]), totals[obj])
        )
        dup_found[obj] = pl.concat([d["exact"]["record_id"], d["suspected"]["record_id"]]).unique()
    def_rows, violations = _definitions(con, definitions, as_of)
    fresh_rows, stale, phantom = _freshness(con, definitions, as_of)
    champions = frame(con, _DEPARTED_CHAMPIONS)
    n_open = sum(r["denominator"] for r in def_rows)
    champ_rows = [
        _row(
            "departed_champion",
            "opportunities",
            "champion inactive or bounced",
            champions["opportunity_id"].n_unique(),
            n_open,
        )
    ]
    firmo_rows, conflicts = _firmographic_conflicts(con)

    metrics = pl.DataFrame(
        rows + dup_rows + def_rows + fresh_rows + champ_rows + firmo_rows,
        schema={
            "check_kind": pl.String,
            "object_type": pl.String,
            "item": pl.String,
            "numerator": pl.Int64,
            "denominator": pl.Int64,
            "value": pl.Float64,
        },
    )
    dims = _dimensions(metrics, totals, n_open)
    score = 100.0 * sum(SCORE_WEIGHTS[k] * v for k, v in dims.items())
    evidence = {
        "missing_accounts": missing.get("accounts", pl.DataFrame()),
        "missing_contacts": missing.get("contacts", pl.DataFrame()),
        "missing_opportunities": missing.get("opportunities", pl.DataFrame()),
        "duplicate_accounts": dup_found["accounts"].to_frame(),
        "duplicate_contacts": dup_found["contacts"].to_frame(),
        "stage_violations": violations,
        "stale": stale,
        "phantom": phantom,
        "departed_champions": champions,
        "firmographic_conflicts": conflicts,
    }
    found = {
        "missing_required_field": sum(len(f) for f in missing.values()),
        "duplicate_account": len(dup_found["accounts"]),
        "duplicate_contact": len(dup_found["contacts"]),
        "stage_violation": violations["opportunity_id"].n_unique(),
        "stale_deal": len(stale),
        "phantom_deal": len(phantom),
        "departed_champion": champions["opportunity_id"].n_unique(),
        "firmographic_conflict": len(conflicts),
    }
    report = QualityReport(taken_at, as_of, score, dims, metrics, found, evidence=evidence)
    report.truth = _against_truth(con, report)
    return report


def _dimensions(metrics: pl.DataFrame, totals: dict[str, int], n_open: int) -> dict[str, float]:
    def mean_value(kind: str) -> float:
        part = metrics.filter(pl.col("check_kind") == kind)
        return (
            float(part["value"].mean()) if len(part) and part["value"].mean() is not None else 1.0
        )

    def share(kind: str) -> float:
        part = metrics.filter(pl.col("check_kind") == kind)
        den = int(part["denominator"].sum())
        return float(part["numerator"].sum()) / den if den else 0.0

    dup = metrics.filter(pl.col("check_kind").str.starts_with("duplicates"))
    dup_den = sum(totals[o] for o in ("accounts", "contacts"))
    return {
        "completeness": mean_value("completeness"),
        "uniqueness": 1.0 - (float(dup["numerator"].sum()) / dup_den if dup_den else 0.0),
        "validity": 1.0 - share("definition"),
        "freshness": 1.0
        - (
            float(
                metrics.filter(pl.col("check_kind").is_in(["stale", "phantom"]))["numerator"].sum()
            )
            / n_open
            if n_open
            else 0.0
        ),
    }


# Which audit evidence can detect each defect class the generator injects, and by
# which id column; a truth record counts as detected if it is in that evidence.
_DETECTORS: dict[str, tuple[str, str]] = {
    "duplicate_account": ("duplicate_accounts", "record_id"),
    "duplicate_contact": ("duplicate_contacts", "record_id"),
    "stage_violation": ("stage_violations", "opportunity_id"),
    "phantom_deal": ("phantom", "opportunity_id"),
    "wrong_firmographics": ("firmographic_conflicts", "account_id"),
    "provider_error": ("firmographic_conflicts", "account_id"),
}


def _against_truth(con, report: QualityReport) -> dict[str, dict[str, int]] | None:
    truth = frame(con, _TRUTH_DEFECTS)
    if truth.is_empty():
        return None
    out: dict[str, dict[str, int]] = {}
    for cls, part in truth.group_by("defect_class", maintain_order=True):
        cls = cls[0]
        injected = part.select("record_id", "field").unique()
        if cls == "missing_required_field":
            found = pl.concat(
                [
                    report.evidence[f"missing_{o}"]
                    for o in ("accounts", "contacts", "opportunities")
                    if not report.evidence[f"missing_{o}"].is_empty()
                ]
            ).select("record_id", "field")
            detected = injected.join(found, on=["record_id", "field"], how="semi")
        elif cls == "departed_champion":
            ch = report.evidence["departed_champions"]
            ids = pl.concat([ch["opportunity_id"], ch["contact_id"]]).unique()
            detected = injected.filter(pl.col("record_id").is_in(ids.implode()))
        elif cls in _DETECTORS:
            key, col = _DETECTORS[cls]
            ids = report.evidence[key][col]
            detected = injected.filter(pl.col("record_id").is_in(ids.implode()))
        else:
            detected = injected.clear()
        out[cls] = {"injected": len(injected), "detected": len(detected)}
    return out


def audit(wh: Warehouse, definitions: Definitions, *, store: bool = True) -> QualityReport:
    """Measure data quality and (by default) store it as a snapshot in ops."""
    with wh.connect() as con:
        report = measure(con, definitions)
    if store:
        with wh.connect() as con:
            report.snapshot_id = save_quality_snapshot(
                con,
                taken_at=report.taken_at,
                as_of=report.as_of,
                score=report.score,
                summary={
                    "dimensions": report.dimensions,
                    "found": report.found,
                    "truth": report.truth,
                },
                metrics=report.metrics,
            )
    return report


def render_report(report: QualityReport, console: Any) -> None:
    """Print the audit for a person (rich console)."""
    from rich.table import Table

    console.print(
        f"data quality score [bold]{report.score:.1f}[/bold] / 100 (as of {report.as_of:%Y-%m-%d})"
        if report.as_of
        else f"data quality score {report.score:.1f}"
    )
    console.print("  " + "  ".join(f"{k} {v:.1%}" for k, v in report.dimensions.items()))
    table = Table("check", "object", "item", "count", "of", "rate", title="figures")
    for r in report.metrics.iter_rows(named=True):
        rate = "-" if r["value"] is None else f"{r['value']:.1%}"
        table.add_row(
            r["check_kind"],
            r["object_type"],
            r["item"],
            f"{r['numerator']:,}",
            f"{r['denominator']:,}",
            rate,
        )
    console.print(table)
    found = Table("defect class", "flagged", "injected (truth)", "detected", title="defects found")
    truth = report.truth or {}
    for cls in sorted(set(report.found) | set(truth)):
        t = truth.get(cls, {})
        found.add_row(
            cls,
            f"{report.found[cls]:,}" if cls in report.found else "-",
            f"{t['injected']:,}" if t else "-",
            f"{t['detected']:,} ({t['detected'] / t['injected']:.0%})"
            if t and t["injected"]
            else "-",
        )
    console.print(found)
    if report.snapshot_id is not None:
        console.print(f"stored as snapshot {report.snapshot_id}")
