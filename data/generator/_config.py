"""Scales, dates and every rate the generator injects, in one place (tests read them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["Scale", "SCALES", "Rates", "RATES", "DEFAULT_AS_OF", "definitions", "stage_table"]

# The data's "today" when the caller gives none: fixed, so a seed always means one company.
DEFAULT_AS_OF = dt.date(2026, 10, 1)


@dataclass(frozen=True)
class Scale:
    """How big a company is. History reaches back `years` before as-of."""

    accounts: int
    contacts_per_account: float
    opportunities: int
    reps: int
    activities_per_deal_week: float  # logged touches per week of an open deal
    years: float = 4.0


SCALES: dict[str, Scale] = {
    "small": Scale(
        accounts=1_000,
        contacts_per_account=5.0,
        opportunities=2_000,
        reps=18,
        activities_per_deal_week=1.3,
    ),
    "mid": Scale(
        accounts=50_000,
        contacts_per_account=5.0,
        opportunities=100_000,
        reps=240,
        activities_per_deal_week=1.3,
    ),
    "large": Scale(
        accounts=1_000_000,
        contacts_per_account=5.0,
        opportunities=2_000_000,
        reps=3_000,
        activities_per_deal_week=0.75,
    ),
}


@dataclass(frozen=True)
class Rates:
    """Rates of the defects injected into the CRM (each instance is a truth.defects row)."""

    duplicate_accounts: float = 0.12  # share of account records that duplicate another
    duplicate_contacts: float = 0.15  # share of contact records that duplicate another
    wrong_firmographics: float = 0.08  # account records with one stale or wrong value
    provider_coverage: float = 0.85  # share of true companies the vendor knows
    # Share of the vendor's covered values that are wrong or stale, per field (about 10%
    # overall; country is rarely wrong, headcount and revenue often stale).
    provider_error: dict[str, float] = field(
        default_factory=lambda: {
            "industry": 0.10,
            "employees": 0.15,
            "annual_revenue": 0.15,
            "country": 0.02,
            "city": 0.08,
        }
    )
    stage_violations: float = 0.05  # share of open deals sitting in a stage they fail
    phantom_deals: float = 0.04  # share of open deals that are lost in reality
    # Share of records with each required field blank (definitions.yaml required_fields).
    missing: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "accounts": {
                "website": 0.05,
                "industry": 0.10,
                "employees": 0.12,
                "country": 0.04,
                "owner_id": 0.03,
            },
            "contacts": {"account_id": 0.02, "last_name": 0.01, "email": 0.08, "title": 0.15},
            "opportunities": {
                "account_id": 0.01,
                "owner_id": 0.01,
                "amount": 0.04,
                "close_date": 0.02,
                "forecast_category": 0.03,
            },
        }
    )
    # Optional fields real exports leave blank, at the rates the public Salesforce sample
    # (../shared/data/salesforce_sample) shows: 7 of 31 opportunities without a lead
    # source, 4 of 12 accounts without annual revenue.
    sparse: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "accounts": {"annual_revenue": 0.33},
            "opportunities": {"lead_source": 0.23},
        }
    )
    # Open deals still in prospecting with no created_at: maven_crm's export has no
    # engage date for any of its 500 deals in prospecting (deals not yet engaged).
    undated_prospecting: float = 1.0
    # Duplicates are keyed in in a hurry: these fields are blank on them this much more.
    duplicate_blank: dict[str, float] = field(
        default_factory=lambda: {"industry": 0.25, "employees": 0.30, "title": 0.30}
    )

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


RATES = Rates()


@cache
def definitions() -> dict[str, Any]:
    """contracts/definitions.yaml as plain YAML (the generator needs no contracts import)."""
    text = (resources.files("revstack.contracts") / "definitions.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def stage_table() -> list[dict[str, Any]]:
    """Stages in order with key, probability, forecast_category and closed/won flags."""
    return definitions()["stages"]
