"""revstack: an AI agent stack for Revenue Operations. The CLI lives in ``revstack.cli``."""

__all__: list[str] = []
