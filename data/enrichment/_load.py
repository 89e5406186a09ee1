"""Ask a provider about every CRM account and keep its answers in ref.enrichment."""

from __future__ import annotations

from typing import Any

import polars as pl

from revstack.data.enrichment._provider import Provider
from revstack.data.normalize import domain_from_website
from revstack.data.warehouse import Warehouse, frame, registered

__all__ = ["load_enrichment"]

_ACCOUNTS = "SELECT name, website FROM crm.accounts"
# An upsert per (provider, domain): loading a newer file replaces what it answers again.
_UPSERT = """
INSERT INTO ref.enrichment (provider, domain, company_name, industry, employees, annual_revenue, country, city, as_of)
SELECT $provider, domain, company_name, industry, employees, annual_revenue, country, city, as_of FROM found
ON CONFLICT (provider, domain) DO UPDATE SET
    company_name = excluded.company_name, industry = excluded.industry, employees = excluded.employees,
    annual_revenue = excluded.annual_revenue, country = excluded.country, city = excluded.city,
    as_of = excluded.as_of
"""


def load_enrichment(wh: Warehouse, provider: Provider) -> dict[str, Any]:
    """Look up every account's domain and name; store the answers under the provider's
    name in one transaction. Answers without a domain cannot be keyed and are counted."""
    with wh.connect() as con:
        accounts = frame(con, _ACCOUNTS)
    domains = accounts.select(domain_from_website(pl.col("website"))).to_series()
    found = provider.lookup(domains, accounts["name"])
    keyed = found.filter(pl.col("domain").is_not_null()).unique(
        "domain", keep="first", maintain_order=True
    )
    with wh.transaction() as con, registered(con, "found", keyed):
        con.execute(_UPSERT, {"provider": provider.name})
    return {
        "provider": provider.name,
        "accounts": len(accounts),
        "found": len(found),
        "stored": len(keyed),
        "without_domain": len(found) - len(found.filter(pl.col("domain").is_not_null())),
    }
