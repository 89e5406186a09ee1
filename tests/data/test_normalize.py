"""The keys names are compared on: legal forms, initials, accents and "&" fold away;
what tells two companies apart stays."""

from __future__ import annotations

import polars as pl
import pytest

from revstack.data.normalize import company_key


def _key(names: list[str]) -> list[str]:
    return pl.DataFrame({"n": names}).select(company_key(pl.col("n")))["n"].to_list()


@pytest.mark.parametrize(
    "variants",
    [
        ["ACME Corp., Inc.", "Acme Corporation", "The Acme Co", "acme"],
        ["J. Smith & Co.", "J. Smith Co.", "J Smith", "j. smith and company"],
        ["Société Générale S.A.", "Societe Generale SA", "societe generale"],
        ["Procter & Gamble", "Procter and Gamble Co."],
    ],
)
def test_variants_of_one_name_share_a_key(variants: list[str]) -> None:
    keys = _key(variants)
    assert len(set(keys)) == 1 and keys[0], keys


def test_what_tells_companies_apart_is_kept() -> None:
    keys = _key(["Smith and Sons", "Smith", "Johnson & Johnson", "Johnson", "Acme Germany GmbH"])
    assert keys == ["smith and sons", "smith", "johnson and johnson", "johnson", "acme germany"]
