"""The realism report (issue #17) and the properties the generator plants so that no single
field or rule gives a real CRM's hard questions away (small company, seed 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revstack.data.generator import REALISM_COLUMNS, real_figures, realism
from revstack.data.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def test_the_report_measures_every_tell_with_a_target(small_company: Warehouse) -> None:
    table = realism(small_company)
    assert table.columns == REALISM_COLUMNS
    assert {"stage path", "phantoms", "working week", "duplicates", "forecast"} <= set(
        table["tell"]
    )
    assert table["figure"].null_count() == 0
    shares = table.filter(~table["measure"].str.contains(r"\(days\)"))
    assert ((shares["figure"] >= 0) & (shares["figure"] <= 1)).all()
    # a row with a band says pass or fail, one without says neither
    banded = table["target"] != ""
    assert (table["ok"].is_null() == ~banded).all()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no public data in ../shared/data")
def test_real_data_gives_its_figures() -> None:
    real = real_figures(SHARED)
    # dedupe_orgs: hand-labelled organisations, where an exact phone match is often wrong
    phone = real["account pairs with the same phone that are different companies"]
    assert 0.10 < phone < 0.25
