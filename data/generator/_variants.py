"""How the same company or person gets keyed in twice: the real-world variants of names,
websites, emails and phone numbers, each as a vectorised polars expression."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

__all__ = [
    "company_variants",
    "person_variants",
    "typo",
    "website_variants",
    "COMPANY_KINDS",
    "SUFFIX_RE",
]

_LEGAL = [
    "S.A. de C.V.",
    "Co., Ltd.",
    "Pty Ltd",
    "Pte Ltd",
    "Pvt Ltd",
    "Corporation",
    "Incorporated",
    "Limited",
    "GmbH",
    "Corp",
    "Inc",
    "LLC",
    "Ltda",
    "Ltd",
    "AG",
    "S.A.",
    "SAS",
    "B.V.",
    "N.V.",
    "plc",
    "AB",
    "K.K.",
    "SpA",
    "Co.",
]
_SWAP = {
    "S.A. de C.V.": "SA de CV",
    "Co., Ltd.": "Co Ltd",
    "Pty Ltd": "Pty. Limited",
    "Pte Ltd": "Pte. Ltd.",
    "Pvt Ltd": "Private Limited",
    "Corporation": "Corp.",
    "Incorporated": "Inc.",
    "Limited": "Ltd",
    "GmbH": "Gmbh",
    "Corp": "Corporation",
    "Inc": "Incorporated",
    "LLC": "L.L.C.",
    "Ltda": "Ltda.",
    "Ltd": "Limited",
    "AG": "A.G.",
    "S.A.": "SA",
    "SAS": "S.A.S.",
    "B.V.": "BV",
    "N.V.": "NV",
    "plc": "PLC",
    "AB": "Aktiebolag",
    "K.K.": "KK",
    "SpA": "S.p.A.",
    "Co.": "Company",
    "": "Inc",
}
_ABBREV = [
    ("International", "Intl"),
    ("Technologies", "Tech"),
    ("Systems", "Sys"),
    ("Solutions", "Soln"),
    ("Manufacturing", "Mfg"),
    ("Industries", "Inds"),
    ("Associates", "Assoc"),
    ("Services", "Svcs"),
    ("Labs", "Laboratories"),
    ("Group", "Grp"),
    ("Networks", "Nets"),
    ("Partners", "Ptnrs"),
    ("Analytics", "Analytix"),
]
SUFFIX_RE = r"^(.*?)(?:,)?\s+(" + "|".join(re.escape(s) for s in _LEGAL) + r")$"
COMPANY_KINDS = {
    "suffix_swap": 0.16,
    "suffix_dropped": 0.11,
    "suffix_stacked": 0.06,
    "upper_punct": 0.10,
    "case": 0.06,
    "abbreviation": 0.12,
    "typo": 0.14,
    "and_amp": 0.05,
    "accent": 0.05,
    "domain_as_name": 0.06,
    "punctuation": 0.09,
}


def typo(col: pl.Expr, pos: pl.Expr, how: pl.Expr) -> pl.Expr:
    """One-character typo at `pos`: 0 swaps two letters, 1 drops one, 2 doubles one, 3 a wrong vowel."""
    head, c1 = col.str.slice(0, pos), col.str.slice(pos, 1)
    c2, tail = col.str.slice(pos + 1, 1), col.str.slice(pos + 2)
    is_vowel = c1.is_in(["a", "e", "i", "o", "u"])
    vowel = c1.replace_strict({"a": "e", "e": "a", "i": "y", "o": "u", "u": "o"}, default=c1)
    return (
        pl.when((how == 0) | ((how == 3) & ~is_vowel))
        .then(pl.concat_str(head, c2, c1, tail))
        .when(how == 1)
        .then(pl.concat_str(head, c2, tail))
        .when(how == 2)
        .then(pl.concat_str(head, c1, c1, c2, tail))
        .otherwise(pl.concat_str(head, vowel, c2, tail))
    )


def company_variants(
    rng: np.random.Generator, names: pl.Series, domains: pl.Series
) -> pl.DataFrame:
    """A variant name for each company and the kind of variant it is."""
    n = len(names)
    kinds = np.array(list(COMPANY_KINDS))
    p = np.array(list(COMPANY_KINDS.values()))
    f = pl.DataFrame(
        {
            "name": names,
            "domain": domains,
            "kind": kinds[rng.choice(len(kinds), size=n, p=p / p.sum())],
            "pos": rng.integers(1, 4, n),
            "how": rng.integers(0, 4, n),
            "r": rng.random(n),
        }
    )
    parts = pl.col("name").str.extract_groups(SUFFIX_RE)
    f = f.with_columns(
        base=pl.coalesce(parts.struct.field("1"), pl.col("name")),
        legal=pl.coalesce(parts.struct.field("2"), pl.lit("")),
    )
    base, legal, r = pl.col("base"), pl.col("legal"), pl.col("r")
    abbrev = base
    for long, short in _ABBREV:
        abbrev = abbrev.str.replace(rf"\b{long}\b", short)
    amp = (
        pl.when(base.str.contains(" & ", literal=True))
        .then(base.str.replace(" & ", " and ", literal=True))
        .otherwise(base.str.replace(" and ", " & ", literal=True))
    )
    folded = base.str.normalize("NFKD").str.replace_all(r"\p{M}", "")
    accent = (
        pl.when(folded != base).then(folded).otherwise(base.str.replace("e", "é", literal=True))
    )
    joined = pl.concat_str(base, pl.lit(" "), legal).str.strip_chars()
    typoed = pl.concat_str(
        typo(base, pl.col("pos"), pl.col("how")), pl.lit(" "), legal
    ).str.strip_chars()
    variant = (
        pl.when(pl.col("kind") == "suffix_swap")
        .then(pl.concat_str(base, pl.lit(" "), legal.replace_strict(_SWAP, default=legal)))
        .when(pl.col("kind") == "suffix_dropped")
        .then(pl.when(legal != "").then(base).otherwise(typoed))
        .when(pl.col("kind") == "suffix_stacked")
        .then(
            pl.when(r < 0.5)
            .then(pl.concat_str(base.str.to_uppercase(), pl.lit(" Corp. Inc.")))
            .otherwise(pl.concat_str(joined, pl.lit(", Inc.")))
        )
        .when(pl.col("kind") == "upper_punct")
        .then(
            pl.when(joined.str.ends_with("."))
            .then(joined.str.to_uppercase())
            .otherwise(pl.concat_str(joined.str.to_uppercase(), pl.lit(".")))
        )
        .when(pl.col("kind") == "case")
        .then(pl.when(r < 0.5).then(joined.str.to_lowercase()).otherwise(joined.str.to_uppercase()))
        .when(pl.col("kind") == "abbreviation")
        .then(
            pl.when(abbrev != base)
            .then(pl.concat_str(abbrev, pl.lit(" "), legal))
            .otherwise(typoed)
        )
        .when(pl.col("kind") == "and_amp")
        .then(pl.when(amp != base).then(pl.concat_str(amp, pl.lit(" "), legal)).otherwise(typoed))
        .when(pl.col("kind") == "accent")
        .then(pl.concat_str(accent, pl.lit(" "), legal))
        .when(pl.col("kind") == "domain_as_name")
        .then(
            pl.when(r < 0.6).then(pl.col("domain")).otherwise(pl.col("domain").str.to_titlecase())
        )
        .when(pl.col("kind") == "punctuation")
        .then(
            pl.when(legal.str.contains(r"\."))
            .then(joined.str.replace_all(r"[.,]", ""))
            .when(legal != "")
            .then(pl.concat_str(base, pl.lit(", "), legal))
            .otherwise(pl.concat_str(base, pl.lit(".")))
        )
        .otherwise(typoed)
    )
    k = pl.col("kind")
    fell_back = (
        ((k == "suffix_dropped") & (legal == ""))
        | ((k == "abbreviation") & (abbrev == base))
        | ((k == "and_amp") & (amp == base))
    )
    return f.select(
        name=variant.str.strip_chars(), kind=pl.when(fell_back).then(pl.lit("typo")).otherwise(k)
    )


def website_variants(rng: np.random.Generator, domains: pl.Series) -> pl.Series:
    """The same site written another way, or left out."""
    f = pl.DataFrame(
        {
            "d": domains,
            "w": rng.choice(6, size=len(domains), p=[0.25, 0.25, 0.12, 0.12, 0.11, 0.15]),
        }
    )
    d, w = pl.col("d"), pl.col("w")
    return f.select(
        pl.when(w == 0)
        .then(pl.concat_str(pl.lit("http://www."), d))
        .when(w == 1)
        .then(d)
        .when(w == 2)
        .then(pl.concat_str(pl.lit("https://"), d, pl.lit("/")))
        .when(w == 3)
        .then(pl.concat_str(pl.lit("www."), d.str.to_titlecase()))
        .when(w == 4)
        .then(pl.concat_str(pl.lit("https://www."), d, pl.lit("/contact")))
        .otherwise(None)
    ).to_series()


def person_variants(
    rng: np.random.Generator, first: pl.Series, last: pl.Series, email: pl.Series, nick: pl.Series
) -> pl.DataFrame:
    """Variant first name, last name and email of each person, and the kind of variant."""
    n = len(first)
    kinds = np.array(["nickname", "case", "typo", "email_missing", "email_format", "phone_format"])
    k = kinds[rng.choice(len(kinds), size=n, p=[0.3, 0.12, 0.18, 0.15, 0.15, 0.10])]
    f = pl.DataFrame(
        {
            "first": first,
            "last": last,
            "email": email,
            "nick": nick,
            "kind": k,
            "pos": rng.integers(1, 4, n),
            "how": rng.integers(0, 4, n),
            "r": rng.random(n),
        }
    )
    f = f.with_columns(
        kind=pl.when((pl.col("kind") == "nickname") & (pl.col("nick") == pl.col("first")))
        .then(pl.lit("case"))
        .otherwise("kind")
    )
    kind, r = pl.col("kind"), pl.col("r")
    local_domain = pl.col("email").str.split_exact("@", 1)
    domain = local_domain.struct.field("field_1")
    other = (
        pl.when(r < 0.3)
        .then(
            pl.concat_str(
                pl.col("first").str.to_lowercase(),
                pl.lit("."),
                pl.col("last").str.to_lowercase(),
                pl.lit("@gmail.com"),
            )
        )
        .when(local_domain.struct.field("field_0").str.contains(r"\."))
        .then(
            pl.concat_str(
                pl.col("first").str.slice(0, 1).str.to_lowercase(),
                pl.col("last").str.to_lowercase(),
                pl.lit("@"),
                domain,
            )
        )
        .otherwise(
            pl.concat_str(
                pl.col("first").str.to_lowercase(),
                pl.lit("."),
                pl.col("last").str.to_lowercase(),
                pl.lit("@"),
                domain,
            )
        )
    )
    return f.select(
        first_name=pl.when(kind == "nickname")
        .then("nick")
        .when((kind == "case") & (r < 0.5))
        .then(pl.col("first").str.to_uppercase())
        .when(kind == "case")
        .then(pl.col("first").str.to_lowercase())
        .otherwise("first"),
        last_name=pl.when(kind == "typo")
        .then(typo(pl.col("last"), pl.col("pos"), pl.col("how")))
        .when(kind == "case")
        .then(pl.col("last").str.to_uppercase())
        .otherwise("last"),
        email=pl.when(kind == "email_missing")
        .then(None)
        .when(kind == "email_format")
        .then(other)
        .when(kind == "case")
        .then(pl.col("email").str.to_uppercase())
        .otherwise("email"),
        kind=kind,
    )
