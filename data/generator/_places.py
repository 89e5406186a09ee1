"""Where companies are: regions, countries, cities, phone formats, top-level domains."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["REGIONS", "CITIES", "place_accounts"]

REGIONS = {"NA": 0.45, "EMEA": 0.30, "APAC": 0.15, "LATAM": 0.10}

# country, region, weight in region, tld (local), share of local tld, legal forms with weights
_COUNTRIES = [
    (
        "United States",
        "NA",
        0.86,
        ".com",
        0.0,
        {"Inc": 40, "Corp": 14, "Corporation": 6, "LLC": 20, "Co.": 3, "": 17},
    ),
    ("Canada", "NA", 0.14, ".ca", 0.5, {"Inc": 40, "Ltd": 28, "Corp": 14, "": 18}),
    ("United Kingdom", "EMEA", 0.32, ".co.uk", 0.6, {"Ltd": 52, "Limited": 14, "plc": 10, "": 24}),
    ("Germany", "EMEA", 0.26, ".de", 0.7, {"GmbH": 60, "AG": 18, "": 22}),
    ("France", "EMEA", 0.18, ".fr", 0.6, {"S.A.": 40, "SAS": 35, "": 25}),
    ("Netherlands", "EMEA", 0.14, ".nl", 0.6, {"B.V.": 65, "N.V.": 10, "": 25}),
    ("Sweden", "EMEA", 0.10, ".se", 0.6, {"AB": 75, "": 25}),
    ("Australia", "APAC", 0.30, ".com.au", 0.7, {"Pty Ltd": 70, "": 30}),
    ("Japan", "APAC", 0.28, ".co.jp", 0.6, {"K.K.": 30, "Co., Ltd.": 40, "": 30}),
    ("Singapore", "APAC", 0.20, ".com.sg", 0.5, {"Pte Ltd": 70, "": 30}),
    ("India", "APAC", 0.22, ".in", 0.5, {"Pvt Ltd": 60, "Ltd": 20, "": 20}),
    ("Brazil", "LATAM", 0.50, ".com.br", 0.7, {"S.A.": 40, "Ltda": 40, "": 20}),
    ("Mexico", "LATAM", 0.35, ".com.mx", 0.7, {"S.A. de C.V.": 60, "": 40}),
    ("Chile", "LATAM", 0.15, ".cl", 0.7, {"S.A.": 60, "SpA": 20, "": 20}),
]

# city, country, state, phone prefix (country + area code), digits after it
_CITY_ROWS = [
    ("New York", "United States", "NY", "+1 212", 7),
    ("San Francisco", "United States", "CA", "+1 415", 7),
    ("Austin", "United States", "TX", "+1 512", 7),
    ("Chicago", "United States", "IL", "+1 312", 7),
    ("Boston", "United States", "MA", "+1 617", 7),
    ("Seattle", "United States", "WA", "+1 206", 7),
    ("Denver", "United States", "CO", "+1 303", 7),
    ("Atlanta", "United States", "GA", "+1 404", 7),
    ("Dallas", "United States", "TX", "+1 214", 7),
    ("Raleigh", "United States", "NC", "+1 919", 7),
    ("Toronto", "Canada", "ON", "+1 416", 7),
    ("Vancouver", "Canada", "BC", "+1 604", 7),
    ("Montreal", "Canada", "QC", "+1 514", 7),
    ("London", "United Kingdom", None, "+44 20", 8),
    ("Manchester", "United Kingdom", None, "+44 161", 7),
    ("Edinburgh", "United Kingdom", None, "+44 131", 7),
    ("Berlin", "Germany", None, "+49 30", 8),
    ("Munich", "Germany", None, "+49 89", 8),
    ("Hamburg", "Germany", None, "+49 40", 8),
    ("Frankfurt", "Germany", None, "+49 69", 8),
    ("Paris", "France", None, "+33 1", 8),
    ("Lyon", "France", None, "+33 4", 8),
    ("Amsterdam", "Netherlands", None, "+31 20", 7),
    ("Rotterdam", "Netherlands", None, "+31 10", 7),
    ("Stockholm", "Sweden", None, "+46 8", 7),
    ("Gothenburg", "Sweden", None, "+46 31", 7),
    ("Sydney", "Australia", "NSW", "+61 2", 8),
    ("Melbourne", "Australia", "VIC", "+61 3", 8),
    ("Tokyo", "Japan", None, "+81 3", 8),
    ("Osaka", "Japan", None, "+81 6", 8),
    ("Singapore", "Singapore", None, "+65", 8),
    ("Bangalore", "India", "KA", "+91 80", 8),
    ("Mumbai", "India", "MH", "+91 22", 8),
    ("Sao Paulo", "Brazil", "SP", "+55 11", 8),
    ("Rio de Janeiro", "Brazil", "RJ", "+55 21", 8),
    ("Mexico City", "Mexico", None, "+52 55", 8),
    ("Monterrey", "Mexico", None, "+52 81", 8),
    ("Santiago", "Chile", None, "+56 2", 8),
]

CITIES = pl.DataFrame(
    _CITY_ROWS, schema=["city", "country", "state", "dial", "digits"], orient="row"
)
COUNTRY_NAMES = np.array([c[0] for c in _COUNTRIES])


def place_accounts(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Region, country, city, state, postal code, phone, local TLD and legal form for n companies."""
    region = rng.choice(list(REGIONS), size=n, p=list(REGIONS.values()))
    country = np.empty(n, dtype=object)
    for r in REGIONS:  # a handful of regions, not rows
        rows = [c for c in _COUNTRIES if c[1] == r]
        w = np.array([c[2] for c in rows])
        idx = np.flatnonzero(region == r)
        country[idx] = np.array([c[0] for c in rows], dtype=object)[
            rng.choice(len(rows), size=len(idx), p=w / w.sum())
        ]
    legal = np.empty(n, dtype=object)
    tld = np.full(n, ".com", dtype=object)
    for name, _, _, local, share, forms in _COUNTRIES:
        idx = np.flatnonzero(country == name)
        f = np.array(list(forms.values()), dtype=float)
        legal[idx] = np.array(list(forms), dtype=object)[
            rng.choice(len(f), size=len(idx), p=f / f.sum())
        ]
        tld[idx] = np.where(rng.random(len(idx)) < share, local, ".com")
    # A city of the company's country: cities are laid out country by country.
    by_country = (
        CITIES.with_row_index("i")
        .group_by("country", maintain_order=True)
        .agg(first=pl.col("i").min(), k=pl.len())
    )
    first = dict(zip(by_country["country"], by_country["first"], strict=True))
    count = dict(zip(by_country["country"], by_country["k"], strict=True))
    c_first = np.array([first[c] for c in COUNTRY_NAMES])
    c_k = np.array([count[c] for c in COUNTRY_NAMES])
    code = _index(COUNTRY_NAMES, country)
    city_idx = c_first[code] + (rng.random(n) * c_k[code]).astype(np.int64)
    cities = CITIES[city_idx]
    number = rng.integers(0, 10**8, n)
    return pl.DataFrame(
        {
            "region": region,
            "country": country.astype(str),
            "legal": legal.astype(str),
            "tld": tld.astype(str),
        }
    ).with_columns(
        city=cities["city"],
        state=cities["state"],
        postal_code=pl.Series(rng.integers(10_000, 99_999, n)).cast(pl.String),
        phone=phone(cities["dial"], cities["digits"], pl.Series(number)),
    )


def _index(names: np.ndarray, values: np.ndarray) -> np.ndarray:
    order = np.argsort(names)
    return order[np.searchsorted(names[order], values)]


def phone(dial: pl.Series, digits: pl.Series, number: pl.Series) -> pl.Series:
    """'+1 212 555 0123' style numbers: the area's prefix, then the local digits in two groups."""
    frame = pl.DataFrame({"dial": dial, "digits": digits, "number": number})
    local = (
        (pl.col("number") % (10 ** pl.col("digits").cast(pl.Int64))).cast(pl.String).str.zfill(8)
    )
    local = local.str.slice(8 - pl.col("digits"))
    head = pl.col("digits") - 4
    return frame.select(
        pl.format("{} {} {}", "dial", local.str.slice(0, head), local.str.slice(head))
    ).to_series()
