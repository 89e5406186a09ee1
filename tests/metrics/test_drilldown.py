"""Every audit figure leads to exactly the records behind it."""

from __future__ import annotations

import polars as pl

from revstack.contracts import load_definitions
from revstack.data.warehouse import Warehouse
from revstack.metrics.drilldown import DRILLABLE, drill_down, territories
from revstack.metrics.quality import measure


def test_each_figure_drills_down_to_as_many_records_as_it_counts(small_company: Warehouse) -> None:
    d = load_definitions()
    with small_company.connect() as con:
        report = measure(con, d)
        checked = 0
        for row in report.metrics.iter_rows(named=True):
            kind = row["check_kind"]
            assert kind in DRILLABLE, kind
            records = drill_down(con, kind, row["object_type"], row["item"], definitions=d)
            n = records["record_id"].n_unique()
            if kind == "completeness":
                assert n == row["denominator"] - row["numerator"], row
            elif kind == "duplicates_exact":  # the figure counts all but one per group
                assert n - records["group"].n_unique() == row["numerator"], row
            else:
                assert n == row["numerator"], row
            # every record was found in the CRM (a NOT NULL column of its table is filled)
            always = "is_active" if row["object_type"] == "contacts" else "name"
            assert records[always].null_count() == 0, row
            checked += n > 0
        assert checked >= 10  # the small company has defects of most kinds


def test_team_and_region_narrow_to_the_owners_records(small_company: Warehouse) -> None:
    with small_company.connect() as con:
        terr = territories(con)
        team = terr["team"].drop_nulls()[0]
        every = drill_down(con, "completeness", "accounts", "industry")
        mine = drill_down(con, "completeness", "accounts", "industry", team=team)
    assert 0 < len(mine) < len(every)
    assert mine["team"].unique().to_list() == [team]
    assert set(mine["record_id"]) <= set(every["record_id"])
    assert every.filter(pl.col("team") == team).height == len(mine)
