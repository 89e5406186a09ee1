"""The learned risk score's inputs and labels: will an open deal slip out of its quarter
or be lost within the next four weeks? The estimator itself is ``_risk_estimator``
(imported only when a model is fitted: scikit-learn takes seconds to import).

Training rows are weekly snapshots; a snapshot's label comes only from what happened in
the ``horizon`` after it, and only snapshots whose horizon has fully passed are used,
so the model never learns from a future it could not have seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from revstack.agents.features import deal_states, frames_connection
from revstack.agents.pipeline_health._signals import Benchmarks

__all__ = [
    "FEATURES",
    "REASON_GROUPS",
    "closed_outcomes",
    "feature_matrix",
    "outcome_labels",
    "HORIZON_DAYS",
]

HORIZON_DAYS = 28
_CATEGORIES = {"pipeline": 0, "best_case": 1, "commit": 2}
FEATURES = [
    "stage_index",
    "probability",
    "category",
    "log_amount",
    "amount_ratio",
    "amount_changes",
    "amount_decreases",
    "days_open",
    "days_in_stage",
    "age_ratio",
    "close_date_pushes",
    "pushes_out_of_quarter",
    "days_since_push",
    "close_date_moved_days",
    "days_to_close",
    "days_since_two_way",
    "quiet_ratio",
    "days_since_activity",
    "two_way_30d",
    "outbound_30d",
    "outbound_since_two_way",
    "engaged_contacts",
    "engaged_30d",
    "contacts_on_deal",
    "has_champion",
    "has_economic_buyer",
    "champion_left",
    "economic_buyer_left",
    "champion_silent_days",
]
# Reason codes: the features a manager would name together, switched back to a typical
# deal's values one group at a time; the groups that lower the risk most are the reasons.
REASON_GROUPS: dict[str, list[str]] = {
    "quiet": [
        "days_since_two_way",
        "quiet_ratio",
        "days_since_activity",
        "two_way_30d",
        "outbound_30d",
        "outbound_since_two_way",
    ],
    "slips": [
        "close_date_pushes",
        "pushes_out_of_quarter",
        "days_since_push",
        "close_date_moved_days",
    ],
    "close_date": ["days_to_close"],
    "stage_age": ["days_in_stage", "age_ratio", "days_open"],
    "buyers": ["engaged_contacts", "engaged_30d", "contacts_on_deal", "has_economic_buyer"],
    "champion": ["has_champion", "champion_left", "economic_buyer_left", "champion_silent_days"],
    "amount": ["log_amount", "amount_ratio", "amount_changes", "amount_decreases"],
    "stage": ["stage_index", "probability", "category"],
}


def feature_matrix(states: pl.DataFrame, bench: Benchmarks, stages: list[str]) -> np.ndarray:
    """The model's inputs (``FEATURES`` order) from ``deal_states`` rows; NaN where unknown."""
    stage_ix = {k: float(i) for i, k in enumerate(stages)}
    x = states.select(
        stage_index=pl.col("stage").replace_strict(stage_ix, default=None, return_dtype=pl.Float64),
        probability="probability",
        category=pl.col("forecast_category").replace_strict(
            _CATEGORIES, default=None, return_dtype=pl.Float64
        ),
        log_amount=pl.col("amount").log1p(),
        amount_ratio="amount_ratio",
        amount_changes="amount_changes",
        amount_decreases="amount_decreases",
        days_open="days_open",
        days_in_stage="days_in_stage",
        age_ratio=pl.col("days_in_stage")
        / pl.col("stage").replace_strict(
            bench.stage_age_days, default=None, return_dtype=pl.Float64
        ),
        close_date_pushes="close_date_pushes",
        pushes_out_of_quarter="pushes_out_of_quarter",
        days_since_push="days_since_push",
        close_date_moved_days="close_date_moved_days",
        days_to_close="days_to_close",
        days_since_two_way="days_since_two_way",
        quiet_ratio=pl.col("days_since_two_way")
        / pl.col("stage").replace_strict(bench.quiet_days, default=None, return_dtype=pl.Float64),
        days_since_activity="days_since_activity",
        two_way_30d="two_way_30d",
        outbound_30d="outbound_30d",
        outbound_since_two_way="outbound_since_two_way",
        engaged_contacts="engaged_contacts",
        engaged_30d="engaged_30d",
        contacts_on_deal="contacts_on_deal",
        has_champion="has_champion",
        has_economic_buyer="has_economic_buyer",
        champion_left="champion_left",
        economic_buyer_left="economic_buyer_left",
        champion_silent_days=(pl.col("as_of") - pl.col("champion_last_reply_at")).dt.total_days(),
    )
    return x.select(FEATURES).cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)


def outcome_labels(
    states: pl.DataFrame, final: pl.DataFrame, horizon_days: int = HORIZON_DAYS
) -> pl.DataFrame:
    """CRM-only labels for open-deal snapshots: within ``horizon_days`` the deal was lost,
    its close date moved into a later quarter, it was won in a later quarter, or its
    close date's quarter ended with the deal still open.

    ``states``: open deals at weekly moments (``deal_states(..., open_only=True)``);
    ``final``: every deal at the data's as-of (``deal_states(..., as_of)``). Only rows
    whose moment + horizon is itself one of the moments are labelled (others dropped).
    """
    h = dt.timedelta(days=horizon_days)
    moments = set(states["as_of"].unique().to_list())
    now = states.filter(pl.col("as_of").is_in([m for m in moments if m + h in moments]))
    later = states.select(
        "opportunity_id", as_of=pl.col("as_of") - h, later_close="close_date", _seen=pl.lit(True)
    )
    # Named apart from the states' own ``is_won`` (False on every open row): joined under
    # the same name, the open row's column would be the one read.
    closed = final.filter("is_closed").select(
        "opportunity_id", won="is_won", closed_at="stage_entered_at", closed_on="close_date"
    )
    quarter = pl.col("close_date").dt.truncate("1q")
    out = (
        now.join(later, on=["as_of", "opportunity_id"], how="left")
        .join(closed, on="opportunity_id", how="left")
        .with_columns(
            _open_later=pl.col("_seen").fill_null(False)
            | pl.col("closed_at").is_null()
            | (pl.col("closed_at") > pl.col("as_of") + h),
        )
        .with_columns(
            label=pl.when(pl.col("_open_later"))
            # still open: its close date moved to a later quarter, or its quarter ended
            .then(
                (pl.col("later_close").dt.truncate("1q") > quarter)
                | (quarter.dt.offset_by("1q").cast(pl.Datetime("us")) <= pl.col("as_of") + h)
            )
            .otherwise(~pl.col("won") | (pl.col("closed_on").dt.truncate("1q") > quarter))
            .fill_null(False)
        )
    )
    return out.select("as_of", "opportunity_id", "label")


# What ``outcome_labels`` and the benchmarks read of every deal at the as-of: all of it
# comes from the deal's history rows.
OUTCOME_COLUMNS = [
    "as_of",
    "opportunity_id",
    "stage",
    "close_date",
    "is_closed",
    "is_won",
    "stage_entered_at",
]


def closed_outcomes(
    frames: Mapping[str, pl.DataFrame], as_of: dt.datetime, definitions: Any
) -> pl.DataFrame:
    """Every deal at ``as_of`` (``deal_states(con, as_of)``), only the columns
    ``outcome_labels`` and the benchmarks read: stage, close date, closed / won, when the
    stage was entered. Those come from ``crm.opportunity_history`` alone, so the states
    are rebuilt with the other tables empty: the same values, without the activity and
    buying-role joins over every deal ever opened (on mid, 100k deals with 2M activities:
    11.7 s of a 44 s run at load 7, against under a second)."""
    empty = {t: f.clear() for t, f in frames.items() if t != "crm.opportunity_history"}
    con = frames_connection({**empty, "crm.opportunity_history": frames["crm.opportunity_history"]})
    try:
        return deal_states(con, as_of, definitions=definitions).select(OUTCOME_COLUMNS)
    finally:
        con.close()
