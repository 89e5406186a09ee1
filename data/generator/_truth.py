"""Ground truth: the true entity of every record, true firmographics, what happened to
every deal, every injected defect, and the revenue reps are judged against."""

from __future__ import annotations

import numpy as np
import polars as pl

from revstack.data.generator._build import World
from revstack.data.generator._crm import utc_days
from revstack.data.generator._defects import defect_rows
from revstack.data.generator._history import VIOLATION_KINDS

__all__ = ["truth_tables"]


def truth_tables(w: World, crm: dict, required: dict[str, list[str]]) -> dict[str, pl.DataFrame]:
    d, clock = w.deals, w.clock
    maps = crm["_maps"]
    acc, con = w.accounts, w.people.contacts
    out: dict[str, pl.DataFrame] = {}
    out["truth.entities"] = pl.concat(
        [
            acc.select(
                object_type=pl.lit("accounts"), record_id="account_id", true_entity_id="account_id"
            ),
            maps["accounts"].select(
                object_type=pl.lit("accounts"), record_id="record_id", true_entity_id="original"
            ),
            con.select(
                object_type=pl.lit("contacts"), record_id="contact_id", true_entity_id="contact_id"
            ),
            maps["contacts"].select(
                object_type=pl.lit("contacts"), record_id="record_id", true_entity_id="original"
            ),
        ]
    )
    firmo = acc.select("account_id", "industry", "employees", "annual_revenue", "country")
    out["truth.firmographics"] = pl.concat(
        [
            firmo,
            maps["accounts"]
            .join(firmo, left_on="original", right_on="account_id")
            .select(
                account_id="record_id",
                industry="industry",
                employees="employees",
                annual_revenue="annual_revenue",
                country="country",
            ),
        ]
    )

    opp_id = crm["crm.opportunities"]["opportunity_id"]
    pushes = w.pushes.sort("deal", "t")
    slip_count = np.bincount(pushes["deal"].to_numpy(), minlength=d.n)
    out["truth.deal_outcomes"] = pl.DataFrame(
        {
            "opportunity_id": opp_id,
            "outcome": np.where(d.closed, np.where(d.won, "won", "lost"), "open"),
            "outcome_date": np.where(d.closed, clock.date(d.outcome), np.datetime64("NaT")),
            "won_amount": pl.Series(np.where(d.closed & d.won, d.amount, np.nan)).fill_nan(None),
            "is_phantom": d.phantom,
            "slip_count": slip_count,
            "win_probability": d.p_win,
        }
    )
    out["truth.slips"] = pushes.select(
        opportunity_id=opp_id.gather(pushes["deal"]),
        slipped_at=pl.Series(
            clock.ts(
                utc_days(
                    w,
                    pushes["t"].to_numpy(),
                    w.team.seat_zone[d.seat[pushes["deal"].to_numpy()]],
                )
            )
        ),
        old_close_date=pl.Series(clock.date(pushes["old"].to_numpy())),
        new_close_date=pl.Series(clock.date(pushes["close"].to_numpy())),
        out_of_period=pl.Series(
            clock.quarter(pushes["close"].to_numpy()) > clock.quarter(pushes["old"].to_numpy())
        ),
    )
    # Champions on the CRM's deals who have left while the deal was open in the CRM (or,
    # rarely, before: a rep named someone who had already gone).
    r = (
        crm["crm.opportunity_contacts"]
        .select("role")
        .with_columns(d.roles.select("deal", "contact", "left"))
    )
    rd = r["deal"].to_numpy()
    left = r["left"].to_numpy()
    end = np.where(d.crm_closed, d.outcome, clock.now)[rd]
    champ = (r["role"].to_numpy() == "champion") & (left <= end)
    out["truth.champion_departures"] = pl.DataFrame(
        {
            "contact_id": con["contact_id"].gather(r["contact"].to_numpy()[champ]),
            "opportunity_id": opp_id.gather(rd[champ]),
            "departed_at": clock.date(left[champ]),
        }
    )
    out["truth.rep_profiles"] = w.team.traits
    out["truth.contact_changes"] = w.changes.with_columns(
        changed_at=pl.Series(clock.ts(w.changes["at"].to_numpy()))
    ).drop("at")

    # -- every defect -----------------------------------------------------------------
    parts = [
        maps["accounts"].select(
            defect_rows(
                "duplicate_account",
                "accounts",
                "record_id",
                None,
                pl.format("{}: duplicate of {}", "kind", "original"),
            )
        ),
        maps["contacts"].select(
            defect_rows(
                "duplicate_contact",
                "contacts",
                "record_id",
                None,
                pl.format("{}: duplicate of {}", "kind", "original"),
            )
        ),
        maps["wrong"],
        crm["_provider_defects"],
    ]
    pk = {"accounts": "account_id", "contacts": "contact_id", "opportunities": "opportunity_id"}
    for obj, fields in required.items():  # every blank required field, planted or not
        table = crm[f"crm.{obj}"]
        for f in fields:
            blank = pl.col(f).is_null() | (pl.col(f).cast(pl.String).str.strip_chars() == "")
            parts.append(
                table.filter(blank).select(
                    defect_rows("missing_required_field", obj, pk[obj], f, "blank")
                )
            )
    vk = w.violations.kind
    vi = np.flatnonzero(vk >= 0)
    parts.append(
        pl.DataFrame(
            {
                "record_id": opp_id.gather(vi),
                "detail": np.array([k[1] for k in VIOLATION_KINDS])[vk[vi]],
            }
        ).select(
            defect_rows("stage_violation", "opportunities", "record_id", "stage", pl.col("detail"))
        )
    )
    ph = np.flatnonzero(d.phantom)
    parts.append(
        pl.DataFrame({"record_id": opp_id.gather(ph), "lost": clock.date(d.outcome[ph])}).select(
            defect_rows(
                "phantom_deal",
                "opportunities",
                "record_id",
                None,
                pl.format("lost on {}, still open in the CRM", "lost"),
            )
        )
    )
    oc = crm["crm.opportunity_contacts"].filter(pl.col("role") == "champion")
    gone = (
        crm["crm.contacts"]
        .filter(~pl.col("is_active") | pl.col("email_bounced"))
        .select("contact_id")
    )
    open_deals = crm["crm.opportunities"].filter(~pl.col("is_closed")).select("opportunity_id")
    departed = (
        oc.join(gone, on="contact_id")
        .join(open_deals, on="opportunity_id")
        .sort("opportunity_id", "contact_id")
    )
    parts.append(
        departed.select(
            defect_rows(
                "departed_champion",
                "opportunities",
                "opportunity_id",
                "champion",
                pl.format("champion {} has left", "contact_id"),
            )
        )
    )
    out["truth.defects"] = pl.concat(parts, how="vertical_relaxed")
    return out
