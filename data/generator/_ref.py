"""Third-party reference data: the enrichment vendor's firmographics (mostly right, some
stale or wrong) and news about the accounts, some of which moves their deals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from revstack.data.generator._config import Rates
from revstack.data.generator._defects import defect_rows
from revstack.data.generator._names import INDUSTRIES, LAST
from revstack.data.generator._places import CITIES
from revstack.data.generator._util import Clock, ids

__all__ = ["news_events", "news_table", "news_effect", "provider"]

_KINDS = np.array(
    ["funding", "exec_hire", "layoffs", "launch", "acquisition", "expansion", "earnings"]
)
_KIND_P = np.array([0.20, 0.22, 0.12, 0.20, 0.07, 0.11, 0.08])
_EXEC = [
    "Chief Revenue Officer",
    "Chief Financial Officer",
    "Chief Technology Officer",
    "VP of Sales",
    "Chief Operating Officer",
]
_LAUNCH = [
    "a new analytics platform",
    "an AI assistant for its customers",
    "a self-service portal",
    "its next-generation product line",
    "a partner programme",
]
_REASON = ["slowing demand", "a restructuring", "rising costs", "the integration of an acquisition"]


def news_events(rng: np.random.Generator, accounts: pl.DataFrame, clock: Clock) -> pl.DataFrame:
    """(account, t, kind) for every news item: bigger companies are in the news more."""
    emp = accounts["employees"].to_numpy()
    count = rng.poisson(1.2 + 0.5 * np.log10(emp))
    acct = np.repeat(np.arange(len(accounts)), count)
    t = rng.uniform(-90, clock.now - 0.5, len(acct))
    kind = rng.choice(len(_KINDS), size=len(acct), p=_KIND_P)
    return pl.DataFrame({"account": acct, "t": t, "kind": _KINDS[kind]}).sort("t", "account")


def news_effect(news: pl.DataFrame) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Win-odds effect on a deal: fresh funding helps, layoffs during the deal hurt."""
    relevant = news.filter(pl.col("kind").is_in(["funding", "layoffs"]))

    def effect(account: np.ndarray, created: np.ndarray, plan_close: np.ndarray) -> np.ndarray:
        deals = pl.DataFrame(
            {"deal": np.arange(len(account)), "account": account, "c": created, "e": plan_close}
        )
        hits = deals.join(relevant, on="account").filter(
            (
                (pl.col("kind") == "funding")
                & (pl.col("t") > pl.col("c") - 180)
                & (pl.col("t") < pl.col("c") + 30)
            )
            | (
                (pl.col("kind") == "layoffs")
                & (pl.col("t") > pl.col("c") - 60)
                & (pl.col("t") < pl.col("e"))
            )
        )
        by_deal = hits.group_by("deal").agg(
            e=0.3 * (pl.col("kind") == "funding").any() - 0.5 * (pl.col("kind") == "layoffs").any()
        )
        out = np.zeros(len(account))
        out[by_deal["deal"].to_numpy()] = by_deal["e"].to_numpy()
        return out

    return effect


def news_table(
    rng: np.random.Generator, clock: Clock, news: pl.DataFrame, accounts: pl.DataFrame
) -> pl.DataFrame:
    n = len(news)
    a = news["account"].to_numpy()
    f = news.with_columns(
        name=pl.Series(accounts["name"].to_numpy()[a]),
        domain=pl.Series(accounts["domain"].to_numpy()[a]),
        amount=pl.Series(np.round(np.exp(rng.normal(3, 1, n)))).cast(pl.Int64).cast(pl.String),
        letter=pl.Series(rng.choice(list("ABCDE"), size=n)),
        pct=pl.Series(rng.integers(4, 25, n)).cast(pl.String),
        person=pl.Series(rng.choice(LAST, size=n)),
        role=pl.Series(rng.choice(_EXEC, size=n)),
        what=pl.Series(rng.choice(_LAUNCH, size=n)),
        reason=pl.Series(rng.choice(_REASON, size=n)),
        other=pl.Series(accounts["name"].to_numpy()[rng.integers(0, len(accounts), n)]),
        city=pl.Series(CITIES["city"].to_numpy()[rng.integers(0, len(CITIES), n)]),
        news_id=ids("N", n, 9),
    )
    k = pl.col("kind")
    headline = (
        pl.when(k == "funding")
        .then(pl.format("{} raises ${}M in Series {} funding", "name", "amount", "letter"))
        .when(k == "exec_hire")
        .then(pl.format("{} appoints {} as {}", "name", "person", "role"))
        .when(k == "layoffs")
        .then(pl.format("{} to cut {}% of its workforce", "name", "pct"))
        .when(k == "launch")
        .then(pl.format("{} launches {}", "name", "what"))
        .when(k == "acquisition")
        .then(pl.format("{} acquires {}", "name", "other"))
        .when(k == "expansion")
        .then(pl.format("{} opens a new office in {}", "name", "city"))
        .otherwise(pl.format("{} reports {}% revenue growth", "name", "pct"))
    )
    summary = (
        pl.when(k == "funding")
        .then(pl.lit("The company plans to expand its sales and engineering teams."))
        .when(k == "exec_hire")
        .then(pl.format("{} joins from a larger competitor and starts this quarter.", "person"))
        .when(k == "layoffs")
        .then(pl.format("The company cited {}; budgets are under review.", "reason"))
        .when(k == "acquisition")
        .then(pl.lit("The deal is expected to close within two quarters."))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return f.select(
        "news_id",
        "domain",
        company_name="name",
        published_at=pl.Series(clock.ts(news["t"].to_numpy())),
        headline=headline,
        summary=summary,
        url=pl.format(
            "https://news.example.com/{}/{}", "domain", pl.col("news_id").str.to_lowercase()
        ),
        source=pl.lit("generated_newswire"),
        kind="kind",
    )


def provider(
    rng: np.random.Generator, clock: Clock, truth: pl.DataFrame, rates: Rates
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The vendor's record per company domain: most covered, some values wrong or stale."""
    covered = truth.filter(pl.Series(rng.random(len(truth)) < rates.provider_coverage)).unique(
        "domain", keep="first", maintain_order=True
    )
    k = len(covered)
    err = {f: pl.Series(rng.random(k) < r) for f, r in rates.provider_error.items()}
    factor = pl.Series(
        np.where(rng.random(k) < 0.5, rng.uniform(0.35, 0.7, k), rng.uniform(1.5, 3.0, k))
    )
    shift = pl.Series(rng.integers(1, len(INDUSTRIES), k))
    ind_idx = pl.col("industry").replace_strict(
        {v: i for i, v in enumerate(INDUSTRIES)}, default=0, return_dtype=pl.Int64
    )
    other_city = pl.Series(CITIES["city"].to_numpy()[rng.integers(0, len(CITIES), k)])
    ref = covered.select(
        provider=pl.lit("generated_vendor"),
        domain="domain",
        company_name=pl.when(pl.Series(rng.random(k) < 0.3))
        .then(pl.col("name").str.to_uppercase())
        .otherwise("name"),
        industry=pl.when(err["industry"])
        .then(
            ((ind_idx + shift) % len(INDUSTRIES)).replace_strict(
                dict(enumerate(INDUSTRIES)), return_dtype=pl.String
            )
        )
        .otherwise("industry"),
        employees=pl.when(err["employees"])
        .then((pl.col("employees") * factor).round().cast(pl.Int64).clip(1))
        .otherwise("employees"),
        annual_revenue=pl.when(err["annual_revenue"])
        .then(((pl.col("annual_revenue") * factor) / 1000).round() * 1000)
        .otherwise("annual_revenue"),
        country=pl.when(err["country"])
        .then(
            pl.when(pl.col("country") == "United States")
            .then(pl.lit("Canada"))
            .otherwise(pl.lit("United States"))
        )
        .otherwise("country"),
        city=pl.when(err["city"] & (other_city != pl.col("city")))
        .then(other_city)
        .otherwise("city"),
        as_of=pl.Series(clock.date(clock.now - rng.uniform(0, 240, k))),
    )
    wrong = covered.select("account_id").with_columns(**{f: e for f, e in err.items()})
    wrong = wrong.with_columns(city=pl.col("city") & (ref["city"] != covered["city"]))
    defects = pl.concat(
        [
            wrong.filter(pl.col(f)).select(
                defect_rows(
                    "provider_error",
                    "accounts",
                    "account_id",
                    f,
                    "generated_vendor value wrong or stale",
                )
            )
            for f in rates.provider_error
        ]
    )
    return ref, defects
