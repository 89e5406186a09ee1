"""What the forecast reads, through the agent's contract, and the facts it derives.

- ``load(ctx)``: the CRM tables the forecast uses. A CRM export without stage history
  (maven) gets one rebuilt from what the deal itself says: open from ``created_at``,
  closed on ``close_date``; the amount is known only once a deal is won there.
- ``wins``: every won deal with the moment it was won (its close-out history row), the
  amount then, and the owner then. A won deal whose amount is blank in the CRM (a data
  defect the generator plants too) is valued at the mean of the
  wins of its product before it, so that nothing later changes an earlier figure.
- ``states``: each deal's state at each moment, from ``agents.features.deal_states``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from revstack.agents.engine import Context
from revstack.agents.features import TABLES, deal_states, deal_states_in, frames_connection
from revstack.contracts import load_definitions

__all__ = [
    "ACTIVITIES",
    "Inputs",
    "attach",
    "compute_states",
    "holding_activities",
    "load",
    "wins",
    "states",
    "typical_amount",
    "with_static",
    "with_typical",
]

_STATIC = [
    "opportunity_id",
    "owner_id",
    "created_at",
    "close_date",
    "stage",
    "amount",
    "lead_source",
    "opportunity_type",
    "product",
    "is_closed",
    "is_won",
]
ACTIVITIES = "crm.activities"
# Snapshot moments per query of the deal states in the warehouse (``deal_states_in``):
# over all ~130 at once a large company's states did not finish (docs/forecast.md, Speed).
MOMENTS_PER_QUERY = 16
_SUBMISSIONS = ["user_id", "period_type", "period_start", "submitted_at", "commit_amount"]


@dataclass
class Inputs:
    """The CRM as the forecast sees it (frames already limited to its contract)."""

    history: pl.DataFrame
    deals: pl.DataFrame
    users: pl.DataFrame
    submissions: pl.DataFrame
    feature_tables: dict[str, pl.DataFrame]
    rebuilt_history: bool
    definitions: Any
    as_of: dt.datetime
    # The agent's context when ``feature_tables`` leave out ``crm.activities``: the deal
    # states are then computed in the warehouse (``compute_states``) and the activities'
    # rows read in parts for the fingerprint (``_cache``), never held whole.
    warehouse: Any = None
    # Row hashes of the frames, made by the run's first fingerprint for its second
    # (``_cache``); not carried by ``dataclasses.replace``, whose frames may differ.
    hashed: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)


def _rebuilt(deals: pl.DataFrame, won: Sequence[str], closed: Sequence[str]) -> pl.DataFrame:
    """A history for a CRM that exports none: an opening row, and a closing row."""
    dated = deals.filter(pl.col("created_at").is_not_null())
    is_closed = pl.col("stage").is_in(list(closed))
    opening = dated.select(
        "opportunity_id",
        changed_at=pl.col("created_at"),
        stage=pl.when(is_closed).then(pl.lit("discovery")).otherwise(pl.col("stage")),
        amount=pl.lit(None, pl.Float64),
        close_date=pl.lit(None, pl.Date),
        forecast_category=pl.lit("pipeline"),
        changed_by=pl.col("owner_id"),
    )
    closing = dated.filter(is_closed & pl.col("close_date").is_not_null()).select(
        "opportunity_id",
        changed_at=pl.max_horizontal(
            pl.col("close_date").cast(pl.Datetime("us")), pl.col("created_at")
        ),
        stage="stage",
        amount=pl.when(pl.col("stage").is_in(list(won))).then(pl.col("amount").cast(pl.Float64)),
        close_date="close_date",
        forecast_category=pl.lit("closed"),
        changed_by=pl.col("owner_id"),
    )
    out = pl.concat([opening, closing]).sort("opportunity_id", "changed_at")
    return out.with_columns(
        history_id=pl.format("rebuilt-{}", pl.int_range(pl.len())),
        probability=pl.lit(None, pl.Float64),
    )


def load(ctx: Context) -> Inputs:
    """Read everything the forecast uses through the agent's contract."""
    defs = ctx.definitions if ctx.definitions is not None else load_definitions()
    won = [s.key for s in defs.stages if s.won]
    closed = [s.key for s in defs.stages if s.closed]
    deals = ctx.table("crm.opportunities", _STATIC).with_columns(
        pl.col("amount").cast(pl.Float64), pl.col("created_at").cast(pl.Datetime("us"))
    )
    history = ctx.table("crm.opportunity_history", TABLES["crm.opportunity_history"])
    rebuilt = history.is_empty() and not deals.is_empty()
    if rebuilt:
        history = _rebuilt(deals, won, closed).select(TABLES["crm.opportunity_history"])
    history = history.with_columns(
        pl.col("amount").cast(pl.Float64), pl.col("changed_at").cast(pl.Datetime("us"))
    )
    # A history rebuilt from the deals is not in the warehouse: its states need frames.
    skip = ("crm.opportunity_history",) if rebuilt else ("crm.opportunity_history", ACTIVITIES)
    feature_tables = {t: ctx.table(t, cols) for t, cols in TABLES.items() if t not in skip}
    feature_tables["crm.opportunity_history"] = history
    users = ctx.table("crm.users", ["user_id", "team", "region"])
    subs = ctx.table("crm.forecast_submissions", _SUBMISSIONS).with_columns(
        pl.col("commit_amount").cast(pl.Float64), pl.col("submitted_at").cast(pl.Datetime("us"))
    )
    return Inputs(
        history,
        deals,
        users,
        subs,
        feature_tables,
        rebuilt,
        defs,
        ctx.as_of,
        None if rebuilt else ctx,
    )


def holding_activities(inp: Inputs) -> Inputs:
    """``inp`` with ``crm.activities`` read whole into its frames and the states computed
    from them: for a caller that changes the frames (what a replay would see), which the
    warehouse's tables would not show."""
    if ACTIVITIES in inp.feature_tables:
        return inp
    acts = inp.warehouse.table(ACTIVITIES, TABLES[ACTIVITIES])
    return dataclasses.replace(
        inp, feature_tables={**inp.feature_tables, ACTIVITIES: acts}, warehouse=None
    )


def wins(inp: Inputs) -> pl.DataFrame:
    """One row per won deal: when it was won, for how much, by whom, and when it was created."""
    won_keys = [s.key for s in inp.definitions.stages if s.won]
    first = inp.history.group_by("opportunity_id").agg(created_at=pl.col("changed_at").min())
    out = (
        inp.history.filter(pl.col("stage").is_in(won_keys))
        .sort("changed_at", "history_id")
        .unique("opportunity_id", keep="first")
        .select("opportunity_id", won_at="changed_at", raw_amount="amount", owner_id="changed_by")
        .join(first, on="opportunity_id", how="left")
        .join(inp.deals.select("opportunity_id", "product"), on="opportunity_id", how="left")
        .sort("won_at")
    )
    out = with_typical(out, typical_amount(out), "won_at")
    return out.with_columns(
        amount=pl.coalesce("raw_amount", "typical", pl.lit(0.0)),
        imputed=pl.col("raw_amount").is_null(),
    ).drop("typical")


def typical_amount(won: pl.DataFrame) -> pl.DataFrame:
    """Running mean of won amounts per product (product ``*``: all of them), stamped at
    each win: the value of a deal whose amount is unknown at a later moment.

    The arithmetic mean, because what is summed is money: won amounts are heavy-tailed,
    so a geometric mean values blank wins far below a typical win's worth and leaves the
    CRM's won revenue (and the forecast with it) under the truth (docs/forecast.md, How
    it works, step 1)."""
    known = (
        won.filter(pl.col("raw_amount") > 0)
        .sort("won_at")
        .with_columns(product=pl.col("product").fill_null("-"))
    )
    overall = known.select(
        at="won_at",
        product=pl.lit("*"),
        typical=pl.col("raw_amount").cum_sum() / pl.int_range(1, pl.len() + 1),
        k=pl.int_range(1, pl.len() + 1),
    )
    per = known.select(
        at="won_at",
        product="product",
        typical=(pl.col("raw_amount").cum_sum() / pl.int_range(1, pl.len() + 1)).over("product"),
        k=pl.int_range(1, pl.len() + 1).over("product"),
    )
    # A product with fewer than five wins so far is valued at the overall figure.
    return pl.concat([overall, per.filter(pl.col("k") >= 5)]).drop("k").sort("at")


def with_typical(df: pl.DataFrame, typical: pl.DataFrame, at: str) -> pl.DataFrame:
    """Add ``typical``: the typical won amount of the row's product strictly before ``at``."""
    df = df.with_columns(_p=pl.col("product").fill_null("-"), _o=pl.int_range(pl.len())).sort(at)
    kw: dict = {
        "left_on": at,
        "right_on": "at",
        "strategy": "backward",
        "allow_exact_matches": False,
    }
    per = df.join_asof(
        typical.filter(pl.col("product") != "*").rename({"product": "_p"}),
        by="_p",
        check_sortedness=False,
        **kw,
    )
    both = per.join_asof(
        typical.filter(pl.col("product") == "*")
        .drop("product")
        .rename({"typical": "_all", "at": "at_all"}),
        left_on=at,
        right_on="at_all",
        strategy="backward",
        allow_exact_matches=False,
    )
    return (
        both.with_columns(typical=pl.coalesce("typical", "_all"))
        .sort("_o")
        .drop("_p", "_o", "_all", "at", "at_all", strict=False)
    )


def states(inp: Inputs, moments: Sequence[dt.datetime]) -> pl.DataFrame:
    """Every deal open at each moment, in its state then (``agents.features``), with the
    static facts known from its creation (lead source, type, product)."""
    return with_static(inp, compute_states(inp, moments))


def compute_states(
    inp: Inputs, moments: Sequence[dt.datetime], deals: Sequence[str] | None = None
) -> pl.DataFrame:
    """``deal_states`` of the open deals at ``moments`` (``deals``: only these): from the
    frames when they hold the activities, else in the warehouse, with the history's
    amount as a double as ``load`` holds it (the same rows either way)."""
    if ACTIVITIES not in inp.feature_tables:
        return deal_states_in(
            inp.warehouse,
            list(moments),
            definitions=inp.definitions,
            open_only=True,
            deals=deals,
            types={"crm.opportunity_history.amount": "DOUBLE"},
            moments_per_query=MOMENTS_PER_QUERY,
        )
    frames = inp.feature_tables
    if deals is not None:
        ids = pl.Series(deals, dtype=pl.String).implode()
        frames = {
            t: df if t == "crm.contacts" else df.filter(pl.col("opportunity_id").is_in(ids))
            for t, df in frames.items()
        }
    con = frames_connection(frames)
    try:
        return deal_states(con, list(moments), definitions=inp.definitions, open_only=True)
    finally:
        con.close()


def attach(df: pl.DataFrame, other: pl.DataFrame, on: str | list[str]) -> pl.DataFrame:
    """``df.join(other, on=on, how="left")``, without copying ``df``: only its ``on``
    columns are joined, and ``other``'s columns are put beside ``df``'s own (a left join
    keeps the left rows' order). The deal rows are tens of millions on a large company,
    and a join copies every column. The join itself when ``other`` repeats a key or a
    column name (more rows, or suffixed names)."""
    keys = [on] if isinstance(on, str) else on
    found = df.select(keys).join(other, on=keys, how="left", maintain_order="left")
    added = found.drop(keys)
    if len(found) != len(df) or set(added.columns) & set(df.columns):
        return df.join(other, on=keys, how="left")
    return df.hstack(added.get_columns())


def with_static(inp: Inputs, states: pl.DataFrame) -> pl.DataFrame:
    """``deal_states``' rows with the static facts known from a deal's creation."""
    static = inp.deals.select("opportunity_id", "lead_source", "opportunity_type", "product")
    return attach(states, static, "opportunity_id")
