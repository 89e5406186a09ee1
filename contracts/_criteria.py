"""Canonical definitions compiled to SQL that selects the bad rows (docs/design.md, Code
shape: a check selects the bad rows).

Only validated identifiers (stage keys, column names checked against an allow-list,
role names) and numbers reach the SQL text; the as-of moment is a bound parameter.
"""

from __future__ import annotations

import re

from revstack.contracts._model import Definitions, FieldCriterion, MetricCriterion, RoleCriterion

__all__ = [
    "stage_checks_sql",
    "stage_violations_sql",
    "stage_fit_sql",
    "required_fields_sql",
    "OPPORTUNITY_COLUMNS",
    "PK",
]

OPPORTUNITY_COLUMNS = frozenset(
    {
        "account_id",
        "owner_id",
        "name",
        "amount",
        "close_date",
        "forecast_category",
        "probability",
        "opportunity_type",
        "lead_source",
        "product",
        "competitor",
        "next_step",
    }
)
PK = {"accounts": "account_id", "contacts": "contact_id", "opportunities": "opportunity_id"}
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_OP = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "!=": "<>"}

_MEASURED = """
WITH engaged AS (
    SELECT opportunity_id, count(DISTINCT contact_id) AS n,
           max(occurred_at) AS last_two_way
    FROM crm.activities
    WHERE status = 'completed' AND direction IN ('inbound', 'two_way')
      AND occurred_at <= $as_of
      -- only open deals are measured (a quarter less time on mid's 2.0M activity rows
      -- than aggregating the closed deals' too)
      AND opportunity_id IN (SELECT opportunity_id FROM crm.opportunities WHERE NOT is_closed)
    GROUP BY opportunity_id
),
roles AS (
    SELECT opportunity_id, list(DISTINCT role ORDER BY role) AS roles
    FROM crm.opportunity_contacts WHERE role IS NOT NULL GROUP BY opportunity_id
),
m AS (
    SELECT o.*,
           coalesce(e.n, 0) AS engaged_contacts,
           date_diff('day', coalesce(e.last_two_way, o.created_at), $as_of) AS days_since_two_way,
           coalesce(r.roles, []) AS roles,
           e.last_two_way
    FROM crm.opportunities o
    LEFT JOIN engaged e USING (opportunity_id)
    LEFT JOIN roles r USING (opportunity_id)
    WHERE NOT o.is_closed
)
"""


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not an identifier: {name!r}")
    return name


def _num(value: float) -> str:
    return repr(float(value))


def _condition(c: FieldCriterion | MetricCriterion | RoleCriterion) -> tuple[str, str, str]:
    """(SQL that holds when the criterion is met, readable text, SQL of the actual value)."""
    if isinstance(c, RoleCriterion):
        role = _ident(c.role)
        return (
            f"list_contains(roles, '{role}')",
            f"role {role} present",
            "array_to_string(roles, ',')",
        )
    if isinstance(c, FieldCriterion):
        col = c.field
        if col not in OPPORTUNITY_COLUMNS:
            raise ValueError(f"criterion on unknown or disallowed column {col!r}")
    else:
        col = _ident(c.metric)
    if c.op == "is_set":
        return f"{col} IS NOT NULL", f"{col} is set", f"coalesce({col}::VARCHAR, 'missing')"
    return (
        f"coalesce({col} {_SQL_OP[c.op]} {_num(c.value)}, false)",  # type: ignore[arg-type]
        f"{col} {c.op} {c.value:g}",
        f"coalesce({col}::VARCHAR, 'missing')",
    )


def _violations(definitions: Definitions) -> list[str]:
    """One SELECT over ``m`` per entry criterion of an open stage: its failing deals."""
    parts = []
    for stage in definitions.stages:
        if stage.closed:
            continue
        key = _ident(stage.key)
        for c in stage.entry_criteria:
            holds, text, actual = _condition(c)
            parts.append(
                f"SELECT opportunity_id, stage, '{text}' AS criterion, {actual} AS actual "
                f"FROM m WHERE stage = '{key}' AND NOT ({holds})"
            )
    return parts


def stage_violations_sql(definitions: Definitions) -> str:
    """One query, parameter ``$as_of``: (opportunity_id, stage, criterion, actual) per failed
    entry criterion of every open deal."""
    parts = _violations(definitions)
    if not parts:
        return (
            _MEASURED
            + "SELECT opportunity_id, stage, '' AS criterion, '' AS actual FROM m WHERE false"
        )
    return _MEASURED + "\nUNION ALL\n".join(parts) + "\nORDER BY opportunity_id, criterion"


def required_fields_sql(definitions: Definitions, obj: str) -> str:
    """(record_id, field) for every required field of ``obj`` that is NULL or blank."""
    if obj not in PK:
        raise ValueError(f"unknown object {obj!r}")
    fields = [_ident(f) for f in definitions.required_fields.get(obj, [])]  # type: ignore[call-overload]
    if not fields:
        return "SELECT NULL::VARCHAR AS record_id, NULL::VARCHAR AS field WHERE false"
    parts = [
        f"SELECT {PK[obj]} AS record_id, '{f}' AS field FROM crm.{obj} "
        f"WHERE {f} IS NULL OR trim({f}::VARCHAR) = ''"
        for f in fields
    ]
    return "\nUNION ALL\n".join(parts)


def _fits(definitions: Definitions, kinds: tuple[type, ...]) -> tuple[str, str]:
    """(the CASE giving an open stage's index, the CASE giving the furthest stage that
    fits), over ``m``'s columns."""
    open_stages = [s for s in definitions.stages if not s.closed]
    index = " ".join(f"WHEN '{_ident(s.key)}' THEN {i}" for i, s in enumerate(open_stages))
    arms = []
    for i, s in reversed(list(enumerate(open_stages))):
        conds = [_condition(c)[0] for c in s.entry_criteria if isinstance(c, kinds)] or ["true"]
        arms.append(f"WHEN stage_index >= {i} AND {' AND '.join(conds)} THEN '{_ident(s.key)}'")
    return f"CASE stage {index} END", f"CASE {' '.join(arms)} END"


def stage_checks_sql(definitions: Definitions) -> str:
    """The stage checks in one pass over the activity, parameter ``$as_of``: per open deal
    (opportunity_id, stage, close_date, created_at, last_two_way: its latest completed
    inbound or two-way activity up to the as-of), ``fits`` as ``stage_fit_sql`` gives
    it (NULL also for a deal in no open stage) and ``failed``: its rows of
    ``stage_violations_sql`` as a list of (criterion, actual) sorted by criterion, NULL
    when it fails none. The same answers as the two queries, which each measure every
    deal's activity again (a weekly hygiene run asked both, and a third query for the
    latest activity)."""
    index, fits = _fits(definitions, (MetricCriterion, RoleCriterion))
    parts = _violations(definitions)
    fails = (
        "\nUNION ALL\n".join(parts)
        if parts
        else "SELECT opportunity_id, stage, '' AS criterion, '' AS actual FROM m WHERE false"
    )
    return (
        _MEASURED
        + f", fails AS (\n{fails}\n),\n"
        + "failed AS (SELECT opportunity_id, list({'criterion': criterion, 'actual': actual} "
        + "ORDER BY criterion) AS failed FROM fails GROUP BY opportunity_id),\n"
        + f"indexed AS (SELECT *, {index} AS stage_index FROM m)\n"
        + "SELECT opportunity_id, stage, close_date, created_at, last_two_way,\n"
        + f"       CASE WHEN stage_index IS NOT NULL THEN {fits} END AS fits, failed\n"
        + "FROM indexed LEFT JOIN failed USING (opportunity_id) ORDER BY opportunity_id"
    )


def stage_fit_sql(
    definitions: Definitions, *, kinds: tuple[type, ...] = (MetricCriterion, RoleCriterion)
) -> str:
    """One query, parameter ``$as_of``: (opportunity_id, stage, fits) for every open deal,
    where ``fits`` is the furthest open stage, up to the deal's own, whose entry criteria
    of the given ``kinds`` all hold (NULL when none does). By default only the criteria
    about the buying process (engaged contacts, roles) count: a deal failing a field
    criterion needs the field filled, not another stage."""
    index, fits = _fits(definitions, kinds)
    return (
        _MEASURED
        + f", indexed AS (SELECT *, {index} AS stage_index FROM m)\n"
        + f"SELECT opportunity_id, stage, {fits} AS fits\n"
        + "FROM indexed WHERE stage_index IS NOT NULL ORDER BY opportunity_id"
    )
