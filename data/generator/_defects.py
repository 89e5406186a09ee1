"""The mess real CRMs hold, injected at known rates with every instance kept in truth."""

from __future__ import annotations

import numpy as np
import polars as pl

from data.generator._config import INDUSTRIES, Rates
from data.generator._names import NICKNAMES, name_variants

__all__ = [
    "duplicate_accounts",
    "duplicate_contacts",
    "blank_fields",
    "wrong_firmographics",
    "provider",
]


def _defects(cls: str, obj: str, ids, field=None, detail=None) -> pl.DataFrame:  # noqa: ANN001
    n = len(ids)
    return pl.DataFrame({"defect_class": [cls] * n, "object_type": [obj] * n, "record_id": list(ids),
                         "field": [field] * n if not isinstance(field, list) else field,
                         "detail": [detail] * n if not isinstance(detail, list) else detail},
                        schema={"defect_class": pl.String, "object_type": pl.String, "record_id": pl.String,
                                "field": pl.String, "detail": pl.String})  # fmt: skip


def duplicate_accounts(
    rng: np.random.Generator, accounts: pl.DataFrame, rate: float, reps: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(accounts with duplicates appended, dup -> original map, defects)."""
    n = len(accounts)
    k = int(round(rate * n / (1 - rate)))  # duplicates make up `rate` of all records
    orig = rng.choice(n, size=k, replace=True)
    src = accounts[orig]
    names, kinds = name_variants(rng, src["name"].to_numpy(), src["domain"].to_numpy())
    web_kind = rng.choice(3, size=k, p=[0.4, 0.35, 0.25])
    website = np.where(web_kind == 0, np.char.add("http://", src["domain"].to_numpy().astype(str)),
                       np.where(web_kind == 1, src["domain"].to_numpy().astype(str), None))  # fmt: skip
    dup_ids = [f"A{i:07d}" for i in range(n + 1, n + k + 1)]
    dups = src.with_columns(
        account_id=pl.Series(dup_ids), name=pl.Series(names), website=pl.Series(website.tolist(), dtype=pl.String),
        owner_id=pl.when(pl.Series(rng.random(k) < 0.3)).then(pl.Series(rng.choice(reps, size=k))).otherwise("owner_id"),
        industry=pl.when(pl.Series(rng.random(k) < 0.3)).then(None).otherwise("industry"),
        employees=pl.when(pl.Series(rng.random(k) < 0.4)).then(None).otherwise("employees"),
        phone=pl.col("phone").str.replace_all(" ", "-"),
        created_at=pl.col("created_at") + pl.duration(days=pl.Series(rng.integers(1, 400, k))),
        account_type=pl.lit("prospect"),
    )  # fmt: skip
    mapping = pl.DataFrame({"record_id": dup_ids, "original": src["account_id"], "kind": kinds})
    defects = _defects(
        "duplicate_account",
        "accounts",
        dup_ids,
        detail=[f"{kd}: duplicate of {o}" for kd, o in zip(kinds, src["account_id"], strict=True)],
    )
    return pl.concat([accounts, dups], how="vertical_relaxed"), mapping, defects


def duplicate_contacts(
    rng: np.random.Generator, contacts: pl.DataFrame, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    n = len(contacts)
    k = int(round(rate * n / (1 - rate)))
    orig = rng.choice(n, size=k, replace=True)
    src = contacts[orig]
    first = src["first_name"].to_numpy().astype(str)
    last = src["last_name"].to_numpy().astype(str)
    kind = rng.choice(
        ["nickname", "case", "typo", "email_missing", "email_format"],
        size=k,
        p=[0.3, 0.15, 0.2, 0.2, 0.15],
    )
    nick = np.array([NICKNAMES.get(f, f) for f in first])
    kind = np.where((kind == "nickname") & (nick == first), "case", kind)
    new_first = np.where(
        kind == "nickname", nick, np.where(kind == "case", np.char.upper(first), first)
    )
    pos = np.maximum(1, (rng.random(k) * (np.char.str_len(last) - 1)).astype(int))
    typo_last = np.array(
        [
            s[:i] + s[i + 1] + s[i] + s[i + 2 :] if len(s) > i + 1 else s + "e"
            for s, i in zip(last, pos, strict=True)
        ]
    )
    new_last = np.where(
        kind == "typo", typo_last, np.where(kind == "case", np.char.lower(last), last)
    )
    email = src["email"].to_numpy().astype(str)
    domain = np.array([e.split("@")[-1] for e in email])
    new_email = np.where(kind == "email_missing", None,
                         np.where(kind == "email_format", np.char.add(np.char.add(np.char.lower(np.char.add(np.array([f[:1] for f in first]), last)), "@"), domain),
                                  np.char.upper(email)))  # fmt: skip
    n_ids = [f"C{i:08d}" for i in range(n + 1, n + k + 1)]
    dups = src.with_columns(
        contact_id=pl.Series(n_ids), first_name=pl.Series(new_first), last_name=pl.Series(new_last),
        email=pl.Series(new_email.tolist(), dtype=pl.String), phone=pl.col("phone").str.replace_all(r"[ +]", ""),
        title=pl.when(pl.Series(rng.random(k) < 0.4)).then(None).otherwise("title"),
    )  # fmt: skip
    mapping = pl.DataFrame({"record_id": n_ids, "original": src["contact_id"], "kind": kind})
    defects = _defects(
        "duplicate_contact",
        "contacts",
        n_ids,
        detail=[f"{kd}: duplicate of {o}" for kd, o in zip(kind, src["contact_id"], strict=True)],
    )
    return pl.concat([contacts, dups], how="vertical_relaxed"), mapping, defects


def blank_fields(
    rng: np.random.Generator, frame: pl.DataFrame, rates: dict[str, float]
) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """Blank each required field at its rate; returns the frame and which rows were blanked.

    The truth rows for missing fields are read off the final tables afterwards, so
    blanks left by duplicates count too.
    """
    masks = {}
    for f, r in rates.items():
        mask = (rng.random(len(frame)) < r) & frame[f].is_not_null().to_numpy()
        masks[f] = mask
        frame = frame.with_columns(
            pl.when(pl.Series(mask)).then(None).otherwise(pl.col(f)).alias(f)
        )
    return frame, masks


def _other_industry(values: np.ndarray) -> np.ndarray:
    """A different industry for each value (a wrong value must differ from the true one)."""
    order = {v: i for i, v in enumerate(INDUSTRIES)}
    return np.array([INDUSTRIES[(order.get(v, 0) + 3) % len(INDUSTRIES)] for v in values])


def wrong_firmographics(
    rng: np.random.Generator, accounts: pl.DataFrame, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = len(accounts)
    bad = rng.random(n) < rate
    which = rng.choice(["employees", "annual_revenue", "industry"], size=n, p=[0.45, 0.3, 0.25])
    emp = bad & (which == "employees")
    rev = bad & (which == "annual_revenue")
    ind = bad & (which == "industry")
    shifted = _other_industry(accounts["industry"].fill_null(INDUSTRIES[0]).to_numpy())
    out = accounts.with_columns(
        employees=pl.when(pl.Series(emp)).then((pl.col("employees") * pl.Series(rng.uniform(0.35, 0.7, n))).round().cast(pl.Int64)).otherwise("employees"),
        annual_revenue=pl.when(pl.Series(rev)).then(pl.col("annual_revenue") * pl.Series(rng.uniform(0.4, 0.7, n))).otherwise("annual_revenue"),
        industry=pl.when(pl.Series(ind)).then(pl.Series(shifted)).otherwise("industry"),
    )  # fmt: skip
    ids = accounts["account_id"]
    defects = pl.concat([
        _defects("wrong_firmographics", "accounts", ids.filter(pl.Series(m)).to_list(), field=f, detail="stale or wrong in the CRM")
        for m, f in ((emp, "employees"), (rev, "annual_revenue"), (ind, "industry"))
    ])  # fmt: skip
    return out, defects


def provider(
    rng: np.random.Generator, truth: pl.DataFrame, rates: Rates, as_of
) -> tuple[pl.DataFrame, pl.DataFrame]:  # noqa: ANN001
    """The enrichment vendor's view: most domains covered, some fields wrong or stale."""
    covered = truth.filter(pl.Series(rng.random(len(truth)) < rates.provider_coverage))
    k = len(covered)
    err = {
        f: rng.random(k) < rates.provider_error for f in ("industry", "employees", "annual_revenue")
    }
    ref = covered.select(
        provider=pl.lit("generated_vendor"), domain="domain", company_name="name",
        industry=pl.when(pl.Series(err["industry"])).then(pl.Series(_other_industry(covered["industry"].to_numpy()))).otherwise("industry"),
        employees=pl.when(pl.Series(err["employees"])).then((pl.col("employees") * pl.Series(rng.uniform(1.6, 3.0, k))).round().cast(pl.Int64)).otherwise("employees"),
        annual_revenue=pl.when(pl.Series(err["annual_revenue"])).then(pl.col("annual_revenue") * pl.Series(rng.uniform(1.6, 3.0, k))).otherwise("annual_revenue"),
        country="country", city="city", as_of=pl.lit(as_of),
    )  # fmt: skip
    defects = pl.concat([
        _defects("provider_error", "accounts", covered["account_id"].filter(pl.Series(m)).to_list(), field=f, detail="generated_vendor value wrong")
        for f, m in err.items()
    ])  # fmt: skip
    return ref, defects
