"""The outbound agent: personalised drafts grounded in account facts, checked by
guardrails, never sent (docs/outbound.md)."""

from revstack.agents.outbound._agent import MAX_PER_ACCOUNT, MAX_PER_OWNER, Outbound
from revstack.agents.outbound._guardrails import GUARDRAILS

__all__ = ["GUARDRAILS", "MAX_PER_ACCOUNT", "MAX_PER_OWNER", "Outbound"]
