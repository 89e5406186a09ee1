"""Duplicate detection for the audit: exact keys and cheap suspected matches.

This is the day-1 baseline, not identity resolution (the hygiene agent does that
with a learned model). Exact: records sharing a normalised key. Suspected: records
sharing a company domain, or close names (Jaro-Winkler) inside small blocks.
"""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.normalize import company_key, domain_from_email, domain_from_website, person_key
from revstack.data.warehouse import frame, registered

__all__ = ["account_duplicates", "contact_duplicates"]

_ACCOUNTS = "SELECT account_id AS record_id, name, website FROM crm.accounts"
_CONTACTS = """
SELECT c.contact_id AS record_id, c.first_name, c.last_name, c.email, c.account_id,
       a.website
FROM crm.contacts c LEFT JOIN crm.accounts a USING (account_id)
"""

# Pairs of records in the same block whose keys are similar but not equal.
_SIMILAR_PAIRS = """
WITH blocked AS (
    SELECT record_id, key, block FROM keyed
    WHERE block IN (SELECT block FROM keyed GROUP BY block HAVING count(*) <= $max_block)
)
SELECT l.record_id AS left_id, r.record_id AS right_id
FROM blocked l JOIN blocked r ON l.block = r.block AND l.record_id < r.record_id
WHERE l.key <> r.key AND jaro_winkler_similarity(l.key, r.key) >= $threshold
"""

MAX_BLOCK = 200


def _groups(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """(record_id, group) for every record whose key it shares with another record."""
    keyed = frame.filter(pl.col(key).is_not_null() & (pl.col(key) != ""))
    dup_keys = keyed.group_by(key).len().filter(pl.col("len") > 1).select(key)
    return keyed.join(dup_keys, on=key).select("record_id", pl.col(key).alias("group"))


def _similar(con: duckdb.DuckDBPyConnection, keyed: pl.DataFrame, threshold: float) -> pl.DataFrame:
    with registered(con, "keyed", keyed):
        return frame(con, _SIMILAR_PAIRS, {"max_block": MAX_BLOCK, "threshold": threshold})


def _pairs_to_ids(pairs: pl.DataFrame) -> pl.Series:
    return pl.concat([pairs["left_id"], pairs["right_id"]]).unique().alias("record_id")


def account_duplicates(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Exact and suspected duplicate account records.

    Returns frames ``exact`` (record_id, group) and ``suspected`` (record_id), where a
    suspected record is in no exact group but shares a domain or a close name.
    """
    accounts = frame(con, _ACCOUNTS).with_columns(
        key=company_key(pl.col("name")),
        domain=domain_from_website(pl.col("website")),
    )
    exact = _groups(accounts, "key")
    by_domain = _groups(accounts, "domain").select("record_id")
    keyed = accounts.filter(pl.col("key").str.len_chars() >= 3).select(
        "record_id", "key", block=pl.col("key").str.slice(0, 4)
    )
    keyed_tail = keyed.with_columns(block=pl.col("key").str.slice(-4))
    similar = pl.concat([_similar(con, keyed, 0.93), _similar(con, keyed_tail, 0.93)])
    suspected = (
        pl.concat([by_domain["record_id"], _pairs_to_ids(similar)])
        .unique()
        .to_frame()
        .join(exact.select("record_id"), on="record_id", how="anti")
    )
    return {"exact": exact, "suspected": suspected, "total": pl.DataFrame({"n": [len(accounts)]})}


def contact_duplicates(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Exact (same email) and suspected (same person key at the same company) contacts."""
    contacts = frame(con, _CONTACTS).with_columns(
        email_key=pl.col("email").str.to_lowercase().str.strip_chars(),
        company=pl.coalesce(
            domain_from_email(pl.col("email")), domain_from_website(pl.col("website"))
        ),
        person=person_key(pl.col("first_name").fill_null(""), pl.col("last_name").fill_null("")),
    )
    exact = _groups(contacts, "email_key")
    at_company = contacts.filter(pl.col("company").is_not_null()).with_columns(
        person_at=pl.concat_str(["person", "company"], separator="@")
    )
    same_person = _groups(at_company, "person_at").select("record_id")
    keyed = at_company.filter(pl.col("last_name").is_not_null()).select(
        "record_id",
        key=pl.concat_str(
            [
                pl.col("first_name").fill_null("").str.to_lowercase(),
                pl.col("last_name").str.to_lowercase(),
            ],
            separator=" ",
        ),
        block=pl.col("company"),
    )
    similar = _similar(con, keyed, 0.90)
    suspected = (
        pl.concat([same_person["record_id"], _pairs_to_ids(similar)])
        .unique()
        .to_frame()
        .join(exact.select("record_id"), on="record_id", how="anti")
    )
    return {"exact": exact, "suspected": suspected, "total": pl.DataFrame({"n": [len(contacts)]})}
