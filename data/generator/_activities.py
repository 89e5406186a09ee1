"""Activities: emails, calls and meetings on deals and accounts. Deals that will be lost
go quiet before they are lost; won ones have lulls too. Open deals have the engaged
contacts their stage needs (except the planted violations) and meetings booked ahead."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from revstack.data.generator._deals import Deals
from revstack.data.generator._history import Violations, current_stage
from revstack.data.generator._util import Clock

__all__ = [
    "deal_activities",
    "account_touches",
    "kind_columns",
    "deal_subjects",
    "durations",
    "NEEDED_ENGAGED",
]

NEEDED_ENGAGED = np.array([0, 0, 1, 2, 3])  # engaged contacts each open stage requires
# type, direction, status, share
_MIX = [
    ("email", "outbound", "completed", 0.38),
    ("email", "inbound", "completed", 0.18),
    ("call", "outbound", "completed", 0.14),
    ("call", "two_way", "completed", 0.08),
    ("meeting", "two_way", "completed", 0.17),
    ("meeting", "two_way", "cancelled", 0.02),
    ("task", None, "completed", 0.03),
]
_SUBJECT = {
    "email": [
        "Introduction",
        "Qualification follow-up",
        "Discovery notes",
        "Proposal",
        "Contract redlines",
    ],
    "call": [
        "Intro call",
        "Qualification call",
        "Discovery call",
        "Proposal review",
        "Negotiation call",
    ],
    "meeting": [
        "Intro meeting",
        "Qualification meeting",
        "Discovery workshop",
        "Proposal walkthrough",
        "Commercials review",
    ],
    "task": [
        "Research account",
        "Send qualification notes",
        "Prepare demo",
        "Send proposal",
        "Prepare order form",
    ],
}


def _frame(deal, t, contact, kind) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "deal": np.asarray(deal, dtype=np.int32),
            "t": t,
            "contact": np.asarray(contact, dtype=np.int32),
            "kind": np.broadcast_to(np.asarray(kind, dtype=np.int8), len(deal)),
        }
    )


def deal_activities(
    rng: np.random.Generator, clock: Clock, d: Deals, v: Violations, rate: float
) -> pl.DataFrame:
    """(deal, t, contact row or -1, kind index into _MIX) for every deal activity."""
    n, now = d.n, clock.now
    end = np.minimum(d.outcome, now)  # a phantom's activity stops when it is really lost
    life = np.maximum(end - d.created, 0.5)
    lam = (
        rate
        * life
        / 7
        * (0.6 + 0.2 * np.minimum(d.m, 5))
        * (1 + 0.3 * (d.segment == 2))
        * rng.uniform(0.7, 1.3, n)
    )
    count = rng.poisson(lam)
    deal = np.repeat(np.arange(n), count)
    t = d.created[deal] + life[deal] * rng.beta(1.4, 1.0, len(deal))
    kind = rng.choice(len(_MIX), size=len(deal), p=[k[3] for k in _MIX])
    two_way = np.isin(kind, [1, 3, 4])
    # Going quiet: most lost deals lose their two-way activity weeks before the loss;
    # a quarter of won deals have a three-week lull somewhere.
    quiet_from = d.outcome - rng.uniform(14, 50, n)
    quiet = ~d.won & (rng.random(n) < 0.7)
    lull_from = d.created + rng.random(n) * np.maximum(life - 21, 0)
    lull = d.won & (rng.random(n) < 0.25)
    in_quiet = quiet[deal] & (t > quiet_from[deal])
    in_lull = lull[deal] & (t > lull_from[deal]) & (t < lull_from[deal] + 21)
    u = rng.random(len(deal))
    drop = (in_quiet & np.where(two_way, u < 0.85, u < 0.4)) | (in_lull & two_way & (u < 0.7))
    deal, t, kind = deal[~drop], t[~drop], kind[~drop]

    # Who: mostly the first buyer (many deals are single-threaded in practice).
    roles = d.roles
    first = np.zeros(n, dtype=np.int64)
    head = roles.with_row_index("i").group_by("deal", maintain_order=True).agg(pl.col("i").first())
    first[head["deal"].to_numpy()] = head["i"].to_numpy()
    m = d.m[deal]
    has = m > 0
    pick = first[deal] + np.minimum(
        (m * rng.random(len(deal)) ** 1.25).astype(np.int64), np.maximum(m - 1, 0)
    )
    pick = np.where(has, pick, 0)
    contact = np.where(has, roles["contact"].to_numpy()[pick] if len(roles) else -1, -1)
    start = np.where(has, roles["start"].to_numpy()[pick] if len(roles) else 0, -np.inf)
    left = np.where(has, roles["left"].to_numpy()[pick] if len(roles) else np.inf, np.inf)
    t = np.maximum(t, start)
    ok = t <= end[deal]
    deal, t, kind, contact, left = deal[ok], t[ok], kind[ok], contact[ok], left[ok]
    # Nobody answers for a person who has left: those touches are bounced outbound emails.
    gone = (left <= t) | (contact < 0)
    kind = np.where(gone & np.isin(kind, [1, 3, 4, 5]), 0, kind)
    # Planted violations that lack engagement: only the first buyer ever engaged.
    thin = np.isin(v.kind, [1, 2])
    j_of = np.zeros(len(deal), dtype=np.int64)
    j_of[has[ok]] = (pick[ok] - first[deal])[has[ok]]
    demote = thin[deal] & (j_of > 0) & np.isin(kind, [1, 3, 4])
    kind = np.where(demote, np.where(kind == 3, 2, 0), kind)
    frames = [_frame(deal, t, contact, kind)]

    # Open deals (phantoms included) show the engaged buyers their stage needs, met
    # before the deal entered that stage; violators of engagement show only one.
    stage = np.maximum(
        current_stage(d), np.where(v.kind >= 0, np.array([3, 3, 4, 4, 2])[v.kind], 0)
    )
    need = np.where(d.crm_closed, 0, np.minimum(NEEDED_ENGAGED[stage], d.m))
    need = np.where(thin, np.minimum(need, 1), need)
    gd = np.repeat(np.arange(n), need)
    gj = np.arange(len(gd)) - np.repeat(np.cumsum(need) - need, need)
    row = first[gd] + gj
    g_start = np.maximum(roles["start"].to_numpy()[row], d.created[gd]) if len(gd) else np.zeros(0)
    entered = np.where(stage > 0, d.entries[np.arange(n), np.maximum(stage - 1, 0)], d.created)
    entered = np.where(np.isfinite(entered), entered, np.where(v.kind >= 0, v.at, end))
    g_end = (
        np.minimum.reduce([entered[gd], roles["left"].to_numpy()[row] - 0.5, end[gd]])
        if len(gd)
        else np.zeros(0)
    )
    g_end = np.maximum(g_end, g_start + 0.05)
    gt = np.minimum(
        g_start + rng.random(len(gd)) * (g_end - g_start), np.minimum(end[gd], now - 0.01)
    )
    frames.append(_frame(gd, gt, roles["contact"].to_numpy()[row] if len(gd) else gd, 4))

    # Meetings already booked for the coming three weeks, fewer on deals gone quiet.
    live = ~d.crm_closed & ~d.phantom & (d.m > 0)
    quiet_now = quiet & (quiet_from < now)
    book = live & (rng.random(n) < np.where(quiet_now, 0.12, 0.55))
    bd = np.repeat(np.flatnonzero(book), 1 + (rng.random(int(book.sum())) < 0.3))
    bj = first[bd] + (rng.random(len(bd)) * d.m[bd] ** 0.5).astype(np.int64)
    b_left = roles["left"].to_numpy()[bj] if len(bd) else np.zeros(0)
    bt = now + rng.uniform(0.1, 21, len(bd))
    bd, bt, bj = bd[b_left > bt], bt[b_left > bt], bj[b_left > bt]
    frames.append(_frame(bd, bt, roles["contact"].to_numpy()[bj] if len(bd) else bd, 7))
    return pl.concat(frames, how="vertical_relaxed")


KINDS = _MIX + [("meeting", "two_way", "scheduled", 0.0)]
_TYPES = ["email", "call", "meeting", "task"]
_TOUCH = {
    "email": ["Checking in", "Event invitation", "Customer newsletter follow-up"],
    "call": ["Account check-in call", "Prospecting call", "Renewal reminder"],
}
# Subject codes: 0-19 deal subjects by type and stage, +20 for replies; 40-45 touches, +6 for replies.
_SUBJECTS = [t for k in _TYPES for t in _SUBJECT[k]]
_SUBJECTS = _SUBJECTS + ["Re: " + t for t in _SUBJECTS] + _TOUCH["email"] + _TOUCH["call"]
_SUBJECTS = _SUBJECTS + ["Re: " + t for t in _TOUCH["email"] + _TOUCH["call"]]


def _enum(codes: np.ndarray, values: list) -> pl.Series:
    """Small-vocabulary text as a polars Enum (a byte per row, not a string)."""
    uniq = list(dict.fromkeys(v for v in values if v is not None))
    mapping = {i: v for i, v in enumerate(values)}
    return pl.Series(codes).replace_strict(mapping, return_dtype=pl.Enum(uniq))


def kind_columns(kind: np.ndarray, subject: np.ndarray) -> dict[str, pl.Series]:
    return {
        "activity_type": _enum(kind, [k[0] for k in KINDS]),
        "direction": _enum(kind, [k[1] for k in KINDS]),
        "status": _enum(kind, [k[2] for k in KINDS]),
        "subject": _enum(subject, _SUBJECTS),
    }


def deal_subjects(d: Deals, acts: pl.DataFrame) -> np.ndarray:
    """A subject code that fits the deal's stage at the time of each activity."""
    deal = acts["deal"].to_numpy()
    t = acts["t"].to_numpy()
    stage = d.first[deal].astype(np.int16)
    for k in range(4):  # column by column: no (rows x 4) copy; the furthest entered
        stage = np.where(d.entries[deal, k] <= t, np.int16(k + 1), stage)
    kind = acts["kind"].to_numpy()
    type_idx = np.array([_TYPES.index(k[0]) for k in KINDS])[kind]
    inbound = np.array([k[1] == "inbound" for k in KINDS])[kind]
    return (type_idx * 5 + stage + 20 * inbound).astype(np.int16)


def durations(kind: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Minutes: meetings 30-60, connected calls 5-40, voicemails 1, emails and tasks none."""
    n = len(kind)
    mins = np.where(
        np.isin(kind, [4, 5, 7]),
        rng.choice([30, 45, 60], size=n),
        np.where(kind == 3, rng.integers(5, 40, n), np.where(kind == 2, 1, -1)),
    )
    return pl.Series(mins.astype(np.int16)).replace(-1, None)


def account_touches(
    rng: np.random.Generator,
    clock: Clock,
    start: np.ndarray,
    left: np.ndarray,
    n: int,
    closed: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> pl.DataFrame:
    """(contact row, t, kind, subject code) for touches on accounts outside any deal, in
    the owner's local time; `closed(contact, day)` says the owner's office is shut."""
    live = np.flatnonzero(start < clock.now)
    c = live[rng.integers(0, len(live), n)]
    stop = np.minimum(np.nan_to_num(left[c], nan=np.inf), clock.now)
    t = start[c] + rng.random(n) * np.maximum(stop - start[c], 0.1)
    t = clock.working(rng, t, np.minimum(t, clock.now - 0.01), closed=lambda day: closed(c, day))
    t = np.maximum(t, start[c])
    kind = rng.choice([0, 2, 1], size=n, p=[0.6, 0.25, 0.15])  # outbound email, voicemail, reply
    subject = 40 + np.where(kind == 2, 3, 0) + rng.integers(0, 3, n) + np.where(kind == 1, 6, 0)
    return pl.DataFrame(
        {
            "contact": c.astype(np.int32),
            "t": np.minimum(t, clock.now - 0.01),
            "kind": kind.astype(np.int8),
            "subject": subject.astype(np.int16),
        }
    )
