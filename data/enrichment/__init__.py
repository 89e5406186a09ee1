"""Enrichment providers: firmographics by domain or name, with a source and an as-of date.

A provider answers ``lookup(domains, names)`` with one row per company it knows
(``PROVIDER_COLUMNS``). The default, ``FileProvider``, reads a local firmographics file
(CSV or Parquet) a user can replace with their vendor's export; ``Waterfall`` chains
providers in order, the first with a value winning each field, as enrichment waterfalls
do. ``load_enrichment`` asks a provider about every account in the CRM and stores the
answers in ref.enrichment, where the hygiene agent reads them (``revstack enrich FILE``).
"""

from revstack.data.enrichment._load import load_enrichment
from revstack.data.enrichment._provider import PROVIDER_COLUMNS, FileProvider, Provider, Waterfall

__all__ = ["FileProvider", "PROVIDER_COLUMNS", "Provider", "Waterfall", "load_enrichment"]
