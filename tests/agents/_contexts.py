"""An agent's context made as a run makes it, for tests that call ``agent.run`` directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from revstack.agents.engine import Context
from revstack.agents.registry import specs
from revstack.contracts import load_all
from revstack.data.inventory import data_as_of
from revstack.data.warehouse import Warehouse, release_all


def agent_context(
    wh: Warehouse,
    agent: str,
    *,
    as_of: dt.datetime | None = None,
    definitions: Any = None,
    **params: Any,
) -> Context:
    """``agent``'s contract-scoped view of ``wh``: as of the data's as-of unless given, the
    shipped definitions unless given, the contract's params with ``params`` over them."""
    spec = next(s for s in specs() if s.name == agent)
    if as_of is None:
        with wh.connect() as con:
            as_of = data_as_of(con)
        release_all()
    assert as_of is not None
    return Context(
        wh,
        agent=spec.name,
        reads=spec.reads,
        as_of=as_of,
        definitions=definitions if definitions is not None else load_all().definitions,
        params={**spec.params, **params},
    )
