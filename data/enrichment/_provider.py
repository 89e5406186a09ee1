"""The provider interface, a file-backed provider and the waterfall."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

import polars as pl

from revstack.data.errors import InputError, Problem
from revstack.data.normalize import company_key, domain_from_website

__all__ = ["PROVIDER_COLUMNS", "Provider", "FileProvider", "Waterfall"]

# What every provider returns, one row per company found.
PROVIDER_COLUMNS: dict[str, pl.DataType] = {
    "domain": pl.String(),
    "company_name": pl.String(),
    "industry": pl.String(),
    "employees": pl.Int64(),
    "annual_revenue": pl.Float64(),
    "country": pl.String(),
    "city": pl.String(),
    "source": pl.String(),
    "as_of": pl.Date(),
}
_FIELDS = ("company_name", "industry", "employees", "annual_revenue", "country", "city")

# Column names vendors use, per field (lower-cased, compared after stripping).
_ALIASES = {
    "domain": ("domain", "website", "company_website", "url", "web", "company domain"),
    "company_name": ("company_name", "name", "company", "account name", "organization"),
    "industry": ("industry", "industry_name", "primary industry"),
    "employees": (
        "employees",
        "employee_count",
        "headcount",
        "number of employees",
        "num_employees",
    ),
    "annual_revenue": (
        "annual_revenue",
        "revenue",
        "revenue ($m)",
        "annual revenue",
        "revenue_usd",
    ),
    "country": ("country", "hq_country", "billing country"),
    "city": ("city", "hq_city", "location", "billing city"),
}


class Provider(Protocol):
    name: str

    def lookup(self, domains: pl.Series, names: pl.Series) -> pl.DataFrame:
        """Rows (``PROVIDER_COLUMNS``) for the companies among ``domains`` / ``names`` it knows."""
        ...


def _number(expr: pl.Expr) -> pl.Expr:
    return (
        expr.cast(pl.String)
        .str.replace_all(r"[$,\s]", "")
        .replace("", None)
        .cast(pl.Float64, strict=False)
    )


class FileProvider:
    """Firmographics from a CSV or Parquet file, whatever its columns are called.

    ``columns`` maps our fields to the file's columns where the usual names do not fit;
    a revenue column named in millions ("Revenue ($M)") is scaled to dollars; ``country``
    fills a file that has none (a Fortune 500 list is all United States).
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        as_of: dt.date,
        columns: dict[str, str] | None = None,
        country: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.as_of = as_of
        self._data = self._read(columns or {}, country)

    def _read(self, columns: dict[str, str], country: str | None) -> pl.DataFrame:
        label = str(self.path)
        if not self.path.is_file():
            raise InputError(f"{label}: no such file")
        try:
            raw = (
                pl.read_parquet(self.path)
                if self.path.suffix.lower() == ".parquet"
                else pl.read_csv(self.path, infer_schema=False, encoding="utf8")
            )
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise InputError(
                f"{label}: not a readable CSV or Parquet file: {str(exc).splitlines()[0]}"
            ) from exc
        by_lower = {c.strip().lower(): c for c in raw.columns}
        found: dict[str, str] = {}
        problems = []
        for f, aliases in _ALIASES.items():
            if f in columns:
                if columns[f] not in raw.columns:
                    problems.append(
                        Problem(
                            label,
                            f"no column {columns[f]!r} (mapped to {f})",
                            line=1,
                            column=columns[f],
                        )
                    )
                else:
                    found[f] = columns[f]
            else:
                hit = next((by_lower[a] for a in aliases if a in by_lower), None)
                if hit:
                    found[f] = hit
        if "domain" not in found and "company_name" not in found:
            problems.append(
                Problem(label, "needs a domain/website or a company name column", line=1)
            )
        if problems:
            raise InputError(f"{label}: cannot read firmographics", problems)

        def col(f: str) -> pl.Expr:
            if f not in found:
                return pl.lit(None, pl.String)
            return pl.col(found[f]).cast(pl.String).str.strip_chars()

        revenue = _number(col("annual_revenue"))
        if "annual_revenue" in found and "$m" in found["annual_revenue"].lower():
            revenue = revenue * 1_000_000
        city = col("city")
        if found.get("city", "").lower() == "location":  # "Bentonville, Ark." -> Bentonville
            city = city.str.split(",").list.first().str.strip_chars()
        return raw.select(
            domain=domain_from_website(col("domain")),
            company_name=col("company_name"),
            industry=col("industry"),
            employees=_number(col("employees")).round(0).cast(pl.Int64),
            annual_revenue=revenue,
            country=col("country") if "country" in found else pl.lit(country, pl.String),
            city=city,
            source=pl.lit(self.name),
            as_of=pl.lit(self.as_of, pl.Date),
        ).with_columns(key=company_key(pl.col("company_name")))

    def lookup(self, domains: pl.Series, names: pl.Series) -> pl.DataFrame:
        wanted_domains = domains.drop_nulls().unique().implode()
        keys = (
            names.drop_nulls()
            .to_frame("n")
            .select(company_key(pl.col("n")))
            .to_series()
            .unique()
            .implode()
        )
        hit = self._data.filter(pl.col("domain").is_in(wanted_domains) | pl.col("key").is_in(keys))
        # A dict[str, DataType] is what polars takes, but its stubs type cast()'s argument
        # as Mapping[str | selector | dtype, ...], and a Mapping's key type is invariant.
        return (
            hit.drop("key")
            .unique(["domain", "company_name"], keep="first", maintain_order=True)
            .cast(PROVIDER_COLUMNS)  # type: ignore[arg-type]
        )


class Waterfall:
    """Providers in order: per company and field, the first one holding a value wins;
    ``source`` then names, per field, which provider it came from (``field:provider``)."""

    def __init__(self, providers: list[Provider], *, name: str = "waterfall") -> None:
        self.providers = providers
        self.name = name

    def lookup(self, domains: pl.Series, names: pl.Series) -> pl.DataFrame:
        answers = [
            p.lookup(domains, names).with_columns(rank=pl.lit(i))
            for i, p in enumerate(self.providers)
        ]
        rows = (
            pl.concat(answers)
            if answers
            else pl.DataFrame(schema={**PROVIDER_COLUMNS, "rank": pl.Int32})
        )
        rows = rows.with_columns(key=pl.coalesce("domain", company_key(pl.col("company_name"))))
        agg = []
        for f in _FIELDS:
            agg.append(
                pl.col(f)
                .filter(pl.col(f).is_not_null())
                .sort_by(pl.col("rank").filter(pl.col(f).is_not_null()))
                .first()
                .alias(f)
            )
            agg.append(
                pl.col("source")
                .filter(pl.col(f).is_not_null())
                .sort_by(pl.col("rank").filter(pl.col(f).is_not_null()))
                .first()
                .alias(f"{f}_source")
            )
        merged = rows.group_by("key", maintain_order=True).agg(
            pl.col("domain").drop_nulls().first(), *agg, as_of=pl.col("as_of").min()
        )
        source = pl.concat_str(
            [
                pl.when(pl.col(f"{f}_source").is_not_null()).then(
                    pl.lit(f"{f}:") + pl.col(f"{f}_source")
                )
                for f in _FIELDS
            ],
            separator=",",
            ignore_nulls=True,
        )
        merged = merged.with_columns(source=source).select(list(PROVIDER_COLUMNS))
        return merged.cast(PROVIDER_COLUMNS)  # type: ignore[arg-type]  # as in FileProvider
