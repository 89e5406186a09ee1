"""What a briefing reads, as one digest per meeting: a briefing whose digest is stored is
not built again (docs/deal_prep.md, Weekly runs).

A briefing is a function of the rows it looks up in ``Inputs`` and of the run's settings,
and of nothing else: its windows and day counts end on its meeting's day
(``_inputs.anchor``), not on the data's as-of. So the digest hashes, per meeting, every
row it can look up, a superset where that is simpler (a stale superset only rebuilds a
briefing that would come out the same):

- the meeting's activity row and its contact;
- the deal's row, its owner's user row, its history, its buying roles, its completed
  activities and every contact on them or the roles, the latest risk run's flags on it;
- the account's row (with its domain), every deal on the account, the account's
  completed activities from the meeting's window start and its latest one, the news of
  its domain in the meeting's window;
- the hygiene findings (blanks, duplicates and the rows they cite) of the deal, the
  account and those contacts;
- the settings: agent version, prose mode, definitions, duplicate methods, whether
  pipeline health has run.

Row hashes are polars' (``hash_rows``), stable for one polars version: after an upgrade
every digest differs once and every briefing is rebuilt, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import polars as pl
from polars.dataframe.group_by import GroupBy

from revstack.agents.deal_prep._hygiene import Hygiene
from revstack.agents.deal_prep._inputs import (
    HISTORY_DAYS,
    NEWS_DAYS,
    Frames,
)

__all__ = ["input_digests"]

_SEED = 0x5EED


def _hashed(df: pl.DataFrame, key: str | Sequence[str], name: str) -> pl.DataFrame:
    """One u64 per ``key``: the hash of its rows' hashes, sorted (order is in the rows)."""
    keys = [key] if isinstance(key, str) else list(key)
    rows = df.with_columns(_h=df.hash_rows(seed=_SEED))
    return _combined(rows.group_by(keys), name)


def _combined(groups: GroupBy, name: str) -> pl.DataFrame:
    """The hash of each group's sorted ``_h`` (polars hashes a list column whole)."""
    return groups.agg(pl.col("_h").sort().alias(name)).with_columns(pl.col(name).hash(seed=_SEED))


def _hygiene(h: Hygiene) -> pl.DataFrame:
    """object kind, record id -> a digest of every finding a briefing shows about it."""
    keys = sorted(set(h.blanks) | set(h.duplicates))
    out = []
    for obj, rec in keys:
        dups = h.duplicates.get((obj, rec), [])
        cited = [
            (h.entity_rows.get((obj, x)), h.others.get((obj, x)))
            for x in [rec, *(d.other for d in dups)]
        ]
        text = repr((h.blanks.get((obj, rec)), dups, cited))
        out.append((obj, rec, hashlib.md5(text.encode()).hexdigest()))
    return pl.DataFrame(
        out, schema={"kind": pl.String, "record_id": pl.String, "hy": pl.String}, orient="row"
    )


def input_digests(
    f: Frames, meetings: pl.DataFrame, hygiene: Hygiene, settings: str
) -> pl.DataFrame:
    """``activity_id`` and ``inputs`` (hex digest) of each meeting in ``meetings``."""
    hy = _hygiene(hygiene)

    def hy_of(kind: str, name: str) -> pl.DataFrame:
        return hy.filter(pl.col("kind") == kind).select(
            pl.col("record_id"), pl.col("hy").alias(name)
        )

    at = pl.col("occurred_at").dt.date()
    m = meetings.select(
        "activity_id",
        "opportunity_id",
        "contact_id",
        at=at,
        m_h=meetings.hash_rows(seed=_SEED),
    )
    deals = f.deals.with_columns(o_h=f.deals.hash_rows(seed=_SEED))
    m = m.join(
        deals.select("opportunity_id", "account_id", "owner_id", "o_h"),
        on="opportunity_id",
        how="left",
    )
    users = f.users.select(owner_id="user_id", u_h=f.users.hash_rows(seed=_SEED))
    contacts = f.contacts.select("contact_id", c_h=f.contacts.hash_rows(seed=_SEED)).join(
        hy_of("contacts", "c_hy").rename({"record_id": "contact_id"}), on="contact_id", how="left"
    )
    # Every contact a briefing of the deal may show: buying roles and the deal's activities.
    deal_acts = f.acts.filter(pl.col("opportunity_id").is_not_null())
    people = (
        pl.concat(
            [
                f.roles.select("opportunity_id", "contact_id"),
                deal_acts.select("opportunity_id", "contact_id").drop_nulls(),
            ]
        )
        .unique()
        .join(contacts, on="contact_id", how="left")
        .select("opportunity_id", "contact_id", "c_h", "c_hy")
    )
    per_deal = [
        _hashed(f.history, "opportunity_id", "hist_h"),
        _hashed(f.roles, "opportunity_id", "role_h"),
        _hashed(deal_acts, "opportunity_id", "dact_h"),
        _hashed(people, "opportunity_id", "people_h"),
        _hashed(f.flags, "opportunity_id", "flag_h"),
        hy_of("opportunities", "o_hy").rename({"record_id": "opportunity_id"}),
    ]
    for part in per_deal:
        m = m.join(part, on="opportunity_id", how="left")
    accounts = f.accounts.select("account_id", "domain", a_h=f.accounts.hash_rows(seed=_SEED)).join(
        hy_of("accounts", "a_hy").rename({"record_id": "account_id"}), on="account_id", how="left"
    )
    m = (
        m.join(accounts, on="account_id", how="left")
        .join(_hashed(deals, "account_id", "ad_h"), on="account_id", how="left")
        .join(users, on="owner_id", how="left")
        .join(contacts.select("contact_id", mc_h="c_h", mc_hy="c_hy"), on="contact_id", how="left")
    )
    # The account's activity in each meeting's window (and its latest), and its news.
    acts = f.acts.filter(pl.col("account_id").is_not_null()).with_columns(
        _h=f.acts.filter(pl.col("account_id").is_not_null()).hash_rows(seed=_SEED),
        _latest=pl.col("occurred_at") == pl.col("occurred_at").max().over("account_id"),
    )
    windows = m.select(
        "activity_id",
        "account_id",
        _from=pl.col("at").cast(pl.Datetime("us")) - pl.duration(days=HISTORY_DAYS - 1),
    )
    in_window = windows.join(
        acts.select("account_id", "occurred_at", "_h", "_latest"), on="account_id"
    ).filter((pl.col("occurred_at") >= pl.col("_from")) | pl.col("_latest"))
    in_window = _combined(in_window.group_by("activity_id"), "aw_h")
    news = f.news.with_columns(_h=f.news.hash_rows(seed=_SEED))
    news_in = (
        m.select(
            "activity_id",
            "domain",
            _from=pl.col("at").cast(pl.Datetime("us")) - pl.duration(days=NEWS_DAYS - 1),
            _to=pl.col("at").cast(pl.Datetime("us")) + pl.duration(days=1),
        )
        .join(news.select("domain", "published_at", "_h"), on="domain")
        .filter(
            (pl.col("published_at") >= pl.col("_from")) & (pl.col("published_at") < pl.col("_to"))
        )
    )
    news_in = _combined(news_in.group_by("activity_id"), "news_h")
    m = m.join(in_window, on="activity_id", how="left").join(news_in, on="activity_id", how="left")
    parts = [c for c in m.columns if c.endswith(("_h", "_hy"))]
    salt = hashlib.md5(json.dumps([settings, pl.__version__, parts]).encode()).hexdigest()
    joined = pl.concat_str(
        [pl.lit(salt), *[pl.col(c).cast(pl.String).fill_null("-") for c in parts]], separator="|"
    )
    return m.select(
        "activity_id",
        inputs=joined.map_elements(
            lambda t: hashlib.md5(t.encode()).hexdigest(), return_dtype=pl.String
        ),
    )
