"""Scales, dates and the rates of everything the generator injects (tests read these)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["Scale", "SCALES", "RATES", "DEFAULT_AS_OF", "REGIONS", "INDUSTRIES"]

DEFAULT_AS_OF = dt.date(2026, 10, 1)


@dataclass(frozen=True)
class Scale:
    accounts: int
    contacts_per_account: float
    opportunities: int
    reps: int
    activity_per_week: float  # two-way-ish touches per week of a healthy deal
    years: float = 3.5


SCALES: dict[str, Scale] = {
    "small": Scale(
        accounts=1_000,
        contacts_per_account=5.0,
        opportunities=2_000,
        reps=12,
        activity_per_week=1.9,
    ),
    "mid": Scale(
        accounts=50_000,
        contacts_per_account=5.0,
        opportunities=100_000,
        reps=240,
        activity_per_week=1.9,
    ),
    "large": Scale(
        accounts=1_000_000,
        contacts_per_account=5.0,
        opportunities=2_000_000,
        reps=3_000,
        activity_per_week=1.15,
    ),
}

REGIONS = {"NA": 0.45, "EMEA": 0.30, "APAC": 0.15, "LATAM": 0.10}
INDUSTRIES = [
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Energy",
    "Telecommunications", "Education", "Logistics", "Media", "Insurance", "Biotech",
]  # fmt: skip


@dataclass(frozen=True)
class Rates:
    duplicate_accounts: float = 0.12  # share of accounts that are duplicates of another
    duplicate_contacts: float = 0.07
    wrong_firmographics: float = 0.08  # accounts whose CRM values are stale or wrong
    provider_coverage: float = 0.85
    provider_error: float = 0.10  # share of covered fields the provider gets wrong
    stage_violations: float = 0.05  # share of open deals in a stage they do not qualify for
    phantom_share_of_open: float = 0.04
    missing: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "accounts": {
                "website": 0.05,
                "industry": 0.10,
                "employees": 0.12,
                "country": 0.04,
                "owner_id": 0.03,
            },
            "contacts": {"email": 0.08, "title": 0.15, "account_id": 0.02, "last_name": 0.01},
            "opportunities": {
                "amount": 0.04,
                "close_date": 0.02,
                "forecast_category": 0.03,
                "owner_id": 0.01,
            },
        }
    )


RATES = Rates()
