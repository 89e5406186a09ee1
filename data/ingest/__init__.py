"""Real CRM exports into crm.*: validated whole, then written in one transaction.

``ingest(wh, "salesforce", Path("export/"))`` reads every file the format's mapping
names (data/mappings/<format>.yaml, or ``mapping=`` a user's own), converts and
checks every value, and either writes everything or raises ``InputError`` listing
every problem by file, line and column, leaving the warehouse exactly as it was.
"""

from revstack.data.ingest._ingest import ingest
from revstack.data.ingest._mapping import FORMATS, load_mapping

__all__ = ["FORMATS", "ingest", "load_mapping"]
