"""Users, accounts and contacts with their true firmographics."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from data.generator._config import INDUSTRIES, REGIONS, Scale
from data.generator._names import company_names, person_names

__all__ = ["make_users", "make_accounts", "make_contacts"]

_COUNTRIES = {
    "NA": (["United States", "Canada"], [0.85, 0.15], ["New York", "Austin", "Chicago", "Toronto", "Denver", "Boston", "Seattle"]),
    "EMEA": (["United Kingdom", "Germany", "France", "Netherlands", "Sweden"], [0.3, 0.25, 0.2, 0.15, 0.1], ["London", "Berlin", "Paris", "Amsterdam", "Munich", "Stockholm"]),
    "APAC": (["Australia", "Japan", "Singapore", "India"], [0.3, 0.3, 0.2, 0.2], ["Sydney", "Tokyo", "Singapore", "Bangalore"]),
    "LATAM": (["Brazil", "Mexico", "Chile"], [0.5, 0.35, 0.15], ["Sao Paulo", "Mexico City", "Santiago"]),
}  # fmt: skip
_TITLES = {
    "economic_buyer": ["CFO", "VP Finance", "Chief Operating Officer", "CEO", "VP Operations"],
    "champion": ["Director of Operations", "Head of RevOps", "Senior Manager, IT", "Director of Sales Operations"],
    "technical_buyer": ["CTO", "IT Director", "Head of Engineering", "Solutions Architect"],
    "user": ["Sales Manager", "Account Executive", "Analyst", "Operations Specialist", "Coordinator"],
}  # fmt: skip


def make_users(
    rng: np.random.Generator, scale: Scale, start: dt.datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reps in teams of about eight under a manager, by region; and each rep's hidden traits."""
    n_teams = max(2, round(scale.reps / 8))
    team_region = rng.choice(list(REGIONS), size=n_teams, p=list(REGIONS.values()))
    team_region[: min(len(REGIONS), n_teams)] = list(REGIONS)[: min(len(REGIONS), n_teams)]
    first, last = person_names(rng, n_teams + scale.reps + 2)
    managers = pl.DataFrame({
        "user_id": [f"U{i:05d}" for i in range(1, n_teams + 1)],
        "name": [f"{f} {s}" for f, s in zip(first[:n_teams], last[:n_teams], strict=True)],
        "role": "manager", "manager_id": "U00000", "team": [f"Team {i}" for i in range(1, n_teams + 1)],
        "region": team_region,
    })  # fmt: skip
    team_of_rep = rng.integers(0, n_teams, size=scale.reps)
    team_of_rep[:n_teams] = np.arange(n_teams)  # every team has at least one rep
    reps = pl.DataFrame({
        "user_id": [f"U{i:05d}" for i in range(n_teams + 1, n_teams + scale.reps + 1)],
        "name": [f"{f} {s}" for f, s in zip(first[n_teams:-2], last[n_teams:-2], strict=True)],
        "role": "rep", "manager_id": managers["user_id"].to_numpy()[team_of_rep],
        "team": managers["team"].to_numpy()[team_of_rep], "region": team_region[team_of_rep],
    })  # fmt: skip
    execs = pl.DataFrame({"user_id": ["U00000"], "name": [f"{first[-1]} {last[-1]}"], "role": ["executive"],
                          "manager_id": [None], "team": [None], "region": [None]})  # fmt: skip
    users = pl.concat([execs, managers, reps], how="vertical_relaxed").with_columns(
        email=pl.col("name").str.to_lowercase().str.replace_all(" ", ".") + "@ourco.example",
        is_active=True, created_at=pl.lit(start),
    )  # fmt: skip
    # Hidden traits: skill moves win odds; commit_bias < 1 sandbags, > 1 has happy ears;
    # insight is how much of what the rep privately knows reaches the commit.
    traits = reps.select("user_id").with_columns(
        skill=rng.normal(0.0, 0.35, scale.reps),
        commit_bias=np.exp(rng.normal(0.0, 0.10, scale.reps)),
        insight=rng.beta(6.0, 2.0, scale.reps),
    )
    return users, traits


def make_accounts(
    rng: np.random.Generator,
    scale: Scale,
    users: pl.DataFrame,
    start: dt.datetime,
    as_of: dt.datetime,
) -> pl.DataFrame:
    n = scale.accounts
    names, stems = company_names(rng, n)
    region = rng.choice(list(REGIONS), size=n, p=list(REGIONS.values()))
    country = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    for r, (countries, weights, cities) in _COUNTRIES.items():
        idx = np.flatnonzero(region == r)
        country[idx] = rng.choice(countries, size=len(idx), p=weights)
        city[idx] = rng.choice(cities, size=len(idx))
    employees = np.clip(np.round(np.exp(rng.normal(5.3, 1.5, n))), 5, 300_000).astype(np.int64)
    revenue = np.round(employees * np.exp(rng.normal(np.log(180_000), 0.5, n)), -3)
    tld = np.where(np.isin(country, ["United States", "Canada"]) | (rng.random(n) < 0.6), ".com",
                   np.where(country == "Germany", ".de", np.where(country == "United Kingdom", ".co.uk", ".io")))  # fmt: skip
    domain = np.char.add(stems.astype(str), tld.astype(str))
    reps = users.filter(pl.col("role") == "rep")
    owner = np.empty(n, dtype=object)
    for r in REGIONS:
        idx = np.flatnonzero(region == r)
        pool = reps.filter(pl.col("region") == r)["user_id"].to_numpy()
        pool = pool if len(pool) else reps["user_id"].to_numpy()
        owner[idx] = rng.choice(pool, size=len(idx))
    span = (as_of - start).total_seconds()
    created = start + pl.Series(rng.uniform(-0.3, 0.9, n) * span * 1e6).cast(pl.Duration("us"))
    return pl.DataFrame({
        "account_id": [f"A{i:07d}" for i in range(1, n + 1)],
        "name": names, "domain": domain,
        "website": np.char.add("https://www.", domain),
        "industry": rng.choice(INDUSTRIES, size=n),
        "employees": employees, "annual_revenue": revenue,
        "year_founded": rng.integers(1950, 2022, n),
        "street": [f"{k} Main St" for k in rng.integers(1, 999, n)],
        "city": city.astype(str), "state": None, "postal_code": [f"{k:05d}" for k in rng.integers(1000, 99999, n)],
        "country": country.astype(str), "region": region,
        "phone": [f"+1 555 {a:03d} {b:04d}" for a, b in zip(rng.integers(100, 999, n), rng.integers(0, 9999, n), strict=True)],
        "account_type": rng.choice(["prospect", "customer"], size=n, p=[0.7, 0.3]),
        "owner_id": owner.astype(str), "created_at": created,
    })  # fmt: skip


def make_contacts(
    rng: np.random.Generator, scale: Scale, accounts: pl.DataFrame, as_of: dt.datetime
) -> pl.DataFrame:
    """People at each account with a buying role and a leave date (about 2% leave a month)."""
    per = np.maximum(1, rng.poisson(scale.contacts_per_account - 1, len(accounts)) + 1)
    acct = np.repeat(np.arange(len(accounts)), per)
    n = len(acct)
    first, last = person_names(rng, n)
    role = rng.choice(list(_TITLES), size=n, p=[0.15, 0.2, 0.15, 0.5])
    title = np.empty(n, dtype=object)
    for r, titles in _TITLES.items():
        idx = np.flatnonzero(role == r)
        title[idx] = rng.choice(titles, size=len(idx))
    acc_created = accounts["created_at"].to_numpy()[acct]
    created = acc_created + (rng.uniform(0, 400, n) * 86_400e6).astype("timedelta64[us]")
    tenure_days = rng.exponential(50 * 30.4, n)  # ~2% a month leave
    left = created + (tenure_days * 86_400e6).astype("timedelta64[us]")
    gone = left < np.datetime64(as_of)
    domain = accounts["domain"].to_numpy()[acct]
    return pl.DataFrame({
        "contact_id": [f"C{i:08d}" for i in range(1, n + 1)],
        "account_idx": acct, "account_id": accounts["account_id"].to_numpy()[acct],
        "first_name": first, "last_name": last,
        "email": np.char.add(np.char.add(np.char.lower(np.char.add(np.char.add(first.astype(str), "."), last.astype(str))), "@"), domain.astype(str)),
        "phone": [f"+1 555 {a:03d} {b:04d}" for a, b in zip(rng.integers(100, 999, n), rng.integers(0, 9999, n), strict=True)],
        "title": title.astype(str), "department": np.where(role == "economic_buyer", "Finance", np.where(role == "technical_buyer", "IT", "Operations")),
        "buying_role": role, "city": accounts["city"].to_numpy()[acct], "country": accounts["country"].to_numpy()[acct],
        "created_at": created, "left_at": np.where(gone, left, np.datetime64("NaT")),
        "is_active": ~gone, "email_bounced": gone & (rng.random(n) < 0.85),
        "email_opt_out": rng.random(n) < 0.03, "do_not_contact": rng.random(n) < 0.01,
        "owner_id": accounts["owner_id"].to_numpy()[acct],
    })  # fmt: skip
