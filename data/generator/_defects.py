"""The mess real CRMs hold: duplicate accounts and contacts, blank required fields and
stale or wrong firmographics, each instance kept for truth.defects."""

from __future__ import annotations

import numpy as np
import polars as pl

from revstack.data.generator._names import INDUSTRIES, NICKNAMES
from revstack.data.generator._util import ids
from revstack.data.generator._variants import company_variants, person_variants, website_variants

__all__ = [
    "duplicate_accounts",
    "duplicate_contacts",
    "blank",
    "wrong_firmographics",
    "defect_rows",
]

_COUNTRY_MIXUP = {
    "United States": "Canada",
    "Canada": "United States",
    "United Kingdom": "Ireland",
    "Germany": "Austria",
    "France": "Belgium",
    "Netherlands": "Belgium",
    "Sweden": "Norway",
    "Australia": "New Zealand",
    "Japan": "South Korea",
    "Singapore": "Malaysia",
    "India": "Sri Lanka",
    "Brazil": "Argentina",
    "Mexico": "United States",
    "Chile": "Peru",
}


def defect_rows(
    cls: str, obj: str, record_id: str, field: str | None, detail: str | pl.Expr
) -> list[pl.Expr]:
    """The five truth.defects columns as expressions over a frame of affected records."""
    return [
        pl.lit(cls).alias("defect_class"),
        pl.lit(obj).alias("object_type"),
        pl.col(record_id).alias("record_id"),
        pl.lit(field, dtype=pl.String).alias("field"),
        (pl.lit(detail) if isinstance(detail, str) else detail).alias("detail"),
    ]


def _reformat_phone(rng: np.random.Generator, phone: pl.Series) -> pl.Series:
    how = pl.Series(rng.integers(0, 3, len(phone)))
    return pl.select(
        pl.when(pl.lit(how) == 0)
        .then(pl.lit(phone).str.replace_all(" ", "-", literal=True))
        .when(pl.lit(how) == 1)
        .then(pl.lit(phone).str.replace_all(r"[ +]", ""))
        .otherwise(
            pl.lit(phone).str.replace(r"^\+\d+ ", "").str.replace_all(" ", ".", literal=True)
        )
    ).to_series()


def duplicate_accounts(
    rng: np.random.Generator, accounts: pl.DataFrame, rate: float, now: float, rep_pool: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accounts with duplicates appended, map of record_id -> original with the variant kind)."""
    n = len(accounts)
    k = round(rate * n / (1 - rate))  # duplicates are `rate` of all records
    src = accounts[rng.choice(n, size=k, replace=True)]
    v = company_variants(rng, src["name"], src["domain"])
    # A sixth are keyed in from another office or an old address: street, postal code and
    # switchboard differ (the city too, one time in four).
    moved = rng.random(k) < 0.16
    other_city = moved & (rng.random(k) < 0.25)
    donor = accounts[rng.integers(0, n, k)]  # someone else's address, for realism of format
    same_country = donor["country"] == src["country"]
    src = src.with_columns(
        street=pl.when(pl.Series(moved)).then(donor["street"]).otherwise("street"),
        postal_code=pl.when(pl.Series(moved)).then(donor["postal_code"]).otherwise("postal_code"),
        phone=pl.when(pl.Series(moved))
        .then(
            src["phone"].str.slice(0, src["phone"].str.len_chars() - 4)
            + pl.Series(rng.integers(1000, 9999, k)).cast(pl.String)
        )
        .otherwise("phone"),
        city=pl.when(pl.Series(other_city) & same_country).then(donor["city"]).otherwise("city"),
    )
    dups = src.with_columns(
        account_id=ids("A", n + k, 7).slice(n),
        name=v["name"],
        website=website_variants(rng, src["domain"]),
        owner_id=pl.when(pl.Series(rng.random(k) < 0.3))
        .then(pl.Series(rng.choice(rep_pool, size=k)))
        .otherwise("owner_id"),
        phone=pl.when(pl.Series(rng.random(k) < 0.6))
        .then(_reformat_phone(rng, src["phone"]))
        .otherwise("phone"),
        street=pl.when(pl.Series(rng.random(k) < 0.3)).then(None).otherwise("street"),
        created=np.minimum(src["created"].to_numpy() + rng.uniform(1, 600, k), now - 1),
        account_type=pl.lit("prospect"),
    )
    mapping = pl.DataFrame(
        {
            "record_id": dups["account_id"],
            "original": src["account_id"],
            "kind": v["kind"],
            "created": dups["created"],
        }
    )
    return pl.concat([accounts, dups], how="vertical_relaxed"), mapping


def duplicate_contacts(
    rng: np.random.Generator,
    contacts: pl.DataFrame,
    rate: float,
    now: float,
    first_dup: dict[str, str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = len(contacts)
    k = round(rate * n / (1 - rate))
    src = contacts[rng.choice(n, size=k, replace=True)]
    nick = src["first_name"].replace_strict(NICKNAMES, default=src["first_name"])
    v = person_variants(rng, src["first_name"], src["last_name"], src["email"], nick)
    moved = pl.Series(rng.random(k) < 0.2)
    dup_acc = src["account_id"].replace_strict(first_dup, default=None)
    dups = src.with_columns(
        contact_id=ids("C", n + k, 8).slice(n),
        first_name=v["first_name"],
        last_name=v["last_name"],
        email=v["email"],
        phone=pl.when((v["kind"] == "phone_format") | pl.Series(rng.random(k) < 0.4))
        .then(_reformat_phone(rng, src["phone"]))
        .otherwise("phone"),
        account_id=pl.when(moved & dup_acc.is_not_null()).then(dup_acc).otherwise("account_id"),
        start=np.minimum(src["start"].to_numpy() + rng.uniform(1, 300, k), now - 1),
    )
    mapping = pl.DataFrame(
        {"record_id": dups["contact_id"], "original": src["contact_id"], "kind": v["kind"]}
    )
    return pl.concat([contacts, dups], how="vertical_relaxed"), mapping


def blank(
    rng: np.random.Generator,
    frame: pl.DataFrame,
    rates: dict[str, float],
    extra: dict[str, float],
    is_dup: np.ndarray,
) -> pl.DataFrame:
    """Blank each field at its rate (more on hurried duplicates). Truth is read off the
    final tables afterwards, so every blank, planted or not, is a defect row."""
    cols = []
    for f in sorted((set(rates) | set(extra)) & set(frame.columns)):
        p = rates.get(f, 0.0) + np.where(is_dup, extra.get(f, 0.0), 0.0)
        mask = pl.Series(rng.random(len(frame)) < p)
        cols.append(pl.when(mask).then(None).otherwise(pl.col(f)).alias(f))
    return frame.with_columns(cols)


def wrong_firmographics(
    rng: np.random.Generator, accounts: pl.DataFrame, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Stale or mistyped values in the CRM (never blank ones): one field per affected account."""
    n = len(accounts)
    which = np.where(rng.random(n) < rate, rng.choice(4, size=n, p=[0.4, 0.3, 0.25, 0.05]), -1)
    f = accounts.with_columns(
        w=pl.Series(which),
        low=pl.Series(rng.random(n) < 0.6),
        x=pl.Series(rng.uniform(0, 1, n)),
        shift=pl.Series(rng.integers(1, len(INDUSTRIES), n)),
    )
    factor = pl.when(pl.col("low")).then(0.4 + 0.3 * pl.col("x")).otherwise(1.6 + 1.4 * pl.col("x"))
    ind_idx = pl.col("industry").replace_strict(
        {v: i for i, v in enumerate(INDUSTRIES)}, default=0, return_dtype=pl.Int64
    )
    other_ind = ((ind_idx + pl.col("shift")) % len(INDUSTRIES)).replace_strict(
        dict(enumerate(INDUSTRIES)), return_dtype=pl.String
    )
    hit = [pl.col("w") == i for i in range(4)]
    hit = [
        h & pl.col(c).is_not_null()
        for h, c in zip(hit, ["employees", "annual_revenue", "industry", "country"], strict=True)
    ]
    f = f.with_columns(h0=hit[0], h1=hit[1], h2=hit[2], h3=hit[3])
    out = f.with_columns(
        employees=pl.when("h0")
        .then((pl.col("employees") * factor).round().cast(pl.Int64).clip(1))
        .otherwise("employees"),
        annual_revenue=pl.when("h1")
        .then(pl.col("annual_revenue") * factor)
        .otherwise("annual_revenue"),
        industry=pl.when("h2").then(other_ind).otherwise("industry"),
        country=pl.when("h3")
        .then(pl.col("country").replace_strict(_COUNTRY_MIXUP, default=pl.col("country")))
        .otherwise("country"),
    )
    defects = pl.concat(
        [
            out.filter(pl.col(h)).select(
                defect_rows(
                    "wrong_firmographics",
                    "accounts",
                    "account_id",
                    field,
                    "stale" if field in ("employees", "annual_revenue") else "wrong",
                )
            )
            for h, field in (
                ("h0", "employees"),
                ("h1", "annual_revenue"),
                ("h2", "industry"),
                ("h3", "country"),
            )
        ]
    )
    return out.drop("w", "low", "x", "shift", "h0", "h1", "h2", "h3"), defects
