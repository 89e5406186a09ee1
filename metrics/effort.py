"""Hours of manual work the stack automated: task volume x documented minutes per task.

The minutes live in ``contracts/effort.yaml`` (RevOps edits them; the file says how
each figure was arrived at). An action the engine applied on its own saves its
manual minutes; one a person approved, edited or marked done saves manual minus
review minutes; one a person rejected or dismissed costs its review minutes. Shadow
proposals count for nothing: nothing happened.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from revstack.contracts import Bundle, default_dir
from revstack.data.errors import ContractError
from revstack.data.warehouse import frame, registered

__all__ = ["EFFORT_SCHEMA", "load_effort", "weekly_hours"]

EFFORT_SCHEMA = {
    "agent": pl.String,
    "action_type": pl.String,
    "manual_minutes": pl.Float64,
    "review_minutes": pl.Float64,
    "source": pl.String,
}


class _Minutes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manual_minutes: float = Field(ge=0)
    review_minutes: float = Field(ge=0, default=0.0)
    source: str


class _Effort(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    actions: dict[str, dict[str, _Minutes]]


def load_effort(path: Path | None = None, *, bundle: Bundle | None = None) -> pl.DataFrame:
    """The documented minutes per agent and action, one row each.

    With ``bundle`` (the loaded contracts), every agent and action named must exist in
    them, and review minutes may not exceed manual minutes; errors name file and key.
    """
    path = path or default_dir() / "effort.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _Effort.model_validate(raw)
    except FileNotFoundError as exc:
        raise ContractError(str(path), "(file)", "no such file") from exc
    except yaml.YAMLError as exc:
        raise ContractError(str(path), "(file)", f"not valid YAML: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise ContractError(str(path), where, err["msg"]) from exc
    rows = []
    for agent, actions in parsed.actions.items():
        for action, m in actions.items():
            where = f"actions.{agent}.{action}"
            if bundle is not None:
                contract = bundle.contracts.get(agent)
                if contract is None:
                    raise ContractError(
                        str(path), f"actions.{agent}", "no agent contract by this name"
                    )
                if action not in {a.name for a in contract.actions}:
                    raise ContractError(str(path), where, f"{agent}'s contract has no such action")
            if m.review_minutes > m.manual_minutes:
                raise ContractError(str(path), f"{where}.review_minutes", "exceeds manual_minutes")
            rows.append((agent, action, m.manual_minutes, m.review_minutes, m.source))
    return pl.DataFrame(rows, schema=EFFORT_SCHEMA, orient="row")


# Per week and agent: what was done without a person, what a person accepted, what a
# person turned down. A decision counts in the week it was made.
_WORK = """
SELECT date_trunc('week', coalesce(p.decided_at, p.created_at)) AS week, p.agent, p.action_type,
       count(*) FILTER (WHERE p.status = 'applied' AND p.decided_by IS NULL) AS automatic,
       count(*) FILTER (WHERE p.status IN ('approved', 'edited', 'done')) AS accepted,
       count(*) FILTER (WHERE p.status IN ('rejected', 'dismissed')) AS turned_down
FROM ops.proposals p
WHERE NOT p.shadow AND coalesce(p.decided_at, p.created_at) >= $since
GROUP BY ALL
"""
_HOURS = """
SELECT w.week, w.agent,
       sum(w.automatic) AS automatic, sum(w.accepted) AS accepted,
       sum(w.turned_down) AS turned_down,
       sum(w.automatic * e.manual_minutes + w.accepted * (e.manual_minutes - e.review_minutes))
           / 60 AS hours_automated,
       sum((w.accepted + w.turned_down) * e.review_minutes) / 60 AS hours_reviewing,
       sum(w.automatic + w.accepted + w.turned_down) FILTER (WHERE e.agent IS NULL)
           AS undocumented_actions
FROM work w
LEFT JOIN effort e ON e.agent = w.agent AND e.action_type = w.action_type
GROUP BY ALL ORDER BY w.week, w.agent
"""


def weekly_hours(
    con: duckdb.DuckDBPyConnection,
    effort: pl.DataFrame | None = None,
    *,
    since: dt.datetime = dt.datetime.min,
) -> pl.DataFrame:
    """Per week and agent: counts and hours automated, hours spent reviewing, and how
    many actions had no documented minutes (counted as 0). ``effort`` defaults to the
    shipped contracts/effort.yaml."""
    effort = load_effort() if effort is None else effort
    work = frame(con, _WORK, {"since": since})
    with registered(con, "work", work), registered(con, "effort", effort):
        out = frame(con, _HOURS)
    return out.with_columns(
        pl.col("hours_automated").fill_null(0.0),
        pl.col("hours_reviewing").fill_null(0.0),
        pl.col("undocumented_actions").fill_null(0).cast(pl.Int64),
    )
