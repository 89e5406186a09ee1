"""Accounts with their true firmographics, and the people at them: contacts in buying
seats that change hands as people leave (about 2% a month)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._names import company_names, person_names
from revstack.data.generator._places import place_accounts
from revstack.data.generator._util import Clock, ids, segment_starts
from revstack.data.generator._variants import SUFFIX_RE

__all__ = [
    "make_accounts",
    "People",
    "make_contacts",
    "refresh_departures",
    "PERSONAS",
    "TITLE_ROWS",
]

_STREETS = np.array(
    [
        "Main",
        "Oak",
        "Market",
        "King",
        "Queen",
        "High",
        "Station",
        "Park",
        "Church",
        "Mill",
        "Harbor",
        "Lake",
        "Bridge",
        "River",
        "Elm",
        "Cedar",
        "Hill",
        "Union",
    ]
)
_STREET_KIND = np.array(["St", "Ave", "Rd", "Blvd", "Way", "Lane", "Street", "Road"])
PERSONAS = np.array(
    ["economic_buyer", "decision_maker", "champion", "technical_buyer", "influencer", "user"]
)
_PERSONA_P = np.array([0.15, 0.10, 0.20, 0.15, 0.15, 0.25])
# persona index, title, department
TITLE_ROWS = [
    (0, "Chief Financial Officer", "Finance"),
    (0, "VP Finance", "Finance"),
    (0, "Chief Operating Officer", "Executive"),
    (0, "CEO", "Executive"),
    (0, "Chief Revenue Officer", "Sales"),
    (0, "SVP Sales", "Sales"),
    (1, "VP Sales", "Sales"),
    (1, "VP Marketing", "Marketing"),
    (1, "Head of Operations", "Operations"),
    (1, "Director of IT", "IT"),
    (1, "VP Engineering", "Engineering"),
    (2, "Director of Sales Operations", "Sales"),
    (2, "Head of RevOps", "Operations"),
    (2, "RevOps Manager", "Operations"),
    (2, "Senior Manager, Sales Operations", "Sales"),
    (2, "Director of Operations", "Operations"),
    (2, "Marketing Operations Manager", "Marketing"),
    (3, "CTO", "IT"),
    (3, "IT Director", "IT"),
    (3, "Head of Engineering", "Engineering"),
    (3, "Solutions Architect", "IT"),
    (3, "IT Manager", "IT"),
    (3, "Security Lead", "IT"),
    (4, "Sales Manager", "Sales"),
    (4, "Finance Manager", "Finance"),
    (4, "Procurement Manager", "Procurement"),
    (4, "Operations Manager", "Operations"),
    (4, "Senior Analyst", "Finance"),
    (5, "Account Executive", "Sales"),
    (5, "Sales Development Representative", "Sales"),
    (5, "Analyst", "Operations"),
    (5, "Operations Specialist", "Operations"),
    (5, "Coordinator", "Operations"),
    (5, "Customer Success Manager", "Sales"),
]
_CHAIN = 3  # people who hold one buying seat over the history
SUBSIDIARIES = 0.035  # share of companies that are another's subsidiary (own entity)
SHARED_SWITCHBOARD = 0.015  # companies on another company's switchboard (same country)
# Mean stay by persona: champions (ambitious operators) move on fastest; overall about 2%
# of contacts leave each month.
_TENURE_MONTHS = np.array([60.0, 60.0, 28.0, 55.0, 55.0, 50.0])


def make_accounts(rng: np.random.Generator, n: int, seat_region: np.ndarray) -> pl.DataFrame:
    """True accounts (created_at is set later, from the first deal)."""
    places = place_accounts(rng, n)
    names, _ = company_names(rng, places)
    employees = np.clip(np.round(np.exp(rng.normal(5.5, 1.6, n))), 5, 400_000).astype(np.int64)
    per_head = np.exp(rng.normal(np.log(190_000), 0.45, n))
    revenue = np.round(employees * per_head, -3)
    # Owners: a seat in the account's region (any seat where the region has no team).
    region = places["region"].to_numpy()
    seat = np.empty(n, dtype=np.int64)
    for r in np.unique(region):  # a handful of regions
        idx = np.flatnonzero(region == r)
        pool = np.flatnonzero(seat_region == r)
        pool = pool if len(pool) else np.arange(len(seat_region))
        seat[idx] = pool[rng.integers(0, len(pool), len(idx))]
    web = rng.choice(4, size=n, p=[0.7, 0.15, 0.1, 0.05])
    domain = names["domain"]
    group = _groups(rng, names["name"], domain, places["phone"], places["country"])
    website = (
        pl.DataFrame({"d": group["site"], "w": web})
        .select(
            pl.when(pl.col("w") == 0)
            .then(pl.concat_str(pl.lit("https://www."), "d"))
            .when(pl.col("w") == 1)
            .then(pl.concat_str(pl.lit("https://"), "d"))
            .when(pl.col("w") == 2)
            .then(pl.concat_str(pl.lit("www."), "d"))
            .otherwise(pl.concat_str(pl.lit("http://www."), "d"))
        )
        .to_series()
    )
    return pl.DataFrame(
        {
            "account_id": ids("A", n, 7),
            "name": group["name"],
            "domain": domain,
            "website": website,
            "industry": names["industry"],
            "employees": employees,
            "annual_revenue": revenue,
            "year_founded": np.clip(
                np.round(2024 - np.exp(rng.normal(2.8, 0.7, n)) - np.log(employees)), 1850, 2023
            ).astype(np.int64),
            "street": pl.Series(rng.integers(1, 2400, n)).cast(pl.String)
            + " "
            + pl.Series(_STREETS[rng.integers(0, len(_STREETS), n)])
            + " "
            + pl.Series(_STREET_KIND[rng.integers(0, len(_STREET_KIND), n)]),
            "city": places["city"],
            "state": places["state"],
            "postal_code": places["postal_code"],
            "country": places["country"],
            "region": places["region"],
            "phone": group["phone"],
            "parent_account_id": group["parent"],
            "seat": seat,
            "customer_at_start": rng.random(n) < 0.22,
        }
    )


def _groups(
    rng: np.random.Generator,
    name: pl.Series,
    domain: pl.Series,
    phone: pl.Series,
    country: pl.Series,
) -> pl.DataFrame:
    """Companies that are not duplicates but look like them: subsidiaries named after
    their parent with their country, on the group's website, half of them on its
    switchboard, most linked to the parent in the CRM (a third are not); and unrelated
    companies sharing an office's switchboard in the same country."""
    n = len(name)
    idx = np.arange(n)
    parent = rng.integers(0, n, n)
    sub = (rng.random(n) < SUBSIDIARIES) & (parent != idx)
    sub &= ~np.isin(idx, parent[sub])  # a parent is not itself a subsidiary
    parts = pl.DataFrame({"name": name}).select(
        pl.col("name").str.extract_groups(SUFFIX_RE).alias("p"), "name"
    )
    base = parts.select(pl.coalesce(pl.col("p").struct.field("1"), "name")).to_series()
    legal = parts.select(pl.col("p").struct.field("2").fill_null("")).to_series().to_numpy()
    sub_name = (
        pl.Series(base.to_numpy()[parent])
        + " "
        + country
        + pl.Series(np.where(legal == "", "", " " + legal))
    )
    ph = phone.to_numpy().copy()
    ph = np.where(sub & (rng.random(n) < 0.5), ph[parent], ph)
    order = np.argsort(country.to_numpy(), kind="stable")
    nxt = np.roll(order, -1)
    c = country.to_numpy()
    office = (rng.random(n) < SHARED_SWITCHBOARD) & (c[order] == c[nxt]) & ~sub[order]
    ph[order[office]] = ph[nxt[office]]
    linked = pl.Series(sub & (rng.random(n) < 0.67))
    return pl.DataFrame(
        {
            "name": np.where(sub, sub_name.to_numpy(), name.to_numpy()),
            "site": np.where(sub, domain.to_numpy()[parent], domain.to_numpy()),
            "phone": ph,
        }
    ).with_columns(
        parent=pl.when(linked).then(ids("A", n, 7).gather(pl.Series(parent))).otherwise(None)
    )


@dataclass
class People:
    contacts: pl.DataFrame  # one row per contact record, hidden columns included
    slot_first: np.ndarray  # first slot of each account
    slot_count: np.ndarray  # slots per account
    slot_persona: np.ndarray  # (slots,)
    start: np.ndarray  # (slots, _CHAIN) day the person enters the CRM, inf where nobody
    leave: np.ndarray  # (slots, _CHAIN) day they leave the company, inf if they stay
    record: np.ndarray  # (slots, _CHAIN) contact row, -1 where nobody


def make_contacts(
    rng: np.random.Generator, accounts: pl.DataFrame, per_account: float, clock: Clock
) -> People:
    n_acc = len(accounts)
    emp = accounts["employees"].to_numpy()
    created = accounts["created"].to_numpy()
    # Buying seats; each seat's holder leaves after a while and a successor arrives.
    # About 1.8 records per seat over the history (people leave and are replaced), and
    # duplicates add the rest of `per_account`.
    lam = (per_account * 0.93 / 1.8 - 1) * (emp / 250) ** 0.12
    count = 1 + rng.poisson(lam)
    n_slots = int(count.sum())
    acct = np.repeat(np.arange(n_acc), count)
    persona = rng.choice(len(PERSONAS), size=n_slots, p=_PERSONA_P)
    start = np.full((n_slots, _CHAIN), np.inf)
    leave = np.full((n_slots, _CHAIN), np.inf)
    start[:, 0] = created[acct] + rng.exponential(60, n_slots)
    for k in range(_CHAIN):
        ends = start[:, k] + rng.exponential(_TENURE_MONTHS[persona] * 30.44)
        leave[:, k] = np.where(np.isfinite(start[:, k]), ends, np.inf)
        if k + 1 < _CHAIN:
            nxt = leave[:, k] + rng.uniform(20, 120, n_slots)
            start[:, k + 1] = np.where(nxt < clock.now, nxt, np.inf)
    exists = start < clock.now
    start = np.where(exists, start, np.inf)
    record = np.full((n_slots, _CHAIN), -1)
    n = int(exists.sum())
    record[exists] = np.arange(n)
    slot = np.nonzero(exists)[0]
    a = acct[slot]
    left = leave[exists]
    gone = left < clock.now
    first, last = person_names(rng, n)
    t_rows = pl.DataFrame(TITLE_ROWS, schema=["persona", "title", "department"], orient="row")
    per = t_rows.group_by("persona", maintain_order=True).agg(k=pl.len())
    t_first = np.cumsum(np.r_[0, per["k"].to_numpy()[:-1]]).astype(np.int64)
    t_k = per["k"].to_numpy().astype(np.int64)
    p = persona[slot]
    title_idx = t_first[p] + (rng.random(n) * t_k[p]).astype(np.int64)
    pattern = rng.choice(5, size=n_acc, p=[0.5, 0.2, 0.1, 0.1, 0.1])[a]  # each company has its own
    f = pl.DataFrame(
        {
            "first": first,
            "last": last,
            "pattern": pattern,
            "domain": accounts["domain"].to_numpy()[a],
        }
    )
    fl, ll = pl.col("first").str.to_lowercase(), pl.col("last").str.to_lowercase()
    local = (
        pl.when(pl.col("pattern") == 0)
        .then(pl.concat_str(fl, pl.lit("."), ll))
        .when(pl.col("pattern") == 1)
        .then(pl.concat_str(fl.str.slice(0, 1), ll))
        .when(pl.col("pattern") == 2)
        .then(pl.concat_str(fl, ll.str.slice(0, 1)))
        .when(pl.col("pattern") == 3)
        .then(pl.concat_str(fl, pl.lit("_"), ll))
        .otherwise(pl.concat_str(fl, pl.lit("."), ll))
    )
    email = f.select(pl.concat_str(local, pl.lit("@"), "domain")).to_series()
    # What the CRM knows of a departure: inactive, bounced, or both (never neither).
    signal = _signal(rng, n)
    seen = left + rng.uniform(3, 60, n)
    noticed = gone & (signal != 3)  # updated_at is when the CRM heard of it
    acc_phone = accounts["phone"].to_numpy()[a]
    ext = pl.Series(rng.integers(100, 9999, n)).cast(pl.String)
    contacts = pl.DataFrame(
        {
            "contact_id": ids("C", n, 8),
            "account_idx": a,
            "account_id": accounts["account_id"].to_numpy()[a],
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": pl.select(
                pl.lit(pl.Series(acc_phone)).str.slice(
                    0, pl.lit(pl.Series(acc_phone)).str.len_chars() - 4
                )
                + pl.lit(ext).str.zfill(4)
            ).to_series(),
            "title": t_rows["title"].to_numpy()[title_idx],
            "department": t_rows["department"].to_numpy()[title_idx],
            "persona": PERSONAS[p],
            "city": accounts["city"].to_numpy()[a],
            "country": accounts["country"].to_numpy()[a],
            "start": start[exists],
            "left": np.where(gone, left, np.nan),
            "is_active": ~(noticed & (signal != 1)),
            "email_bounced": noticed & (signal != 0),
            "title_idx": title_idx,
            "email_opt_out": rng.random(n) < 0.03,
            "do_not_contact": rng.random(n) < 0.01,
            "seat": accounts["seat"].to_numpy()[a],
            "updated": np.where(
                noticed,
                np.minimum(seen, clock.now),
                start[exists] + rng.random(n) * (clock.now - start[exists]),
            ),
        }
    )
    return People(contacts, segment_starts(count), count, persona, start, leave, record)


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    """What the CRM shows of a departure: 0 inactive only, 1 bounced only, 2 both, 3 neither
    (nobody told the CRM and nobody has mailed them since: their activity simply stops)."""
    return rng.choice(4, size=n, p=[0.2, 0.3, 0.3, 0.2])


def refresh_departures(
    rng: np.random.Generator, people: People, rows: np.ndarray, clock: Clock
) -> None:
    """Re-derive what the CRM shows for contacts whose leave day moved earlier."""
    if not len(rows):
        return
    exists = people.record >= 0
    left = np.empty(len(people.contacts))
    left[people.record[exists]] = people.leave[exists]
    left = left[rows]
    gone = left < clock.now
    signal = _signal(rng, len(rows))
    noticed = gone & (signal != 3)
    c = people.contacts
    idx = pl.Series(rows)
    people.contacts = c.with_columns(
        left=c["left"].scatter(idx, np.where(gone, left, np.nan)),
        is_active=c["is_active"].scatter(idx, ~(noticed & (signal != 1))),
        email_bounced=c["email_bounced"].scatter(idx, noticed & (signal != 0)),
        updated=c["updated"].scatter(
            idx,
            np.where(
                noticed,
                np.minimum(left + rng.uniform(3, 60, len(rows)), clock.now),
                c["updated"].gather(idx).to_numpy(),
            ),
        ),
    )
