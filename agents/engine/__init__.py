"""The orchestration engine: routing, tiers, apply, audit log, rollback."""

from agents.engine._audit import AuditEntry, ChainReport, append, to_json, verify

__all__ = ["AuditEntry", "ChainReport", "append", "to_json", "verify"]
