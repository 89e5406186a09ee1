"""The forecast's shared frames (``agents.forecast._frames``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from revstack.agents.forecast import _frames, _inputs, _periods
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse
from tests.agents._weeks import forecast_inputs

_BY = [*_frames.KEY, "owner_id"]


def _whole(wins: pl.DataFrame, snaps: pl.DataFrame) -> pl.DataFrame:
    """Every snapshot paired with every win at once, then filtered: the sums the parts
    must give to the bit."""
    pairs = snaps.join(wins.select("won_at", "owner_id", "amount"), how="cross").filter(
        (pl.col("won_at") >= pl.col("period_start").cast(pl.Datetime("us")))
        & (pl.col("won_at") <= pl.col("moment"))
    )
    return pairs.group_by(*_BY).agg(won=pl.col("amount").sum())


def _same_bits(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    a, b = a.sort(_BY), b.sort(_BY)
    return a.select(_BY).equals(b.select(_BY)) and np.array_equal(
        a["won"].to_numpy().view(np.int64), b["won"].to_numpy().view(np.int64)
    )


def test_won_so_far_by_hand() -> None:
    snaps = pl.DataFrame(
        {
            "period_kind": ["month", "month"],
            "period_start": [dt.date(2026, 3, 1), dt.date(2026, 4, 1)],
            "offset": [10, 10],
            "moment": [dt.datetime(2026, 3, 11), dt.datetime(2026, 4, 11)],
        }
    )
    wins = pl.DataFrame(
        {
            "won_at": [
                dt.datetime(2026, 2, 28, 23),  # before the period
                dt.datetime(2026, 3, 1),  # its first moment
                dt.datetime(2026, 3, 11),  # the snapshot's moment: known then
                dt.datetime(2026, 3, 11, 0, 0, 1),  # after it
                dt.datetime(2026, 4, 2),
            ],
            "owner_id": ["a", "a", "b", "a", "a"],
            "amount": [1.0, 2.0, 4.0, 8.0, 16.0],
        }
    )
    for at_once in (1, 5, 10**9):
        got = _frames.won_so_far(wins, snaps, pairs_at_once=at_once).sort(_BY)
        assert got.select("period_start", "owner_id", "won").rows() == [
            (dt.date(2026, 3, 1), "a", 2.0),
            (dt.date(2026, 3, 1), "b", 4.0),
            (dt.date(2026, 4, 1), "a", 16.0),
        ]


def test_won_so_far_in_parts_is_the_whole_cross_join_to_the_bit(
    small_company: Warehouse,
) -> None:
    """Sums of floats depend on their order, so equal bits mean each part kept the whole
    join's pairs in its order (wins in any order: the sums follow the frame's)."""
    with small_company.connect() as con:
        as_of = data_as_of(con)
    assert as_of is not None
    inp = forecast_inputs(small_company, as_of)
    wins = _inputs.wins(inp)
    first = wins["won_at"].min()
    assert isinstance(first, dt.datetime)
    snaps = pl.concat(
        [_periods.snapshots(first.date(), inp.as_of), _periods.live_snapshots(inp.as_of)]
    ).unique(_frames.KEY, keep="last")
    whole = _whole(wins, snaps)
    assert len(whole) > 100
    for at_once in (1, len(wins) * 3 + 1, 10**12):
        assert _same_bits(_frames.won_so_far(wins, snaps, pairs_at_once=at_once), whole)
    shuffled = wins.sample(fraction=1.0, shuffle=True, seed=1)
    assert _same_bits(_frames.won_so_far(shuffled, snaps, pairs_at_once=7), _whole(shuffled, snaps))
