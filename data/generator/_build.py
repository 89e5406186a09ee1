"""Assemble the company: every crm, ref and truth table as a polars frame."""

from __future__ import annotations

import datetime as dt
from importlib import resources

import numpy as np
import polars as pl
import yaml

from data.generator._company import make_accounts, make_contacts, make_users
from data.generator._config import RATES, Scale
from data.generator._deals import make_deals
from data.generator._defects import (
    blank_fields,
    duplicate_accounts,
    duplicate_contacts,
    provider,
    wrong_firmographics,
)
from data.generator._forecasts import revenue, submissions
from data.generator._timeline import activities, final_roles, history_and_slips
from data.progress import Progress, report

__all__ = ["build"]

_PRODUCTS = np.array(
    ["Platform", "Analytics", "Automation", "Platform + Analytics", "Enterprise Suite"]
)
_COMPETITORS = np.array(["Northwind", "Contoso", "Globex", "Initech", None], dtype=object)
_NEWS = ["raised a funding round", "hired a new CFO", "announced layoffs", "launched a new product line",
         "was acquired", "opened an office in Singapore", "reported record revenue", "named a new CEO"]  # fmt: skip
STEPS = 6


def _required_fields() -> dict[str, list[str]]:
    """The required fields of the canonical definitions (read as plain YAML: no contracts import)."""
    text = (resources.files("contracts") / "definitions.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["required_fields"]


def build(
    rng: np.random.Generator, scale: Scale, as_of_date: dt.date, progress: Progress | None = None
) -> dict[str, pl.DataFrame]:
    as_of = dt.datetime.combine(as_of_date, dt.time())
    now = np.datetime64(as_of, "us")
    start = as_of - dt.timedelta(days=round(365.25 * scale.years))
    report(progress, "company", 0, STEPS)
    users, traits = make_users(rng, scale, start)
    accounts = make_accounts(rng, scale, users, start, as_of)
    contacts = make_contacts(rng, scale, accounts, as_of)
    report(progress, "company", 1, STEPS)
    d = make_deals(rng, scale, accounts, contacts, traits, start, as_of)
    o = d.opps
    n = len(o)
    open_crm = ~o["crm_closed"].to_numpy()
    current = o["current"].to_numpy()
    candidates = np.flatnonzero(open_crm & ~o["phantom"].to_numpy() & (current < 4))
    violators = np.zeros(n, bool)
    violators[
        rng.choice(
            candidates,
            size=min(len(candidates), round(RATES.stage_violations * open_crm.sum())),
            replace=False,
        )
    ] = True
    stage_idx = np.where(violators, np.maximum(current, 3), current)
    hist, slips, final = history_and_slips(rng, d, now, violators)
    roles = final_roles(rng, d, stage_idx, open_crm, violators)
    acts = activities(rng, d, scale.activity_per_week, now, stage_idx, open_crm, violators)
    report(progress, "company", 2, STEPS)

    # -- the CRM's deals, as it records them ----------------------------------
    ids = o["opportunity_id"].to_numpy()
    stage_changed = (
        hist.filter(pl.col("stage_event"))
        .group_by("deal")
        .agg(pl.col("t").max().alias("stage_changed_at"))
    )
    fin = final.join(stage_changed, on="deal", how="left").sort("deal")
    acct_names = accounts["name"].to_numpy()[o["account_idx"].to_numpy()]
    product = rng.choice(_PRODUCTS, size=n)
    opps = pl.DataFrame({
        "opportunity_id": ids, "account_id": o["account_id"], "owner_id": o["owner_id"],
        "name": np.char.add(np.char.add(acct_names.astype(str), " - "), product.astype(str)),
        "stage": fin["stage"], "amount": fin["amount"], "close_date": fin["close"].dt.date(),
        "forecast_category": fin["category"], "probability": fin["probability"],
        "opportunity_type": rng.choice(["new_business", "expansion", "renewal"], size=n, p=[0.6, 0.28, 0.12]),
        "lead_source": o["lead_source"], "product": product, "competitor": rng.choice(_COMPETITORS, size=n),
        "next_step": None, "is_closed": o["crm_closed"], "is_won": o["crm_closed"] & o["won"],
        "created_at": o["created_at"], "updated_at": fin["t"], "stage_changed_at": fin["stage_changed_at"],
    })  # fmt: skip
    history = hist.select(
        history_id=pl.format("H{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)),
        opportunity_id=pl.Series(ids[hist["deal"].to_numpy()]), changed_at="t", stage="stage", amount="amount",
        close_date=pl.col("close").dt.date(), forecast_category="category", probability="probability",
        changed_by=pl.Series(o["owner_id"].to_numpy()[hist["deal"].to_numpy()]),
    )  # fmt: skip
    contact_ids = contacts["contact_id"].to_numpy()
    opp_contacts = roles.select(
        opportunity_id=pl.Series(ids[roles["deal"].to_numpy()]), contact_id=pl.Series(contact_ids[roles["contact_idx"].to_numpy()]),
        role="role", is_primary=pl.col("j") == 0, added_at=pl.Series(o["created_at"].to_numpy()[roles["deal"].to_numpy()]),
    ).unique(["opportunity_id", "contact_id"], keep="first", maintain_order=True)  # fmt: skip
    acts_df = acts.select(
        activity_id=pl.format("T{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)),
        activity_type="type", direction="direction", status="status", occurred_at="t",
        account_id=pl.Series(o["account_id"].to_numpy()[acts["deal"].to_numpy()]),
        contact_id=pl.Series(contact_ids[acts["contact_idx"].to_numpy()]),
        opportunity_id=pl.Series(ids[acts["deal"].to_numpy()]),
        owner_id=pl.Series(o["owner_id"].to_numpy()[acts["deal"].to_numpy()]),
        subject=pl.col("type") + pl.lit(" with buyer"), duration_minutes=pl.when(pl.col("type") == "email").then(None).otherwise(30),
    )  # fmt: skip
    report(progress, "company", 3, STEPS)

    # -- defects, each kept in truth ------------------------------------------
    truth_firmo = accounts.select(
        "account_id", "industry", "employees", "annual_revenue", "country"
    )
    reps = users.filter(pl.col("role") == "rep")["user_id"].to_numpy()
    ref, provider_defects = provider(rng, accounts, RATES, as_of_date)
    crm_accounts, firmo_defects = wrong_firmographics(rng, accounts, RATES.wrong_firmographics)
    crm_accounts, acc_map, dup_acc_defects = duplicate_accounts(
        rng, crm_accounts, RATES.duplicate_accounts, reps
    )
    crm_contacts, con_map, dup_con_defects = duplicate_contacts(
        rng, contacts, RATES.duplicate_contacts
    )
    # Split contacts and deals across duplicates, as real CRMs do.
    first_dup = acc_map.group_by("original", maintain_order=True).agg(
        pl.col("record_id").first().alias("dup")
    )
    crm_contacts = crm_contacts.join(first_dup, left_on="account_id", right_on="original", how="left").with_columns(
        account_id=pl.when(pl.col("dup").is_not_null() & pl.Series(rng.random(len(crm_contacts)) < 0.3)).then("dup").otherwise("account_id")
    ).drop("dup")  # fmt: skip
    opps = opps.join(first_dup, left_on="account_id", right_on="original", how="left").with_columns(
        account_id=pl.when(pl.col("dup").is_not_null() & pl.Series(rng.random(len(opps)) < 0.2)).then("dup").otherwise("account_id")
    ).drop("dup")  # fmt: skip
    acts_df = acts_df.drop("account_id").join(
        opps.select("opportunity_id", "account_id"), on="opportunity_id", how="left"
    )
    miss = RATES.missing
    crm_accounts, _ = blank_fields(rng, crm_accounts, miss["accounts"])
    crm_contacts, _ = blank_fields(rng, crm_contacts, miss["contacts"])
    opps, masks = blank_fields(rng, opps, miss["opportunities"])
    blanked = {
        f: set(opps["opportunity_id"].filter(pl.Series(m)).to_list()) for f, m in masks.items()
    }
    for f, col in (
        ("amount", "amount"),
        ("close_date", "close_date"),
        ("forecast_category", "forecast_category"),
    ):
        history = history.with_columns(
            pl.when(pl.col("opportunity_id").is_in(list(blanked[f])))
            .then(None)
            .otherwise(pl.col(col))
            .alias(col)
        )
    report(progress, "company", 4, STEPS)

    # Champions gone from open deals (contacts decay; nobody told the CRM about the deal).
    champ = (
        opp_contacts.filter(pl.col("role") == "champion")
        .join(contacts.select("contact_id", "left_at", "is_active"), on="contact_id")
        .join(opps.select("opportunity_id", "is_closed"), on="opportunity_id")
    )
    departed = champ.filter(~pl.col("is_closed") & ~pl.col("is_active"))
    deal_ids = pl.Series(ids)
    # Every blank required field is a defect, whether blanked on purpose or left empty
    # when a duplicate was keyed in.
    missing = pl.concat([
        data.filter(pl.col(f).is_null() | (pl.col(f).cast(pl.String).str.strip_chars() == ""))
        .select(object_type=pl.lit(obj), record_id=pk, field=pl.lit(f))
        for data, obj, pk in ((crm_accounts, "accounts", "account_id"), (crm_contacts, "contacts", "contact_id"), (opps, "opportunities", "opportunity_id"))
        for f in _required_fields()[obj]
    ])  # fmt: skip
    defects = pl.concat([
        dup_acc_defects, dup_con_defects, firmo_defects, provider_defects,
        missing.select(defect_class=pl.lit("missing_required_field"), object_type="object_type", record_id="record_id", field="field", detail=pl.lit("blank")),
        pl.DataFrame({"defect_class": "stage_violation", "object_type": "opportunities",
                      "record_id": deal_ids.filter(pl.Series(violators)), "field": "stage",
                      "detail": "in proposal without an economic buyer"}),
        pl.DataFrame({"defect_class": "phantom_deal", "object_type": "opportunities",
                      "record_id": deal_ids.filter(o["phantom"]), "field": None, "detail": "lost in reality, open in the CRM"}),
        departed.select(defect_class=pl.lit("departed_champion"), object_type=pl.lit("opportunities"),
                        record_id="opportunity_id", field=pl.lit("champion"), detail=pl.format("champion {} left", "contact_id")),
    ], how="vertical_relaxed")  # fmt: skip

    entities = pl.concat([
        pl.DataFrame({"object_type": "accounts", "record_id": accounts["account_id"], "true_entity_id": accounts["account_id"]}),
        acc_map.select(object_type=pl.lit("accounts"), record_id="record_id", true_entity_id="original"),
        pl.DataFrame({"object_type": "contacts", "record_id": contacts["contact_id"], "true_entity_id": contacts["contact_id"]}),
        con_map.select(object_type=pl.lit("contacts"), record_id="record_id", true_entity_id="original"),
    ])  # fmt: skip
    closed_real = o["closed"].to_numpy()
    slip_count = slips.group_by("opportunity_id").len()
    outcomes = o.select(
        "opportunity_id",
        outcome=pl.when(pl.col("closed")).then(pl.when(pl.col("won")).then(pl.lit("won")).otherwise(pl.lit("lost"))).otherwise(pl.lit("open")),
        outcome_date=pl.when(pl.col("closed")).then(pl.col("outcome_at").dt.date()),
        won_amount=pl.when(pl.col("closed") & pl.col("won")).then(pl.col("amount")),
        is_phantom="phantom", win_probability="p_win",
    ).join(slip_count, on="opportunity_id", how="left").with_columns(slip_count=pl.col("len").fill_null(0).cast(pl.Int32)).drop("len")  # fmt: skip
    report(progress, "company", 5, STEPS)

    real = o.with_columns(amount=pl.Series(o["amount"]))
    rev = pl.concat([revenue(real, "month"), revenue(real, "quarter")]).filter(
        pl.col("period_start") <= as_of_date
    )
    subs = submissions(rng, real, traits, start, as_of)
    n_news = int(0.3 * len(accounts))
    pick = rng.choice(len(accounts), size=n_news)
    news = pl.DataFrame({
        "news_id": [f"N{i:08d}" for i in range(1, n_news + 1)],
        "domain": accounts["domain"].to_numpy()[pick], "company_name": accounts["name"].to_numpy()[pick],
        "published_at": now - (rng.uniform(1, 365, n_news) * 86_400e6).astype("timedelta64[us]"),
        "headline": [f"{accounts['name'][int(i)]} {h}" for i, h in zip(pick, rng.choice(_NEWS, size=n_news), strict=True)],
        "summary": None, "url": None, "source": "generated_newswire",
    })  # fmt: skip
    report(progress, "company", STEPS, STEPS)
    cycles = ((o["outcome_at"] - o["created_at"]).dt.total_days()).filter(pl.Series(closed_real))
    return {
        "crm.users": users, "crm.accounts": crm_accounts, "crm.contacts": crm_contacts,
        "crm.opportunities": opps, "crm.opportunity_contacts": opp_contacts, "crm.opportunity_history": history,
        "crm.activities": acts_df, "crm.forecast_submissions": subs, "ref.enrichment": ref, "ref.news": news,
        "truth.entities": entities, "truth.defects": defects, "truth.firmographics": truth_firmo,
        "truth.deal_outcomes": outcomes, "truth.slips": slips, "truth.rep_profiles": traits,
        "truth.champion_departures": departed.select("contact_id", "opportunity_id", departed_at=pl.col("left_at").dt.date()),
        "truth.revenue": rev, "_cycles": cycles,
    }  # fmt: skip
