"""The CRM as it is: what the simulated company looks like once people have keyed it in,
duplicates, blanks, stale values and all."""

from __future__ import annotations

import numpy as np
import polars as pl

from revstack.data.generator._activities import (
    account_touches,
    deal_subjects,
    durations,
    kind_columns,
)
from revstack.data.generator._build import World
from revstack.data.generator._config import Rates
from revstack.data.generator._deals import COMPETITORS, OPP_TYPES, PRODUCTS, SOURCES
from revstack.data.generator._defects import (
    blank,
    duplicate_accounts,
    duplicate_contacts,
    wrong_firmographics,
)
from revstack.data.generator._history import probabilities, stage_names
from revstack.data.generator._people import occupant_at
from revstack.data.generator._util import ids

__all__ = ["crm_tables", "utc_days"]

_NEXT_STEP = [
    "Qualify budget and timeline",
    "Book the discovery call",
    "Map stakeholders and success criteria",
    "Send proposal and pricing",
    "Finalise contract terms",
]


def _ts(w: World, col: str) -> pl.Expr:
    """Float days since the history's start -> timestamp."""
    return (
        pl.lit(w.clock.start)
        + pl.duration(microseconds=(pl.col(col) * 86_400e6).round().cast(pl.Int64))
    ).cast(pl.Datetime("us"))


def utc_days(w: World, days: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """The simulation's moments are the owner's wall clock: to UTC, as the CRM stores them.
    What happened by as-of stays before it (a western team's last evening is clipped to
    the last second before the export)."""
    d = np.asarray(days, dtype=float)
    out = w.team.zones.to_utc(d, zone)
    return np.where(d <= w.clock.now, np.minimum(out, w.clock.now - 1 / 86_400), out)


def crm_tables(rng: np.random.Generator, w: World, rates: Rates) -> dict[str, pl.DataFrame]:
    d, team, clock, now = w.deals, w.team, w.clock, w.clock.now
    acc = w.accounts
    zones = team.zones
    deal_zone = team.seat_zone[d.seat]
    out: dict[str, pl.DataFrame] = {}
    out["crm.users"] = team.users.with_columns(created_at=_ts(w, "hired")).drop(
        "first", "last", "hired"
    )

    # -- accounts ---------------------------------------------------------------------
    seat_owner = team.rep_ids[occupant_at(team, acc["seat"].to_numpy(), np.full(len(acc), now))]
    won_acc = np.zeros(len(acc), bool)
    won_acc[d.account[d.crm_closed & d.won]] = True
    base = acc.with_columns(
        owner_id=pl.Series(seat_owner),
        account_type=pl.when(pl.col("customer_at_start") | pl.Series(won_acc))
        .then(pl.lit("customer"))
        .otherwise(pl.lit("prospect")),
    )
    active_reps = team.rep_ids[~np.isfinite(team.rep_leave)]
    accounts, acc_map = duplicate_accounts(rng, base, rates.duplicate_accounts, now, active_reps)
    is_dup = np.r_[np.zeros(len(acc), bool), np.ones(len(acc_map), bool)]
    accounts = blank(rng, accounts, rates.missing["accounts"], rates.duplicate_blank, is_dup)
    accounts = blank(rng, accounts, rates.sparse["accounts"], {}, is_dup)
    accounts, wrong = wrong_firmographics(rng, accounts, rates.wrong_firmographics)
    accounts = accounts.with_columns(
        updated=pl.col("created") + pl.Series(rng.random(len(accounts))) * (now - pl.col("created"))
    )
    out["crm.accounts"] = accounts.with_columns(
        created_at=_ts(w, "created"), updated_at=_ts(w, "updated")
    )
    first_dup = acc_map.group_by("original", maintain_order=True).agg(
        pl.col("record_id", "created").first()
    )
    dup_of = dict(zip(first_dup["original"], first_dup["record_id"], strict=True))
    dup_created = (
        pl.Series(acc["account_id"])
        .replace_strict(
            dict(zip(first_dup["original"], first_dup["created"], strict=True)),
            default=np.inf,
            return_dtype=pl.Float64,
        )
        .to_numpy()
    )  # per true account: when its first duplicate was keyed in (inf: none)
    dup_id = acc["account_id"].replace_strict(dup_of, default=None, return_dtype=pl.String)

    # -- contacts ---------------------------------------------------------------------
    c = w.people.contacts
    a = c["account_idx"].to_numpy()
    move = (c["start"].to_numpy() > dup_created[a]) & (rng.random(len(c)) < 0.4)
    contacts = c.with_columns(
        account_id=pl.when(pl.Series(move)).then(dup_id.gather(a)).otherwise("account_id"),
        owner_id=pl.Series(seat_owner[a]),
    )
    contacts, con_map = duplicate_contacts(rng, contacts, rates.duplicate_contacts, now, dup_of)
    is_dup = np.r_[np.zeros(len(c), bool), np.ones(len(con_map), bool)]
    contacts = blank(rng, contacts, rates.missing["contacts"], rates.duplicate_blank, is_dup)
    out["crm.contacts"] = contacts.with_columns(
        created_at=_ts(w, "start"), updated_at=_ts(w, "updated")
    )
    contact_id = c["contact_id"].to_numpy()

    # -- opportunities and their history ---------------------------------------------------
    rep_no = pl.Series(team.rep_ids).str.slice(1).cast(pl.Int32).to_numpy()
    dup_no = dup_id.str.slice(1).cast(pl.Int32).to_numpy()
    moved = (d.created > dup_created[d.account]) & (rng.random(d.n) < 0.35)
    opp_acc_no = np.where(moved, dup_no[d.account] if len(dup_no) else 0, d.account + 1).astype(
        np.int32
    )
    opp_account = pl.select(
        pl.when(pl.lit(pl.Series(moved)))
        .then(pl.lit(dup_id.gather(d.account)))
        .otherwise(pl.lit(acc["account_id"].gather(d.account)))
    ).to_series()
    h = w.history
    last = h.group_by("deal", maintain_order=True).agg(
        pl.col("t", "stage", "amount", "close", "category").last()
    )
    changed = (
        h.filter(pl.col("stage_event"))
        .group_by("deal", maintain_order=True)
        .agg(pl.col("t").max().alias("changed"))
    )
    last = last.join(changed, on="deal", how="left", maintain_order="left")
    stage = last["stage"].to_numpy()
    opp_id = ids("O", d.n, 8)
    suffix = np.array(["", " Expansion", " Renewal"])[d.dtype]
    opps = pl.DataFrame(
        {
            "deal": np.arange(d.n),
            "opportunity_id": opp_id,
            "account_id": opp_account,
            "owner_id": team.rep_ids[d.owner_final],
            "name": pl.Series(acc["name"].to_numpy()[d.account])
            + " - "
            + pl.Series(PRODUCTS[d.product])
            + pl.Series(suffix),
            "stage_idx": stage,
            "amount": last["amount"],
            "close": last["close"],
            "forecast_category": last["category"],
            "opportunity_type": OPP_TYPES[d.dtype],
            "lead_source": SOURCES[d.source],
            "product": PRODUCTS[d.product],
            "competitor": pl.Series(COMPETITORS[d.competitor]).replace("", None),
            "next_step": pl.Series(np.array(_NEXT_STEP)[np.minimum(stage, 4)]).set(
                pl.Series((stage >= 5) | (rng.random(d.n) < 0.3)), None
            ),
            "is_closed": d.crm_closed,
            "is_won": d.crm_closed & d.won,
            "created": utc_days(w, d.created, deal_zone),
            "updated": utc_days(w, last["t"].to_numpy(), deal_zone),
            "changed": utc_days(w, last["changed"].to_numpy(), deal_zone),
        }
    )
    opps = blank(
        rng,
        opps.rename({"close": "close_date"}),
        rates.missing["opportunities"],
        {},
        np.zeros(d.n, bool),
    )
    opps = blank(rng, opps, rates.sparse["opportunities"], {}, np.zeros(d.n, bool))
    undated = (stage == 0) & ~d.crm_closed & (rng.random(d.n) < rates.undated_prospecting)
    blanks = opps.select(
        "deal",
        amount_b=pl.col("amount").is_null(),
        close_b=pl.col("close_date").is_null(),
        cat_b=pl.col("forecast_category").is_null(),
    )
    opps = opps.with_columns(
        stage=stage_names(pl.col("stage_idx")),
        probability=probabilities(stage_names(pl.col("stage_idx"))),
        close_date=pl.when(pl.col("close_date").is_nan())
        .then(None)
        .otherwise(pl.col("close_date")),
    )
    out["crm.opportunities"] = opps.with_columns(
        close_date=pl.Series(clock.date(opps["close_date"].fill_null(np.nan).to_numpy())),
        created_at=pl.when(pl.Series(undated)).then(None).otherwise(_ts(w, "created")),
        updated_at=_ts(w, "updated"),
        stage_changed_at=_ts(w, "changed"),
    )
    reassign = np.where(
        team.rep_leave[d.owner_first] < d.crm_end, team.rep_leave[d.owner_first], np.inf
    )
    hd = h["deal"].to_numpy()
    ht = h["t"].to_numpy()
    hist = (
        h.join(blanks, on="deal", how="left", maintain_order="left")
        .with_columns(t_utc=pl.Series(utc_days(w, ht, deal_zone[hd])))
        .with_columns(
            history_id_no=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
            opportunity_id_no=pl.col("deal") + 1,
            changed_at=_ts(w, "t_utc"),
            stage=stage_names(pl.col("stage")),
            amount=pl.when("amount_b").then(None).otherwise("amount"),
            close=pl.when(pl.col("close_b") | pl.col("close").is_nan())
            .then(None)
            .otherwise("close"),
            forecast_category=pl.when("cat_b").then(None).otherwise("category"),
            changed_by_no=pl.Series(
                rep_no[np.where(ht < reassign[hd], d.owner_first[hd], d.owner_final[hd])]
            ),
        )
        .with_columns(probability=probabilities(pl.col("stage")))
    )
    out["crm.opportunity_history"] = hist.select(
        "history_id_no",
        "opportunity_id_no",
        "changed_at",
        "stage",
        "amount",
        "forecast_category",
        "probability",
        "changed_by_no",
        close_date=pl.Series(clock.date(hist["close"].fill_null(np.nan).to_numpy())),
    )
    del hist, h

    # -- buying roles -----------------------------------------------------------------
    roles = d.roles
    rd = roles["deal"].to_numpy()
    vk = w.violations.kind[rd]
    role = roles["role"].to_numpy().copy()
    role[(vk == 0) & (role == "economic_buyer")] = "influencer"  # the criterion they break
    role[(vk == 3) & (role == "champion")] = "user"
    out["crm.opportunity_contacts"] = pl.DataFrame(
        {
            "opportunity_id": opp_id.to_numpy()[rd],
            "contact_id": contact_id[roles["contact"].to_numpy()],
            "role": role,
            "is_primary": roles["j"].to_numpy() == 0,
            "added": utc_days(
                w, np.maximum(d.created[rd], roles["start"].to_numpy()), deal_zone[rd]
            ),
        }
    ).with_columns(added_at=_ts(w, "added"))

    # -- activities (numbers and enums: the writer builds the id strings) ----------------
    acts = w.activities
    ad = acts["deal"].to_numpy()
    kind = acts["kind"].to_numpy()
    subject = deal_subjects(d, acts)
    t0 = acts["t"].to_numpy()
    con = acts["contact"].to_numpy()
    # At work: never later than the simulation had it (what follows must still follow),
    # never before the deal or the person existed (then the simulated moment stands).
    booked = kind == 7
    zone = deal_zone[ad]
    at = clock.working(
        rng, t0, np.where(booked, np.inf, t0), closed=lambda day: zones.closed(zone, day)
    )
    born = np.where(con >= 0, w.people.contacts["start"].to_numpy()[np.maximum(con, 0)], -np.inf)
    early = at < np.maximum(d.created[ad], born)
    at = np.where(booked, np.where(at <= now, at + 7, at), np.where(early, t0, at))
    utc = utc_days(w, at, zone)
    deal_part = pl.DataFrame(
        {
            "t": np.where(booked & (utc <= now), utc + 7, utc),  # booked: still ahead in UTC
            "opportunity_id_no": (ad + 1).astype(np.int32),
            "account_id_no": opp_acc_no[ad],
            "contact_id_no": pl.Series(con + 1, dtype=pl.Int32).replace(0, None),
            "owner_id_no": rep_no[
                np.where(at < reassign[ad], d.owner_first[ad], d.owner_final[ad])
            ],
            "kind": kind,
            "subject_code": subject,
        }
    )
    del acts, ad, at, con, t0, utc
    p = w.people.contacts
    contact_zone = team.seat_zone[p["seat"].to_numpy()]
    touches = account_touches(
        rng,
        clock,
        p["start"].to_numpy(),
        p["left"].to_numpy(),
        len(deal_part) // 10,
        lambda c, day: zones.closed(contact_zone[c], day),
    )
    tc = touches["contact"].to_numpy()
    tt = touches["t"].to_numpy()
    touch_part = pl.DataFrame(
        {
            "t": utc_days(w, tt, contact_zone[tc]),
            "opportunity_id_no": pl.Series([None] * 0, dtype=pl.Int32).extend_constant(
                None, len(tc)
            ),
            "account_id_no": contacts["account_id"].gather(tc).str.slice(1).cast(pl.Int32),
            "contact_id_no": (tc + 1).astype(np.int32),
            "owner_id_no": rep_no[occupant_at(team, p["seat"].to_numpy()[tc], tt)],
            "kind": touches["kind"],
            "subject_code": touches["subject"],
        }
    )
    allacts = pl.concat([deal_part, touch_part], how="vertical_relaxed").sort(
        "t", "opportunity_id_no", "contact_id_no", nulls_last=True
    )
    del deal_part, touch_part
    k = allacts["kind"].to_numpy()
    out["crm.activities"] = allacts.with_columns(
        activity_id_no=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        occurred_at=_ts(w, "t"),
        duration_minutes=durations(k, rng),
        **kind_columns(k, allacts["subject_code"].to_numpy()),
    ).drop("t", "kind", "subject_code")
    out["_maps"] = {
        "accounts": acc_map,
        "contacts": con_map,
        "wrong": wrong,
        "opp_account": opp_account,
    }  # type: ignore[assignment]
    return out
