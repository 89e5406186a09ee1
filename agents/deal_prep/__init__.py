"""The deal prep agent: a cited briefing before each customer meeting, and on demand
(docs/deal_prep.md)."""

from revstack.agents.deal_prep._agent import DealPrep, build_items

__all__ = ["DealPrep", "build_items"]
