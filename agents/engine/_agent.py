"""What an agent is: a name, a version, the contract it runs under, and ``run``.

An agent never writes. ``run`` receives a contract-scoped ``Context`` and returns
proposals (a polars frame in the shape of ``PROPOSAL_INPUT``), metadata and outputs
(frames for the ops tables its contract declares); the engine decides what happens
to each proposal and writes the outputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from revstack.agents.engine._context import AccessDenied, Context
from revstack.agents.engine._proposals import PROPOSAL_INPUT

__all__ = ["AccessDenied", "Agent", "AgentResult", "Context", "empty_proposals"]


@dataclass
class AgentResult:
    """What a run produced: proposals, metadata, and ``outputs``: rows for ops tables the
    contract lists under ``outputs`` (``{"ops.forecasts": frame}``). The engine writes
    outputs in the run's own transaction, each row tagged with the run id. ``note``: one
    line saying why the run did less than usual (too little history to forecast), shown
    with the run's result and kept in its metadata."""

    proposals: pl.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, pl.DataFrame] = field(default_factory=dict)
    note: str = ""


def empty_proposals() -> pl.DataFrame:
    return pl.DataFrame(schema=PROPOSAL_INPUT)


class Agent(ABC):
    """Subclass, set ``name`` (its contract's name) and ``version``, implement ``run``."""

    name: ClassVar[str]
    version: ClassVar[str]

    @abstractmethod
    def run(self, ctx: Context) -> AgentResult:
        """Read through ``ctx``, return proposals. Must not write anywhere."""
