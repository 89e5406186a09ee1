"""Normalisation of names, domains, emails and phones, as polars expressions.

Shared by the audit and identity resolution. Each function takes an expression
and returns an expression, so it runs vectorised over millions of rows.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "FREE_MAIL_DOMAINS",
    "LEGAL_SUFFIXES",
    "company_key",
    "domain_from_email",
    "domain_from_website",
    "person_key",
    "phone_key",
]

# Legal-form words in many languages, as they look after lower-casing and removing
# punctuation ("S.A." -> "s a" -> handled by the joined forms below).
LEGAL_SUFFIXES: tuple[str, ...] = (
    "incorporated",
    "inc",
    "corporation",
    "corp",
    "company",
    "co",
    "limited",
    "ltd",
    "llc",
    "llp",
    "lp",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "mbh",
    "sa",
    "ltda",
    "limitada",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "oyj",
    "ab",
    "aktiebolag",
    "as",
    "asa",
    "aps",
    "kk",
    "pty",
    "pte",
    "sl",
    "sro",
    "spzoo",
    "zrt",
    "bhd",
    "sdn",
    "holdings",
    "group",
    "the",
)

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "qq.com",
        "163.com",
        "126.com",
        "zoho.com",
        "fastmail.com",
        "hey.com",
        "orange.fr",
        "free.fr",
        "libero.it",
        "t-online.de",
        "comcast.net",
        "verizon.net",
        "att.net",
    }
)

_SUFFIX_RE = r"(?:\s+(?:" + "|".join(LEGAL_SUFFIXES) + r"))+$"
_PREFIX_RE = r"^the\s+"


def _ascii_fold(expr: pl.Expr) -> pl.Expr:
    # NFKD splits "é" into "e" + a combining mark, which the second step drops.
    return expr.str.normalize("NFKD").str.replace_all(r"\p{M}", "")


def company_key(expr: pl.Expr) -> pl.Expr:
    """'ACME Corp., Inc.' / 'Acme Corporation' / 'The Acme Co' -> 'acme'."""
    cleaned = (
        _ascii_fold(expr)
        .str.to_lowercase()
        .str.replace_all(r"&", " and ")
        .str.replace_all(r"\b([a-z])\.([a-z])\.", "$1$2")  # s.a. -> sa ; b.v. -> bv
        .str.replace_all(r"[^a-z0-9]+", " ")
        .str.strip_chars()
    )
    # Collapse spaced initials left over ("s a" -> "sa") only at the end, where forms live.
    cleaned = cleaned.str.replace(r"\b([a-z]) ([a-z])$", "$1$2")
    return (
        cleaned.str.replace(_SUFFIX_RE, "")
        # "& Co." is a legal form too: its "and" goes with the "co" ("J. Smith & Co." is
        # "J. Smith Co."); an "and" that ends a name is never the name's own.
        .str.replace(r"\s+and$", "")
        .str.replace(_PREFIX_RE, "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def domain_from_website(expr: pl.Expr) -> pl.Expr:
    """'https://www.Acme.com/about' -> 'acme.com'."""
    return (
        expr.str.to_lowercase()
        .str.strip_chars()
        .str.replace(r"^[a-z]+://", "")
        .str.replace(r"^www\d?\.", "")
        .str.replace(r"[/:?#].*$", "")
        .str.strip_chars(".")
        .replace("", None)
    )


def domain_from_email(expr: pl.Expr, *, company_only: bool = True) -> pl.Expr:
    """'Jane.Doe@Acme.com' -> 'acme.com'; free-mail domains -> null when company_only."""
    domain = expr.str.to_lowercase().str.strip_chars().str.extract(r"@([a-z0-9.\-]+)$", 1)
    if company_only:
        domain = pl.when(domain.is_in(list(FREE_MAIL_DOMAINS))).then(None).otherwise(domain)
    return domain


def person_key(first: pl.Expr, last: pl.Expr) -> pl.Expr:
    """A blocking key for people: first initial + folded last name ('Bob Smith' -> 'b smith')."""
    f = _ascii_fold(first).str.to_lowercase().str.replace_all(r"[^a-z]", "").str.slice(0, 1)
    ln = _ascii_fold(last).str.to_lowercase().str.replace_all(r"[^a-z]", "")
    return pl.concat_str([f, ln], separator=" ")


def phone_key(expr: pl.Expr) -> pl.Expr:
    """Digits only, last ten kept: '(512) 757-6000' and '+1 512.757.6000' agree."""
    digits = expr.str.replace_all(r"\D", "")
    return pl.when(digits.str.len_chars() >= 7).then(digits.str.slice(-10)).otherwise(None)
