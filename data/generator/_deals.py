"""Deals and the hidden process behind them: who wins, when, after how many slips,
which deals go quiet before they are lost, and whose champion leaves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from data.generator._config import Scale

__all__ = ["Deals", "make_deals"]

DAY = np.timedelta64(86_400_000_000, "us")
OPEN_STAGES = ["prospecting", "qualification", "discovery", "proposal", "negotiation"]
NEEDED_ENGAGED = np.array([0, 0, 1, 2, 3])  # engaged contacts each open stage requires
CATEGORY_OF_STAGE = np.array(["pipeline", "pipeline", "pipeline", "best_case", "commit"])
SOURCES = np.array(["inbound", "outbound", "partner", "event", "referral"])
SOURCE_EFFECT = np.array([0.15, -0.25, 0.1, -0.05, 0.35])


def _days(x: np.ndarray) -> np.ndarray:
    return (x * 86_400e6).astype("timedelta64[us]")


def _quarter_end(t: np.ndarray) -> np.ndarray:
    months = t.astype("datetime64[M]")
    m = months.astype(int) % 12
    return (months + (2 - m % 3) + 1).astype("datetime64[us]") - DAY  # last day of the quarter


@dataclass
class Deals:
    opps: pl.DataFrame  # one row per deal, hidden columns included
    roles: pl.DataFrame  # deal, j (position), contact_idx, role, left_at
    entries: np.ndarray  # (n, 4) entry time into open stages 1..4
    entered: np.ndarray  # (n, 4) whether the deal entered that stage (by its end)
    end: np.ndarray  # when the deal's real activity stops


def make_deals(rng: np.random.Generator, scale: Scale, accounts: pl.DataFrame, contacts: pl.DataFrame,
               traits: pl.DataFrame, start: dt.datetime, as_of: dt.datetime) -> Deals:  # fmt: skip
    n = scale.opportunities
    now = np.datetime64(as_of, "us")
    t0 = np.datetime64(start, "us")
    weights = np.sqrt(accounts["employees"].to_numpy().astype(float))
    acct = rng.choice(len(accounts), size=n, p=weights / weights.sum())
    span_days = (now - t0) / DAY - 3
    created = t0 + _days(span_days * rng.random(n) ** 0.85)
    size = accounts["employees"].to_numpy()[acct].astype(float)
    amount = np.maximum(
        1000, np.round(np.exp(rng.normal(np.log(18_000), 0.95, n)) * (size / 200) ** 0.22, -2)
    )
    owner = accounts["owner_id"].to_numpy()[acct]
    skill = dict(zip(traits["user_id"], traits["skill"], strict=True))
    rep_skill = np.array([skill.get(o, 0.0) for o in owner])
    source = rng.integers(0, len(SOURCES), n)

    # The deal's buyer contacts: m consecutive contacts of its account from a random start.
    first_idx = (
        contacts.with_row_index("i")
        .group_by("account_idx")
        .agg(pl.col("i").min(), pl.len())
        .sort("account_idx")
    )
    firsts = np.zeros(len(accounts), dtype=np.int64)
    counts = np.zeros(len(accounts), dtype=np.int64)
    firsts[first_idx["account_idx"].to_numpy()] = first_idx["i"].to_numpy()
    counts[first_idx["account_idx"].to_numpy()] = first_idx["len"].to_numpy()
    avail = counts[acct]
    m = np.minimum(avail, 1 + rng.poisson(1.4, n))
    offset = (rng.random(n) * avail).astype(np.int64)
    deal_rows = np.repeat(np.arange(n), m)
    j = np.arange(len(deal_rows)) - np.repeat(np.cumsum(m) - m, m)
    cidx = firsts[acct[deal_rows]] + (offset[deal_rows] + j) % avail[deal_rows]
    c_role = contacts["buying_role"].to_numpy()[cidx]
    c_left = contacts["left_at"].to_numpy()[cidx]
    has_champ = np.zeros(n, bool)
    has_eb = np.zeros(n, bool)
    np.logical_or.at(has_champ, deal_rows, c_role == "champion")
    np.logical_or.at(has_eb, deal_rows, c_role == "economic_buyer")

    planned = np.exp(rng.normal(np.log(55) + 0.22 * np.log(amount / 18_000), 0.45, n))
    horizon = created + _days(planned * 1.2)
    champ_left = (
        (c_role == "champion") & (c_left > created[deal_rows]) & (c_left < horizon[deal_rows])
    )
    champ_departed = np.zeros(n, bool)
    np.logical_or.at(champ_departed, deal_rows, champ_left)
    q4 = (created + _days(planned)).astype("datetime64[M]").astype(int) % 12 >= 9
    logit = (-1.55 + 0.32 * (m - 2) + 0.45 * has_champ + 0.35 * has_eb
             - 0.28 * np.log(amount / 18_000) + rep_skill + SOURCE_EFFECT[source] + 0.25 * q4
             - 1.1 * champ_departed + rng.normal(0, 0.7, n))  # fmt: skip
    p_win = 1 / (1 + np.exp(-logit))
    won = rng.random(n) < p_win
    cycle = planned * np.where(won, rng.uniform(0.9, 1.5, n), rng.uniform(0.5, 1.8, n))
    outcome = created + _days(cycle)
    qend = _quarter_end(outcome)
    snap = won & (rng.random(n) < 0.4) & (qend - created > 14 * DAY)
    outcome = np.where(snap, qend - _days(rng.uniform(0, 10, n)), outcome)
    outcome = np.maximum(outcome, created + DAY)

    closed = outcome <= now
    lost_window = closed & ~won & (outcome > now - 300 * DAY) & (outcome < now - 40 * DAY)
    n_phantom = int(round(0.04 * (~closed).sum()))
    phantom = np.zeros(n, bool)
    candidates = np.flatnonzero(lost_window)
    phantom[rng.choice(candidates, size=min(n_phantom, len(candidates)), replace=False)] = True
    crm_closed = closed & ~phantom
    end = np.where(closed, outcome, now)  # when the deal's real activity stops

    # Stages: how far each deal gets, and when it enters each stage.
    reached = np.where(won, 4, rng.choice(5, size=n, p=[0.25, 0.3, 0.25, 0.15, 0.05]))
    fractions = np.sort(rng.uniform(0.02, 0.9, (n, 4)), axis=1)
    entries = created[:, None] + _days(cycle[:, None] * fractions)  # entry into stage 1..4
    entered = (np.arange(1, 5)[None, :] <= reached[:, None]) & (entries <= end[:, None])
    current = entered.sum(axis=1)  # open stage index reached by `end`
    # An open deal needs its contacts: a deal cannot legitimately sit where it lacks them.
    supportable = np.searchsorted(NEEDED_ENGAGED, m, side="right") - 1
    current = np.where(crm_closed, current, np.minimum(current, supportable))
    entered &= np.arange(1, 5)[None, :] <= current[:, None]

    opps = pl.DataFrame({
        "opportunity_id": [f"O{i:08d}" for i in range(1, n + 1)],
        "account_idx": acct, "account_id": accounts["account_id"].to_numpy()[acct], "owner_id": owner,
        "amount": amount, "created_at": created, "outcome_at": outcome, "won": won, "closed": closed,
        "crm_closed": crm_closed, "phantom": phantom, "p_win": p_win, "m": m, "current": current,
        "lead_source": SOURCES[source], "champ_departed": champ_departed,
    })  # fmt: skip
    roles = pl.DataFrame(
        {"deal": deal_rows, "j": j, "contact_idx": cidx, "role": c_role, "left_at": c_left}
    )
    return Deals(opps, roles, entries, entered, end)
