"""What a briefing is built from: the contract-scoped reads, narrowed to the deals to brief.

Everything is read once per run through the context (``Frames``), then indexed by deal
and account (``Inputs``), so each briefing is dictionary look-ups. Only completed
activities at or before the data's as-of count as history; scheduled ones are the
meetings to prepare. A briefing's windows (the account's activity, news) and day counts
end on its meeting's day, not on the data's as-of: what it says then depends only on
rows, so a briefing whose rows did not change is the same text a week later
(``_fingerprint``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import polars as pl

from revstack.agents._cite import Cite
from revstack.agents.deal_prep._hygiene import Hygiene
from revstack.agents.engine import Context
from revstack.data.normalize import domain_from_website

__all__ = [
    "Frames",
    "Inputs",
    "anchor",
    "horizon_days",
    "index_inputs",
    "read_frames",
    "Rows",
    "recent_and_last",
    "upcoming_meetings",
    "window_start",
]

ACTIVITY_COLUMNS = [
    "activity_id",
    "activity_type",
    "direction",
    "status",
    "occurred_at",
    "account_id",
    "contact_id",
    "opportunity_id",
    "subject",
]
NEWS_DAYS = 180
HISTORY_DAYS = 90  # the account section counts activity of these days
# What a risk flag must carry to be shown (the handoff check on pipeline health's output).
FLAG_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "opportunity_id": pl.String(),
    "signal": pl.String(),
    "reason": pl.String(),
}


@dataclass
class Inputs:
    as_of: dt.datetime
    definitions: Any
    deals: dict[str, dict[str, Any]]
    accounts: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    contacts: dict[str, dict[str, Any]]
    roles: dict[str, list[dict[str, Any]]]
    history: dict[str, list[dict[str, Any]]]
    deals_by_account: dict[str, list[str]]
    # an account's activities, with the fields its statement reads (_ACCOUNT_ACT_FIELDS)
    acts_by_account: dict[str, Sequence[dict[str, Any]]]
    acts_by_deal: dict[str, list[dict[str, Any]]]
    news_by_account: dict[str, list[dict[str, Any]]]
    domains: dict[str, str | None]
    flags: dict[str, list[dict[str, Any]]]
    flags_run: str | None
    hygiene: Hygiene
    # Per account, aligned with acts_by_account: each activity's time and its cite of
    # occurred_at, built together (an account's activity statement cites hundreds).
    times_by_account: dict[str, list[dt.datetime]] = field(default_factory=dict)
    occurred_by_account: dict[str, list[Cite]] = field(default_factory=dict)
    # A briefed deal's activity -> its cites of contact_id and direction (a touch), built
    # together: stakeholders and discussion points cite every touch on the deal.
    touches: dict[str, tuple[Cite, Cite]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Statements the same for every briefing of a run that shares their key (an account's
    # activity), built once.
    memo: dict[tuple[str, ...], Any] = field(default_factory=dict)


@dataclass
class Frames:
    """The rows the briefings of some deals read, before indexing."""

    deals: pl.DataFrame  # the deals to brief and every deal of their accounts
    accounts: pl.DataFrame  # with ``domain``
    roles: pl.DataFrame
    acts: pl.DataFrame  # completed, at or before as-of, of the accounts and the deals
    contacts: pl.DataFrame
    history: pl.DataFrame
    news: pl.DataFrame
    users: pl.DataFrame
    flags: pl.DataFrame  # the latest run's
    flags_run: str | None


def anchor(meeting: dict[str, Any] | None, as_of: dt.datetime) -> dt.date:
    """The day a briefing's windows and day counts end on: its meeting's (on demand: as-of)."""
    return (meeting["occurred_at"] if meeting is not None else as_of).date()


def window_start(at: dt.date, days: int) -> dt.datetime:
    """The first moment of the ``days`` days to ``at`` (``at`` included)."""
    return dt.datetime.combine(at - dt.timedelta(days=days - 1), dt.time())


def _rows_by(df: pl.DataFrame, key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in df.iter_rows(named=True):
        if row[key] is not None:
            out[row[key]].append(row)
    return out


_ACCOUNT_ACT_FIELDS = ("activity_id", "activity_type", "occurred_at", "subject")


class Rows(Sequence[dict[str, Any]]):
    """Rows ``start`` to ``stop`` of some columns, each made a dict when it is looked up
    (an account's activity statement looks at a few of its hundreds of rows)."""

    def __init__(self, columns: dict[str, list[Any]], start: int, stop: int) -> None:
        self.columns, self.start, self.stop = columns, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> Rows: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | Rows:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("Rows: a slice with a step")
            return Rows(self.columns, self.start + start, self.start + max(start, stop))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return {k: v[self.start + i] for k, v in self.columns.items()}


def _account_acts(
    acts: pl.DataFrame,
) -> tuple[
    dict[str, Sequence[dict[str, Any]]], dict[str, list[dt.datetime]], dict[str, list[Cite]]
]:
    """Per account, in the order of ``acts``: its rows, each one's ``occurred_at`` and its
    cite, ``cite_keyed("crm.activities", "activity_id", row, "occurred_at")``, for every
    row at once (the cites made in C from the columns)."""
    # each account's rows together, in their order
    grouped = (
        acts.filter(pl.col("account_id").is_not_null())
        .with_row_index("at")
        .sort("account_id", "at")
        .drop("at")
    )
    # the fields the activity statement looks at (each a Python object per row)
    columns = {c: grouped[c].to_list() for c in _ACCOUNT_ACT_FIELDS}
    times = columns["occurred_at"]
    stamps = list(map(dt.datetime.isoformat, times, itertools.repeat(" ")))
    cites = list(
        map(
            tuple.__new__,
            itertools.repeat(Cite),
            zip(
                itertools.repeat("crm.activities"),
                zip(zip(itertools.repeat("activity_id"), columns["activity_id"])),
                itertools.repeat("occurred_at"),
                stamps,
            ),
        )
    )
    runs = grouped.group_by("account_id", maintain_order=True).len()
    rows: dict[str, Sequence[dict[str, Any]]] = {}
    by_time, by_cite, at = {}, {}, 0
    for account, n in runs.iter_rows():
        rows[account] = Rows(columns, at, at + n)
        by_time[account], by_cite[account] = times[at : at + n], cites[at : at + n]
        at += n
    return rows, by_time, by_cite


def _touches(acts: pl.DataFrame) -> dict[str, tuple[Cite, Cite]]:
    """Activity id -> ``act_cite(row, "contact_id", "direction")`` of every row at once."""
    ids = acts["activity_id"].to_list()
    keys = list(zip(zip(itertools.repeat("activity_id"), ids)))
    table = itertools.repeat("crm.activities")
    cites = [
        map(
            tuple.__new__,
            itertools.repeat(Cite),
            zip(table, keys, itertools.repeat(name), acts[name].to_list()),
        )
        for name in ("contact_id", "direction")
    ]
    return dict(zip(ids, zip(*cites, strict=True), strict=True))


def recent_and_last(acts: pl.DataFrame, since: dt.datetime) -> pl.DataFrame:
    """An account's activities as briefings read them: those from ``since`` (the
    earliest window's start) and the latest one, in order. Years of history as Python
    rows were most of reading a briefing's inputs on mid."""
    latest = pl.int_range(pl.len()).over("account_id") == pl.len().over("account_id") - 1
    return acts.filter(
        pl.col("account_id").is_not_null() & ((pl.col("occurred_at") >= since) | latest)
    )


def horizon_days(ctx: Context) -> int | None:
    """How many days ahead a scheduled run briefs meetings (contract param
    ``horizon_days``; 0 or absent: every upcoming meeting)."""
    days = int(ctx.params.get("horizon_days") or 0)
    if days < 0:
        raise ValueError(f"deal_prep: horizon_days must be 0 or more, not {days}")
    return days or None


def upcoming_meetings(ctx: Context) -> pl.DataFrame:
    """Scheduled meetings after the data's as-of that belong to a deal, earliest first;
    only those within the horizon, when one is set."""
    # only rows from as-of on: a scheduled meeting is later than the data (4k rows of 2.0M)
    acts = ctx.table("crm.activities", ACTIVITY_COLUMNS, since=("occurred_at", ctx.as_of))
    days = horizon_days(ctx)
    within = (
        pl.col("occurred_at") <= ctx.as_of + dt.timedelta(days=days)
        if days is not None
        else pl.lit(True)
    )
    return acts.filter(
        (pl.col("activity_type") == "meeting")
        & (pl.col("status") == "scheduled")
        & (pl.col("occurred_at") > ctx.as_of)
        & within
        & pl.col("opportunity_id").is_not_null()
    ).sort("occurred_at", "activity_id")


def _latest_flags(ctx: Context) -> tuple[pl.DataFrame, str | None]:
    """Pipeline health's flags of its latest run, checked at the handoff.

    Only the greatest run's rows are read: each weekly run adds its flags (about 15k rows
    and their evidence on mid), and reading every run's grew by that every week. The
    table's columns that the check looks at are NOT NULL text, so no row of an earlier
    run could be dropped by it; should every row of the greatest run fail it, every run
    is read and checked, as before."""
    raw = ctx.latest_run("ops.risk_flags")
    if raw.is_empty():
        return raw, None
    checked = len(ctx.skipped)
    flags = ctx.validated("ops.risk_flags", raw, FLAG_SCHEMA, key="opportunity_id")
    if flags.is_empty():  # the latest run's rows all failed the check: every run's
        del ctx.skipped[checked:]
        raw = ctx.table("ops.risk_flags")
        flags = ctx.validated("ops.risk_flags", raw, FLAG_SCHEMA, key="opportunity_id")
    if flags.is_empty():
        return flags, None
    latest = str(flags["run_id"].max())
    return flags.filter(pl.col("run_id") == latest).sort("opportunity_id", "signal"), latest


def read_frames(
    ctx: Context,
    deal_ids: Sequence[str],
    *,
    meeting_contacts: Sequence[str],
    first: dt.date,
    last: dt.date,
) -> Frames:
    """The rows the briefings of ``deal_ids`` read, for windows ending ``first`` to ``last``."""
    as_of = ctx.as_of
    ids = list(deal_ids)
    opps = ctx.table("crm.opportunities")
    targets = opps.filter(pl.col("opportunity_id").is_in(ids))
    account_ids = targets["account_id"].drop_nulls().unique().to_list()
    deals = opps.filter(
        pl.col("opportunity_id").is_in(ids) | pl.col("account_id").is_in(account_ids)
    )
    accounts = (
        ctx.table("crm.accounts")
        .filter(pl.col("account_id").is_in(account_ids))
        .with_columns(domain=domain_from_website(pl.col("website")))
    )
    roles = ctx.table("crm.opportunity_contacts", any_of={"opportunity_id": ids})
    # The activity of these accounts and deals only (on mid's weekly run 0.3M rows of 2.0M)
    acts = (
        ctx.table(
            "crm.activities",
            ACTIVITY_COLUMNS,
            any_of={"account_id": account_ids, "opportunity_id": ids},
        )
        .filter((pl.col("status") == "completed") & (pl.col("occurred_at") <= as_of))
        .sort("occurred_at", "activity_id")
    )
    contact_ids = (
        set(roles["contact_id"].to_list())
        | set(acts.filter(pl.col("opportunity_id").is_in(ids))["contact_id"].drop_nulls().to_list())
        | {c for c in meeting_contacts if c is not None}
    )
    contacts = ctx.table("crm.contacts").filter(pl.col("contact_id").is_in(sorted(contact_ids)))
    history = ctx.table(
        "crm.opportunity_history", any_of={"opportunity_id": deals["opportunity_id"].to_list()}
    ).sort("opportunity_id", "changed_at", "history_id")
    domains = [d for d in accounts["domain"].to_list() if d]
    news = (
        ctx.table("ref.news", any_of={"domain": domains})
        .filter(
            (pl.col("published_at") >= window_start(first, NEWS_DAYS))
            & (pl.col("published_at") < window_start(last + dt.timedelta(days=1), 1))
        )
        .sort("published_at", "news_id", descending=True)
    )
    flags, flags_run = _latest_flags(ctx)
    return Frames(
        deals=deals,
        accounts=accounts,
        roles=roles,
        acts=acts,
        contacts=contacts,
        history=history,
        news=news,
        users=ctx.table("crm.users"),
        flags=flags,
        flags_run=flags_run,
    )


def index_inputs(
    f: Frames,
    deal_ids: Sequence[str],
    *,
    as_of: dt.datetime,
    first: dt.date,
    definitions: Any,
    hygiene: Hygiene,
) -> Inputs:
    """The rows of ``f`` that the briefings of ``deal_ids`` read, indexed (``first``: the
    earliest window's end). Contacts and news stay as read: a briefing looks up only its own."""
    ids = list(deal_ids)
    account_ids = (
        f.deals.filter(pl.col("opportunity_id").is_in(ids))["account_id"].drop_nulls().unique()
    ).to_list()
    deals = f.deals.filter(
        pl.col("opportunity_id").is_in(ids) | pl.col("account_id").is_in(account_ids)
    )
    acts = f.acts.filter(
        pl.col("account_id").is_in(account_ids) | pl.col("opportunity_id").is_in(ids)
    )
    accounts = f.accounts.filter(pl.col("account_id").is_in(account_ids))
    by_domain = _rows_by(f.news, "domain")
    acc_rows = {r["account_id"]: r for r in accounts.iter_rows(named=True)}
    by_account = recent_and_last(acts, window_start(first, HISTORY_DAYS))
    by_account_rows, times, occurred = _account_acts(by_account)
    deal_acts = acts.filter(pl.col("opportunity_id").is_in(ids))
    return Inputs(
        as_of=as_of,
        definitions=definitions,
        deals={r["opportunity_id"]: r for r in deals.iter_rows(named=True)},
        accounts=acc_rows,
        users={r["user_id"]: r for r in f.users.iter_rows(named=True)},
        contacts={r["contact_id"]: r for r in f.contacts.iter_rows(named=True)},
        roles=_rows_by(
            f.roles.filter(pl.col("opportunity_id").is_in(ids)).sort(
                "opportunity_id", "contact_id"
            ),
            "opportunity_id",
        ),
        # only a briefed deal's own history is shown (not its account's other deals')
        history=_rows_by(f.history.filter(pl.col("opportunity_id").is_in(ids)), "opportunity_id"),
        deals_by_account={
            k: [r["opportunity_id"] for r in v]
            for k, v in _rows_by(deals.sort("created_at", "opportunity_id"), "account_id").items()
        },
        acts_by_account=by_account_rows,
        times_by_account=times,
        occurred_by_account=occurred,
        acts_by_deal=_rows_by(deal_acts, "opportunity_id"),
        touches=_touches(deal_acts),
        news_by_account={a: by_domain.get(r["domain"], []) for a, r in acc_rows.items()},
        domains={a: r["domain"] for a, r in acc_rows.items()},
        flags=_rows_by(f.flags.filter(pl.col("opportunity_id").is_in(ids)), "opportunity_id"),
        flags_run=f.flags_run,
        hygiene=hygiene,
    )
