"""Deals and the hidden process behind them: who buys, how much, with whom, and whether
and when they win. Everything here is truth; the CRM's view is built from it later."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from revstack.data.generator._accounts import PERSONAS, People, refresh_departures
from revstack.data.generator._config import RATES
from revstack.data.generator._people import Team, occupant_at
from revstack.data.generator._util import Clock

__all__ = [
    "Deals",
    "reached",
    "creation_days",
    "make_deals",
    "SOURCES",
    "PRODUCTS",
    "COMPETITORS",
    "OPP_TYPES",
]

SOURCES = np.array(["inbound", "outbound", "partner", "event", "referral", "existing_customer"])
_SOURCE_P = np.array([0.32, 0.32, 0.12, 0.14, 0.10])
_SOURCE_EFFECT = np.array([0.15, -0.30, 0.10, -0.10, 0.40, 0.35])
PRODUCTS = np.array(
    ["Platform", "Analytics", "Automation", "Platform + Analytics", "Enterprise Suite"]
)
_PRODUCT_MULT = np.array([1.0, 0.55, 0.75, 1.5, 2.6])
_PRODUCT_P = {
    0: [0.35, 0.3, 0.3, 0.05, 0.0],
    1: [0.35, 0.15, 0.2, 0.22, 0.08],
    2: [0.2, 0.1, 0.1, 0.3, 0.3],
}
COMPETITORS = np.array(["Northwind", "Contoso", "Globex", "Initech", ""])
_COMPETITOR_EFFECT = np.array([-0.10, -0.30, -0.05, -0.05, 0.15])
_SEGMENT_AMOUNT = np.array(
    [9_000.0, 26_000.0, 85_000.0]
)  # median deal by SMB, mid-market, enterprise
_SEGMENT_DAYS = np.array([38.0, 68.0, 120.0])  # planned cycle by segment
OPP_TYPES = np.array(["new_business", "expansion", "renewal"])
# Renewals mostly renew (real gross renewal rates run 70-90%); expansions sell easier.
_TYPE_EFFECT = np.array([0.0, 0.45, 2.4])
# Small companies decide faster and more often; enterprises rarely (beyond deal size).
_SEGMENT_EFFECT = np.array([0.35, 0.0, -0.45])
STAGE_SHARE = np.array([0.12, 0.15, 0.25, 0.25, 0.23])  # of a cycle spent in each open stage
_LOST_REACH = np.array([0.14, 0.18, 0.23, 0.20, 0.25])  # furthest open stage a lost deal reaches
_INTERCEPT = -1.55


@dataclass
class Deals:
    n: int
    account: np.ndarray
    created: np.ndarray  # days
    amount: np.ndarray  # the true (final) amount
    segment: np.ndarray
    product: np.ndarray
    source: np.ndarray
    competitor: np.ndarray
    dtype: np.ndarray  # opportunity type
    seat: np.ndarray
    owner_first: np.ndarray  # rep index at creation
    owner_final: np.ndarray  # rep index in the CRM now (reassigned when the first left)
    m: np.ndarray  # buyer contacts on the deal
    has_champ: np.ndarray
    has_eb: np.ndarray
    champ_departed: np.ndarray
    planned: np.ndarray  # planned cycle, days
    p_win: np.ndarray
    won: np.ndarray
    outcome: np.ndarray  # real win/loss day (may be after as-of)
    closed: np.ndarray  # really closed by as-of
    phantom: np.ndarray
    crm_closed: np.ndarray
    entries: np.ndarray  # (n, 4) day of entry into stages 1..4, inf if never or skipped
    crm_end: (
        np.ndarray
    )  # the last day the CRM hears of the deal (close-out, as-of, or phantom's loss)
    roles: pl.DataFrame  # deal, j, contact (row), role, start, left
    first: np.ndarray  # the stage (0-3) the deal was opened in


def creation_days(rng: np.random.Generator, n: int, clock: Clock) -> np.ndarray:
    """Deal creation days: the company grows about 20% a year, December and August are
    slow, weekends nearly empty."""
    days = np.arange(int(clock.now) - 1)
    month = clock.month(days.astype(float)) % 12
    weekday = (clock.date(days.astype(float)).astype(np.int64) + 3) % 7
    w = np.exp(0.2 * days / 365) * np.where(np.isin(month, [7, 11]), 0.7, 1.0)
    w = w * np.where(weekday >= 5, 0.08, 1.0)
    day = rng.choice(len(days), size=n, p=w / w.sum())
    return np.sort(day + rng.uniform(8 / 24, 18 / 24, n))


def _quarter_pull(
    rng: np.random.Generator,
    clock: Clock,
    t: np.ndarray,
    floor: np.ndarray,
    share: np.ndarray,
    before: float,
    after: float,
) -> np.ndarray:
    """Move a share of the closings from `before` days ahead of a quarter's end to `after`
    days past it into the quarter's last week (the quarter-end push)."""
    qend = clock.quarter_end(t)
    prev_end = clock.quarter_end(t - after)  # the quarter end just passed, if t is early in one
    target = np.where(qend - t <= before, qend, np.where(prev_end <= t, prev_end, np.inf))
    moved = target - rng.uniform(0.3, 7, len(t))
    go = np.isfinite(target) & (rng.random(len(t)) < share) & (moved > floor)
    return np.where(go, moved, t)


def make_deals(
    rng: np.random.Generator,
    clock: Clock,
    created: np.ndarray,
    account: np.ndarray,
    accounts: pl.DataFrame,
    people: People,
    team: Team,
    news_effect,
) -> Deals:
    n = len(created)
    now = clock.now
    emp = accounts["employees"].to_numpy()[account]
    segment = np.digitize(emp, [200, 2000])
    customer = accounts["customer_at_start"].to_numpy()[account]
    dtype = np.where(customer, rng.choice(3, size=n, p=[0.2, 0.55, 0.25]), 0)
    product = np.zeros(n, dtype=np.int64)
    for s, p in _PRODUCT_P.items():  # three segments
        idx = np.flatnonzero(segment == s)
        product[idx] = rng.choice(len(PRODUCTS), size=len(idx), p=p)
    # Heavy tail: lognormal around the segment's median, so a few deals carry a quarter.
    amount = _SEGMENT_AMOUNT[segment] * _PRODUCT_MULT[product] * np.exp(rng.normal(0, 0.85, n))
    amount = np.maximum(1_000, np.round(amount, -2))
    source = np.where(dtype > 0, 5, rng.choice(5, size=n, p=_SOURCE_P))
    competitor = rng.choice(len(COMPETITORS), size=n, p=[0.2, 0.18, 0.15, 0.12, 0.35])
    planned = (
        _SEGMENT_DAYS[segment]
        * (amount / _SEGMENT_AMOUNT[segment]) ** 0.15
        * np.exp(rng.normal(0, 0.35, n))
    )
    planned = np.where(dtype == 2, 45 * np.exp(rng.normal(0, 0.3, n)), planned)
    # Teams sell at their own pace (their market, their manager): cycles differ by team.
    rep_team = team.users.filter(pl.col("role") == "rep")
    team_of = dict(zip(rep_team["user_id"], rep_team["team"], strict=True))
    names = sorted(set(team_of.values()))
    pace = np.exp(rng.normal(0, 0.25, len(names)))
    first_owner = occupant_at(team, accounts["seat"].to_numpy()[account], created)
    team_no = {t: i for i, t in enumerate(names)}
    rep_pace = np.array([pace[team_no[team_of[r]]] for r in team.rep_ids])
    planned = planned * rep_pace[first_owner]
    # A few small or repeat deals are signed within days of being opened.
    fast = ((segment == 0) | (dtype > 0)) & (rng.random(n) < 0.05)
    planned = np.where(fast, rng.uniform(2, 9, n), planned)

    # Buyer contacts: m seats of the account, each held by whoever sits there at creation.
    count = people.slot_count[account]
    m = np.minimum(count, 1 + rng.poisson(0.8 + 0.5 * np.log1p(amount / 15_000)))
    deal = np.repeat(np.arange(n), m)
    j = np.arange(len(deal)) - np.repeat(np.cumsum(m) - m, m)
    offset = (rng.random(n) * count).astype(np.int64)
    slot = people.slot_first[account[deal]] + (offset[deal] + j) % count[deal]
    t = created[deal]
    st = people.start[slot]
    k = np.maximum((st <= t[:, None]).sum(axis=1) - 1, 0)
    gone = people.leave[slot, k] <= t
    has_next = (k + 1 < st.shape[1]) & np.isfinite(
        st[np.arange(len(k)), np.minimum(k + 1, st.shape[1] - 1)]
    )
    k = np.where(gone & has_next, k + 1, k)
    rec = np.where(gone & ~has_next, -1, people.record[slot, k])  # nobody left in that seat
    persona = people.slot_persona[slot]
    role = np.where(rng.random(len(deal)) < 0.85, persona, rng.choice([4, 5], size=len(deal)))
    # Champions get poached mid-deal more often than chance alone would have it.
    poached = (rec >= 0) & (role == 2) & (rng.random(len(deal)) < 0.05)
    when = t + planned[deal] * rng.uniform(0.1, 1.0, len(deal))
    np.minimum.at(people.leave, (slot[poached], k[poached]), when[poached])
    refresh_departures(rng, people, np.unique(rec[poached]), clock)
    roles = pl.DataFrame(
        {
            "deal": deal,
            "j": j,
            "contact": rec,
            "role": PERSONAS[role],
            "start": st[np.arange(len(k)), k],
            "left": people.leave[slot, k],
        }
    )
    roles = roles.filter(pl.col("contact") >= 0).with_columns(j=pl.int_range(pl.len()).over("deal"))
    keep = rec >= 0
    m = np.bincount(deal[keep], minlength=n)  # buyers actually on record
    has_champ = np.zeros(n, bool)
    has_eb = np.zeros(n, bool)
    np.logical_or.at(has_champ, deal[keep], role[keep] == 2)
    np.logical_or.at(has_eb, deal[keep], role[keep] == 0)
    left = people.leave[slot, k]
    departs = keep & (role == 2) & (left > t) & (left < t + planned[deal] * 1.3)
    champ_departed = np.zeros(n, bool)
    np.logical_or.at(champ_departed, deal[departs], True)

    seat = accounts["seat"].to_numpy()[account]
    owner_first = occupant_at(team, seat, created)
    ramping = created - team.rep_hire[owner_first] < 120
    skill = team.traits["skill"].to_numpy()[owner_first] - 0.35 * ramping
    plan_close = created + planned
    q = clock.quarter(plan_close) % 4
    logit = (
        _INTERCEPT
        + skill
        + 0.45 * (np.minimum(m, 5) - 2)
        + 0.45 * has_champ
        + 0.35 * has_eb
        - 0.30 * np.log(amount / _SEGMENT_AMOUNT[segment])
        + _SEGMENT_EFFECT[segment]
        + _SOURCE_EFFECT[source]
        + _TYPE_EFFECT[dtype]
        + _COMPETITOR_EFFECT[competitor]
        + np.where(q == 3, 0.6, np.where(q == 0, -0.25, 0.0))
        - 1.2 * champ_departed
        + news_effect(account, created, plan_close)
        + rng.normal(0, 0.75, n)
    )
    p_win = 1 / (1 + np.exp(-logit))
    won = rng.random(n) < p_win

    # Stages: won deals pass every open stage; lost ones stop where their weakness shows.
    shares = STAGE_SHARE * rng.gamma(4.0, 0.25, (n, 5))
    shares /= shares.sum(axis=1, keepdims=True)
    cum = np.cumsum(shares, axis=1)[:, :4]  # start of stages 1..4 as a share of the cycle
    z = (logit - logit.mean()) / logit.std()
    latent = 0.5 * z + np.sqrt(0.75) * rng.normal(0, 1, n)
    u = (np.argsort(np.argsort(latent)) + 0.5) / n
    reach = np.where(won, 4, np.searchsorted(np.cumsum(_LOST_REACH), u))
    reach = np.minimum(reach, 4)
    speed = np.where(won, rng.uniform(0.8, 1.45, n), rng.uniform(1.0, 1.5, n))
    entries = created[:, None] + (planned * speed)[:, None] * cum
    # A stalled win: a budget freeze or a reorganisation parks it in one stage for months.
    stall = np.where(won & (rng.random(n) < 0.08), rng.uniform(60, 220, n), 0.0)
    delay = np.where(np.arange(4)[None, :] > rng.integers(0, 3, n)[:, None], stall[:, None], 0.0)
    entries = entries + delay
    cols = np.arange(1, 5)[None, :]
    top = np.where(won, 5, reach)[:, None]  # a lost deal keeps the stage it stops in
    # The path is not the textbook one: stages skipped (customers are known, some deals are
    # signed off the proposal), deals opened mid-funnel (qualified leads, renewals).
    skip = np.zeros((n, 4), bool)
    skip[:, 0] = rng.random(n) < 0.12
    skip[:, 1] = rng.random(n) < np.where(dtype > 0, 0.35, 0.06)
    no_nego = won & (rng.random(n) < np.array([0.12, 0.30, 0.60])[dtype])
    skip[:, 3] = no_nego
    skip[:, 2] = no_nego & (rng.random(n) < 0.15)
    skip &= cols < top
    first = np.where(rng.random(n) < np.where(dtype > 0, 0.45, 0.15), np.where(dtype > 0, 2, 1), 0)
    first = np.minimum(first, np.where(won, 4, reach))
    skip |= cols < first[:, None]
    entries = np.where((cols <= reach[:, None]) & ~skip, entries, np.inf)
    entries = np.where(cols == first[:, None], created[:, None], entries)
    last_entry = np.where(reach > 0, entries[np.arange(n), np.maximum(reach - 1, 0)], created)
    # Lost deals linger: nobody closes them out until long after they died.
    dwell = planned * np.exp(rng.normal(np.log(0.7), 0.6, n))
    outcome = np.where(won, created + planned * speed + stall, last_entry + dwell)
    # Quarter-end: reps pull wins into the last week (Q4 most); lost deals are scrubbed then.
    floor = np.where(won, created + (planned * speed) * cum[:, 3] + stall, last_entry) + 0.5
    q4 = clock.quarter(outcome + 20) % 4 == 3
    pulled = _quarter_pull(rng, clock, outcome, floor, np.where(q4, 0.75, 0.5), before=45, after=20)
    scrubbed = _quarter_pull(rng, clock, outcome, floor, np.full(n, 0.25), before=30, after=0)
    outcome = np.where(won, pulled, scrubbed)
    # People move deals on working days: stage entries and close-outs folded into the
    # working week (in order, never past the day they fell on).
    entries = np.maximum(clock.workweek(entries), created[:, None] + 0.01)
    moved = np.where(np.isfinite(entries), entries, created[:, None]).max(axis=1)
    outcome = np.maximum(clock.workweek(outcome), moved + 0.01)
    closed = outcome <= now

    # Phantoms: lost a while ago in reality, still open in the CRM.
    n_open = int((~closed).sum())
    pool = np.flatnonzero(closed & ~won & (outcome > now - 330) & (outcome < now - 75))
    k_ph = min(len(pool), round(RATES.phantom_deals / (1 - RATES.phantom_deals) * n_open))
    phantom = np.zeros(n, bool)
    phantom[rng.choice(pool, size=k_ph, replace=False)] = True
    crm_closed = closed & ~phantom
    crm_end = np.where(crm_closed, outcome, np.where(phantom, outcome, now))
    # What the CRM shows of the stages: open deals only where they have got to by now,
    # and never past what their contacts can support (the definitions' entry criteria).
    seen = entries <= np.where(crm_closed, np.inf, crm_end)[:, None]
    entries = np.where(seen | crm_closed[:, None], entries, np.inf)
    live = ~crm_closed  # closed deals keep the roles they had (CRMs are often incomplete)
    at = reached(entries)
    roles, has_eb, has_champ = _crm_roles(
        roles, live & (at >= 3), live & (at >= 4), m, has_eb, has_champ
    )
    support = np.where(
        (m >= 3) & has_eb & has_champ, 4, np.where((m >= 2) & has_eb, 3, np.where(m >= 1, 2, 1))
    )
    capped = ~crm_closed[:, None] & (cols > support[:, None])
    entries = np.where(capped, np.inf, entries)
    first = np.where(~crm_closed & (first > support), 0, first)  # then it was opened early

    end_owner = np.minimum(crm_end, now)
    leaves = team.rep_leave[owner_first] < end_owner
    owner_final = np.where(leaves, occupant_at(team, seat, end_owner), owner_first)
    return Deals(
        n,
        account,
        created,
        amount,
        segment,
        product,
        source,
        competitor,
        dtype,
        seat,
        owner_first,
        owner_final,
        m,
        has_champ,
        has_eb,
        champ_departed,
        planned,
        p_win,
        won,
        outcome,
        closed,
        phantom,
        crm_closed,
        entries,
        crm_end,
        roles,
        first,
    )


def reached(entries: np.ndarray) -> np.ndarray:
    """The furthest open stage (0-4) each deal has entered, skipped stages and all."""
    fin = np.isfinite(entries)
    return np.where(fin.any(axis=1), 4 - np.argmax(fin[:, ::-1], axis=1), 0)


def _crm_roles(
    roles: pl.DataFrame,
    proposal: np.ndarray,
    negotiation: np.ndarray,
    m: np.ndarray,
    has_eb: np.ndarray,
    has_champ: np.ndarray,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Deals that got to proposal name an economic buyer, and to negotiation a champion,
    when they have people enough: the rep finds them on the way."""
    need_eb = proposal & ~has_eb & (m >= 2)
    need_ch = negotiation & ~has_champ & (m >= 3)
    r = roles.with_row_index("row")
    eb = (
        r.filter(pl.Series(need_eb).gather(r["deal"]) & (pl.col("role") != "champion"))
        .group_by("deal")
        .agg(pl.col("row").max())
    )
    role = r["role"].to_numpy().copy()
    role[eb["row"].to_numpy()] = "economic_buyer"
    r = r.with_columns(role=pl.Series(role))
    ch = (
        r.filter(pl.Series(need_ch).gather(r["deal"]) & (pl.col("role") != "economic_buyer"))
        .group_by("deal")
        .agg(pl.col("row").min())
    )
    role[ch["row"].to_numpy()] = "champion"
    out = roles.with_columns(role=pl.Series(role))
    deal = out["deal"].to_numpy()
    has_eb = np.zeros(len(m), bool)
    has_champ = np.zeros(len(m), bool)
    np.logical_or.at(has_eb, deal, role == "economic_buyer")
    np.logical_or.at(has_champ, deal, role == "champion")
    return out, has_eb, has_champ
