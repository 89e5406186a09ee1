"""The shape of a proposal, and the handoff check every agent's output passes first."""

from __future__ import annotations

import duckdb
import polars as pl

from revstack.data.warehouse import frame, registered

__all__ = ["PROPOSAL_INPUT", "validate_proposals"]

# What an agent returns, one row per proposed action. Values are JSON text so they
# keep their type ('null' is NULL, '""' the empty string). field is null for
# output-only actions (a flag, a briefing); record_id names the record acted on.
PROPOSAL_INPUT: dict[str, pl.DataType] = {
    "action_type": pl.String(),
    "object_type": pl.String(),
    "record_id": pl.String(),
    "field": pl.String(),
    "old_value": pl.String(),
    "new_value": pl.String(),
    "confidence": pl.Float64(),
    "evidence": pl.String(),
    "reason": pl.String(),
}

# The rows with something wrong, by position, with what is wrong. Only the positions and
# the problems come back: the proposals themselves (their evidence can be gigabytes of
# JSON) are not copied out of DuckDB again.
_CHECK = """
SELECT ord, problem FROM (
SELECT ord, concat_ws('; ',
    CASE WHEN coalesce(action_type, '') = '' THEN 'no action_type' END,
    CASE WHEN coalesce(object_type, '') = '' THEN 'no object_type' END,
    CASE WHEN coalesce(record_id, '') = '' THEN 'no record_id' END,
    CASE WHEN coalesce(reason, '') = '' THEN 'no reason' END,
    CASE WHEN confidence IS NULL OR NOT confidence BETWEEN 0 AND 1 OR isnan(confidence)
         THEN 'confidence outside 0..1' END,
    CASE WHEN field IS NOT NULL AND new_value IS NULL THEN 'a write without a new value' END,
    CASE WHEN old_value IS NOT NULL AND NOT json_valid(old_value) THEN 'old_value is not JSON' END,
    CASE WHEN new_value IS NOT NULL AND NOT json_valid(new_value) THEN 'new_value is not JSON' END,
    CASE WHEN evidence IS NOT NULL AND NOT json_valid(evidence) THEN 'evidence is not JSON' END
) AS problem
FROM agent_output
) WHERE problem <> ''
"""


class AgentOutputError(ValueError):
    """An agent returned something that is not a proposal frame at all."""


def validate_proposals(
    con: duckdb.DuckDBPyConnection, output: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split an agent's output into rows fit to route and rows to skip, with why.

    Missing columns are a programming error in the agent and raise; bad rows (no
    record, confidence outside 0..1, values that are not JSON, no reason) are
    skipped and logged rather than acted on.
    """
    missing = [c for c in PROPOSAL_INPUT if c not in output.columns]
    if missing:
        raise AgentOutputError(f"agent output lacks columns {missing}")
    typed = output.select([pl.col(c).cast(t, strict=False) for c, t in PROPOSAL_INPUT.items()])
    with registered(con, "agent_output", typed.with_row_index("ord")):
        problems = frame(con, _CHECK).sort("ord")
    if problems.is_empty():  # the usual case: the agent's own frame goes on, uncopied
        return typed, typed.clear().with_columns(problem=pl.lit(None, pl.String))
    bad = typed[problems["ord"]].with_columns(problem=problems["problem"])
    ok = ~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(problems["ord"].implode())
    return typed.filter(ok), bad
