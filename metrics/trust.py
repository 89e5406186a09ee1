"""The trust ramp: which action types have earned autonomy, with the evidence.

Per agent and action type and 30-day cycle: how many tier-2 proposals people
reviewed, how many they approved without change, and a Wilson lower bound on
that rate. An action graduates (tier 2 -> 1) when enough were reviewed and the
lower bound clears the bar; a tier-1 action is demoted when its auto-applied
writes were rolled back or its reviewed share is overridden too often.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from revstack.agents.engine import wilson
from revstack.contracts import AgentContract, default_dir, load_contract
from revstack.data.errors import ContractError
from revstack.data.warehouse import frame

__all__ = [
    "RAMP_RULES",
    "trust_cycles",
    "suggestions",
    "wilson_lower",
    "ContractChange",
    "contract_change",
    "policy_as_contracts",
]

RAMP_RULES = {
    "cycle_days": 30,
    "min_reviewed": 30,  # decisions needed before a suggestion
    "graduate_lower_bound": 0.95,  # Wilson 95% lower bound on approval-without-change
    "demote_override_rate": 0.10,  # overrides or rollbacks above this share
}

_CYCLES = """
SELECT agent, action_type,
       CAST(floor(epoch(decided_at) / 86400 / $days) AS BIGINT) AS cycle,
       -- the cycle's first day, so every action type of one cycle shares its x
       TIMESTAMP '1970-01-01' + to_days(CAST(floor(epoch(decided_at) / 86400 / $days) AS BIGINT) * $days)
           AS cycle_start,
       min(decided_at) AS first_decision,
       count(*) FILTER (WHERE status IN ('approved', 'edited', 'rejected')) AS reviewed,
       count(*) FILTER (WHERE status = 'approved') AS approved_unchanged,
       count(*) FILTER (WHERE status = 'edited') AS edited,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'applied' AND decided_by IS NULL) AS auto_applied,
       count(*) FILTER (WHERE status = 'rolled_back') AS rolled_back,
       max(tier) AS tier,
       list(decision_note ORDER BY decided_at) FILTER (WHERE status IN ('edited', 'rejected') AND decision_note IS NOT NULL) AS override_notes
FROM ops.proposals p
WHERE decided_at IS NOT NULL AND NOT shadow
  -- The rest of a batch, decided in one act, was not reviewed: its evidence is the
  -- batch's sample, which is counted card by card like any other review.
  AND p.proposal_id NOT IN (SELECT proposal_id FROM ops.batch_acts)
GROUP BY ALL ORDER BY agent, action_type, cycle
"""


def wilson_lower(successes: int, n: int, confidence: float = 0.95) -> float | None:
    """Lower end of the Wilson score interval for a proportion (None when n = 0)."""
    interval = wilson(successes, n, confidence)
    return None if interval is None else interval[0]


def trust_cycles(con: duckdb.DuckDBPyConnection, *, cycle_days: int = 30) -> pl.DataFrame:
    """One row per agent, action type and cycle with the approval rate and its bound."""
    out = frame(con, _CYCLES, {"days": cycle_days})
    if out.is_empty():
        return out
    bounds = [
        wilson_lower(a, n) for a, n in zip(out["approved_unchanged"], out["reviewed"], strict=True)
    ]
    return out.with_columns(
        approval_rate=pl.when(pl.col("reviewed") > 0)
        .then(pl.col("approved_unchanged") / pl.col("reviewed"))
        .otherwise(None),
        approval_lower_bound=pl.Series(bounds, dtype=pl.Float64),
    )


def suggestions(cycles: pl.DataFrame, rules: dict | None = None) -> pl.DataFrame:
    """Graduate or demote suggestions from the latest cycle of each action type."""
    r = {**RAMP_RULES, **(rules or {})}
    schema = {
        "agent": pl.String,
        "action_type": pl.String,
        "suggestion": pl.String,
        "evidence": pl.String,
    }
    if cycles.is_empty():
        return pl.DataFrame(schema=schema)
    latest = cycles.sort("cycle").group_by("agent", "action_type").last()
    rows = []
    for c in latest.iter_rows(named=True):
        lb = c["approval_lower_bound"]
        overridden = c["edited"] + c["rejected"]
        if (
            c["reviewed"] >= r["min_reviewed"]
            and lb is not None
            and lb >= r["graduate_lower_bound"]
        ):
            rows.append(
                (
                    c["agent"],
                    c["action_type"],
                    "graduate to tier 1",
                    f"{c['approved_unchanged']}/{c['reviewed']} approved unchanged; 95% lower bound {lb:.1%} >= {r['graduate_lower_bound']:.0%}",
                )
            )
        elif (
            c["auto_applied"]
            and c["rolled_back"] / max(c["auto_applied"], 1) > r["demote_override_rate"]
        ):
            rows.append(
                (
                    c["agent"],
                    c["action_type"],
                    "demote to tier 2",
                    f"{c['rolled_back']} of {c['auto_applied']} automatic writes rolled back",
                )
            )
        elif (
            c["reviewed"] >= r["min_reviewed"]
            and overridden / c["reviewed"] > r["demote_override_rate"]
            and c["tier"] == 1
        ):
            rows.append(
                (
                    c["agent"],
                    c["action_type"],
                    "demote to tier 2",
                    f"{overridden}/{c['reviewed']} overridden",
                )
            )
    return pl.DataFrame(rows, schema=schema, orient="row")


# -- a policy change, written as the contract change it stands for ---------------------


@dataclass(frozen=True)
class ContractChange:
    """The agent contract before and after a tier or threshold change, as YAML text."""

    path: Path
    before: str
    after: str
    also_affects: tuple[str, ...] = ()  # other actions writing a field whose grant moved

    @property
    def diff(self) -> str:
        """A unified diff (``git apply`` / ``patch -p1`` from the project root)."""
        name = f"contracts/agents/{self.path.name}"
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )


def _block(lines: list[str], start: int) -> int:
    """End (exclusive) of the YAML block whose first line is ``lines[start]``."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines):
        text = lines[end]
        if (
            text.strip()
            and not text.lstrip().startswith("#")
            and len(text) - len(text.lstrip()) <= indent
        ):
            break
        end += 1
    return end


def _find(lines: list[str], pattern: str, lo: int = 0, hi: int | None = None) -> int | None:
    rx = re.compile(pattern)
    for i in range(lo, len(lines) if hi is None else hi):
        if rx.match(lines[i]):
            return i
    return None


def _set_key(
    lines: list[str], lo: int, hi: int, indent: str, key: str, value: str, note: str
) -> None:
    """Set ``key: value`` among the block keys at ``indent`` in lines[lo:hi] (insert if absent)."""
    at = _find(lines, rf"^{indent}{key}:\s*", lo, hi)
    text = f"{indent}{key}: {value}  # {note}\n"
    if at is None:
        lines.insert(lo + 1, text)
    else:
        lines[at] = text


def _set_grant(lines: list[str], target: str, key: str, value: float, note: str) -> bool:
    """Lower ``key`` of the flow-style grant ``table: {field: {tier: .., min_confidence: ..}}``
    for ``target`` (crm.accounts.industry) to ``value`` if it is above; True if changed."""
    table, _, field = target.rpartition(".")
    top = _find(lines, r"^writes:\s*(#.*)?$")
    if top is None:
        return False
    tab = _find(lines, rf"^\s+{re.escape(table)}:\s*(#.*)?$", top + 1, _block(lines, top))
    if tab is None:
        return False
    at = _find(lines, rf"^\s+{re.escape(field)}:\s*\{{", tab + 1, _block(lines, tab))
    if at is None:
        return False
    m = re.search(rf"{key}:\s*([0-9.]+)", lines[at])
    shown = f"{value:g}"
    if m is None:
        lines[at] = re.sub(r"\}", f", {key}: {shown}}}", lines[at], count=1)
    elif float(m.group(1)) > value:
        lines[at] = lines[at][: m.start(1)] + shown + lines[at][m.end(1) :]
    else:
        return False
    lines[at] = lines[at].rstrip("\n").split("  #")[0] + f"  # {note}\n"
    return True


def _parsed(path: Path, text: str) -> AgentContract:
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / path.name
        check.write_text(text, encoding="utf-8")
        return load_contract(check)


def policy_as_contracts(
    policies: pl.DataFrame, directory: Path | None = None
) -> list[ContractChange]:
    """Every policy override in force (``agents.engine._policy.active_policy``), as one
    change per contract file, oldest override first; overrides of agents without a
    contract file are skipped."""
    base = directory or default_dir()
    out = []
    for part in policies.sort("changed_at").partition_by("agent", maintain_order=True):
        agent = part["agent"][0]
        if not (base / "agents" / f"{agent}.yaml").exists():
            continue
        first = text = (base / "agents" / f"{agent}.yaml").read_text(encoding="utf-8")
        affected: set[str] = set()
        for p in part.iter_rows(named=True):
            note = f"policy by {p['changed_by']} on {p['changed_at']:%Y-%m-%d}: {p['reason']}"
            step = contract_change(
                agent,
                p["action_type"],
                tier=p["tier"],
                note=note,
                min_confidence=p["min_confidence"],
                directory=base,
                before=text,
            )
            text, affected = step.after, affected | set(step.also_affects)
        out.append(
            ContractChange(base / "agents" / f"{agent}.yaml", first, text, tuple(sorted(affected)))
        )
    return out


def contract_change(
    agent: str,
    action_type: str,
    *,
    tier: int | None = None,
    min_confidence: float | None = None,
    note: str = "",
    directory: Path | None = None,
    before: str | None = None,
) -> ContractChange:
    """The edit to ``contracts/agents/<agent>.yaml`` that makes the contract say what a
    policy override says: the action's tier and/or min_confidence, and, where the action
    writes fields whose grants are stricter (the engine takes the stricter of the two),
    those grants lowered too. Comments and layout are kept; the result is checked by
    loading it as a contract. ``before`` starts from that text instead of the file (to
    chain several changes to one contract)."""
    path = (directory or default_dir()) / "agents" / f"{agent}.yaml"
    before = path.read_text(encoding="utf-8") if before is None else before
    lines = before.splitlines(keepends=True)
    start = _find(lines, rf"^\s*-\s+name:\s*{re.escape(action_type)}\s*(#.*)?$")
    if start is None:
        raise ContractError(str(path), "actions", f"no action named {action_type!r}")
    end = _block(lines, start)
    indent = " " * (lines[start].index("name:"))
    contract = _parsed(path, before)
    action = next(a for a in contract.actions if a.name == action_type)
    if action.tier == 3:
        raise ContractError(
            str(path), f"actions.{action_type}.tier", "tier 3: a person must always act"
        )
    why = note or "trust ramp"
    if tier is not None:
        _set_key(lines, start, end, indent, "tier", str(tier), f"was {action.tier}: {why}")
    if min_confidence is not None:
        _set_key(
            lines,
            start,
            end,
            indent,
            "min_confidence",
            f"{min_confidence:g}",
            f"was {action.min_confidence:g}: {why}",
        )
    moved: set[str] = set()
    for target in action.writes:
        if tier is not None and _set_grant(
            lines, target, "tier", tier, f"lowered for {action_type}: {why}"
        ):
            moved.add(target)
        if min_confidence is not None and _set_grant(
            lines, target, "min_confidence", min_confidence, f"lowered for {action_type}: {why}"
        ):
            moved.add(target)
    others = tuple(
        sorted(a.name for a in contract.actions if a.name != action_type and moved & set(a.writes))
    )
    after = "".join(lines)
    changed = _parsed(path, after)  # the edit must still be a valid contract
    got = next(a for a in changed.actions if a.name == action_type)
    if (tier is not None and got.tier != tier) or (
        min_confidence is not None and got.min_confidence != min_confidence
    ):
        raise ContractError(str(path), f"actions.{action_type}", "could not rewrite this layout")
    return ContractChange(path, before, after, others)
