"""The CRM hygiene agent, on which every other agent depends: merges of duplicates,
enrichment of empty fields, stage and required-field checks, phantom deals (docs/hygiene.md)."""

from revstack.agents.crm_hygiene._agent import FIELDS, CrmHygiene

__all__ = ["FIELDS", "CrmHygiene"]
