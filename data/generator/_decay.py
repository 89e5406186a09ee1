"""Silent decay beside the visible kind: people who stay change title, email or phone, and
the CRM catches only some of it (what it misses is a stale value). Leavers the CRM never
marks are planted in `_accounts` (`_signal`); every change, caught or not, is kept for
truth.contact_changes so the hygiene agent can be judged without reading truth."""

from __future__ import annotations

import numpy as np
import polars as pl

from revstack.data.generator._accounts import TITLE_ROWS, People
from revstack.data.generator._util import Clock

__all__ = ["decay", "CHANGE_RATES"]

# field: (changes a year per person, share the CRM catches). Promotions and moves are
# common, new phone lines less so, a new address (a rebrand, a new name) rare.
CHANGE_RATES = {"title": (0.10, 0.5), "phone": (0.06, 0.4), "email": (0.02, 0.6)}


def decay(rng: np.random.Generator, people: People, clock: Clock) -> pl.DataFrame:
    """Apply stayers' changes to what the CRM shows (people.contacts) and return every
    change, departures included: contact_id, field, at (days), old_value, new_value, in_crm."""
    c = people.contacts
    n = len(c)
    now = clock.now
    start = c["start"].to_numpy()
    end = np.fmin(np.nan_to_num(c["left"].to_numpy(), nan=np.inf), now)
    years = np.maximum(end - start, 0) / 365.25
    t_rows = pl.DataFrame(TITLE_ROWS, schema=["persona", "title", "department"], orient="row")
    per = t_rows.group_by("persona", maintain_order=True).agg(k=pl.len())
    t_first = np.cumsum(np.r_[0, per["k"].to_numpy()[:-1]]).astype(np.int64)
    t_k = per["k"].to_numpy().astype(np.int64)
    old_idx = c["title_idx"].to_numpy()
    persona = np.searchsorted(np.cumsum(t_k), old_idx, side="right")
    new_idx = t_first[persona] + (old_idx - t_first[persona] + rng.integers(1, 5, n)) % t_k[persona]
    first = c["first_name"].str.to_lowercase()
    last = c["last_name"].str.to_lowercase()
    domain = c["email"].str.split("@").list.last()
    # the new address: another pattern at the company's domain
    alt = pl.select(
        pl.when(pl.lit(c["email"]).str.starts_with(pl.lit(first) + "."))
        .then(pl.lit(first).str.slice(0, 1) + pl.lit(last) + "@" + pl.lit(domain))
        .otherwise(pl.lit(first) + "." + pl.lit(last) + "@" + pl.lit(domain))
    ).to_series()
    phone = c["phone"]
    new_phone = pl.select(
        pl.lit(phone).str.slice(0, pl.lit(phone).str.len_chars() - 4)
        + pl.lit(pl.Series(rng.integers(100, 9999, n)).cast(pl.String)).str.zfill(4)
    ).to_series()
    new_value = {
        "title": pl.Series(t_rows["title"].to_numpy()[new_idx]),
        "email": alt,
        "phone": new_phone,
    }
    cols: dict[str, pl.Expr] = {}
    parts = []
    updated = c["updated"].to_numpy().copy()
    for field, (rate, caught) in CHANGE_RATES.items():
        hit = rng.random(n) < 1 - np.exp(-rate * years)
        at = start + rng.random(n) * (end - start)
        seen = hit & (rng.random(n) < caught)
        rows = np.flatnonzero(hit)
        parts.append(
            pl.DataFrame(
                {
                    "contact_id": c["contact_id"].gather(rows),
                    "field": field,
                    "at": at[rows],
                    "old_value": c[field].gather(rows),
                    "new_value": new_value[field].gather(rows),
                    "in_crm": seen[rows],
                }
            )
        )
        caught_rows = pl.Series(seen)
        cols[field] = pl.when(caught_rows).then(new_value[field]).otherwise(pl.col(field))
        if field == "title":
            dept = pl.Series(t_rows["department"].to_numpy()[new_idx])
            cols["department"] = pl.when(caught_rows).then(dept).otherwise(pl.col("department"))
        # the CRM's record was updated when someone keyed the change in
        updated = np.where(
            seen, np.maximum(updated, np.minimum(at + rng.uniform(1, 40, n), now)), updated
        )
    gone = np.isfinite(np.nan_to_num(c["left"].to_numpy(), nan=np.inf))
    rows = np.flatnonzero(gone)
    parts.append(
        pl.DataFrame(
            {
                "contact_id": c["contact_id"].gather(rows),
                "field": "is_active",
                "at": c["left"].to_numpy()[rows],
                "old_value": "true",
                "new_value": "false",
                "in_crm": (~c["is_active"] | c["email_bounced"]).gather(rows),
            }
        )
    )
    people.contacts = c.with_columns(**cols, updated=pl.Series(updated))
    return pl.concat(parts, how="vertical_relaxed")
