"""Run the simulation: our team, the accounts and their people, the deals and what
happens to them. Everything is truth here; `_tables` turns it into what the CRM shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._accounts import People, make_accounts, make_contacts
from revstack.data.generator._activities import deal_activities
from revstack.data.generator._config import Scale
from revstack.data.generator._deals import Deals, creation_days, make_deals
from revstack.data.generator._decay import decay
from revstack.data.generator._history import Violations, history, plant_violations
from revstack.data.generator._people import Team, make_team
from revstack.data.generator._ref import news_effect, news_events
from revstack.data.generator._util import Clock

__all__ = ["World", "simulate"]


@dataclass
class World:
    clock: Clock
    team: Team
    accounts: pl.DataFrame  # true accounts (before duplicates), with `created` and `seat`
    people: People
    news: pl.DataFrame
    deals: Deals
    violations: Violations
    history: pl.DataFrame  # full-state rows in float days, before blanks
    pushes: pl.DataFrame  # close-date pushes (deal, t, old, close)
    activities: pl.DataFrame  # deal activities: deal, t, contact row, kind
    changes: pl.DataFrame  # every real change to a contact and whether the CRM caught it


def simulate(rng: np.random.Generator, scale: Scale, clock: Clock) -> World:
    team = make_team(rng, scale.reps, clock)
    accounts = make_accounts(rng, scale.accounts, team.seat_region)
    news = news_events(rng, accounts, clock)
    created = creation_days(rng, scale.opportunities, clock)
    emp = accounts["employees"].to_numpy().astype(float)
    weight = np.sqrt(emp) * np.where(accounts["customer_at_start"].to_numpy(), 1.6, 1.0)
    account = rng.choice(len(accounts), size=len(created), p=weight / weight.sum())
    # An account enters the CRM some time before its first deal (or with no deal at all).
    first_deal = np.full(len(accounts), np.inf)
    np.minimum.at(first_deal, account, created)
    acc_created = np.minimum(
        rng.uniform(-3 * 365, clock.now - 20, len(accounts)),
        first_deal - rng.uniform(1, 90, len(accounts)),
    )
    accounts = accounts.with_columns(created=acc_created)
    people = make_contacts(rng, accounts, scale.contacts_per_account, clock)
    deals = make_deals(rng, clock, created, account, accounts, people, team, news_effect(news))
    changes = decay(rng, people, clock)  # after the deals: poached champions leave earlier
    violations = plant_violations(rng, deals, clock)
    traits = team.traits
    hist, pushes = history(
        rng,
        clock,
        deals,
        violations,
        traits["insight"].to_numpy(),
        traits["commit_bias"].to_numpy(),
    )
    acts = deal_activities(rng, clock, deals, violations, scale.activities_per_deal_week)
    return World(
        clock, team, accounts, people, news, deals, violations, hist, pushes, acts, changes
    )
