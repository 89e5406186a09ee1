"""The as-of deal rows of past snapshots, kept for the next run (migration 020).

Every run needs each snapshot's open deals as they stood at its moment
(``agents.features.deal_states``), and rebuilding them from four years of history was
most of a weekly run (docs/forecast.md, Speed). A deal's state at a moment reads only
rows dated at or before it: history, activities and buying roles, which the backtest
cache's fingerprint digests up to the stored as-of (``_cache``), and contacts, which it
leaves out. So each run stores the rows of its moments, and a run whose cache is reused
takes the stored rows of moments at or before the stored as-of and computes only:

- the moments after it (the live snapshot, and a fixed point the week crossed), for the
  deals that can be open then;
- at every stored moment, the deals with a contact that counted as gone then (inactive
  or bounced, record not changed since) and whose record was edited after the stored
  as-of: ``crm.contacts`` keeps no history, so a departure counts at a moment only if
  the record has not changed since, and the edit takes it back at every earlier moment;
  and the deals that gained a champion dated after it (the champion's last answer reads
  a champion's replies whenever the role was added).

What else a stored moment's rows depend on is checked: the contacts counted as gone
then (``departed``) must be those counted now, but for the ones edited since (a
record deleted, or flagged without its date moving, is not), and ``guard`` digests
buying roles without a date (they count from the deal's creation), the query and this
module's format. A check that fails, a cache not reused, or a CRM whose history is
rebuilt (maven: its row ids are renumbered as deals come in) computes every moment.
The rows are then the ones a full replay computes (tests/agents/test_forecast_states.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from revstack.agents._features_sql import STATES
from revstack.agents.engine import Context
from revstack.agents.features import STATE_SCHEMA
from revstack.agents.forecast._inputs import Inputs, compute_states

__all__ = ["TABLES", "Kept", "read", "departed", "guard", "states_at", "to_rows"]

TABLES = ("ops.forecast_states", "ops.forecast_states_head")
# Bumped when what is stored, or what a stored row means, changes.
FORMAT = 1


@dataclass(frozen=True)
class Kept:
    """The rows one run stored: its data's as-of, its guard, the contacts counted as gone
    at its as-of (``departed``), and the rows."""

    as_of: dt.datetime
    guard: str
    departed: frozenset[tuple[str, dt.datetime]]  # contact id, its record's date
    rows: pl.DataFrame  # STATE_SCHEMA


def read(ctx: Context) -> Kept | None:
    """The rows the last run stored, if any. Read in any order (``ORDER BY ALL`` over 42
    columns was half of reading mid's 855k rows): ``states_at`` sorts what it takes on
    the moment and the deal, one row each."""
    head = ctx.table(TABLES[1], ordered=False)
    if head.is_empty():
        return None
    h = head.sort("as_of", "run_id").tail(1).row(0, named=True)
    rows = ctx.table(TABLES[0], ordered=False).filter(pl.col("run_id") == h["run_id"])
    gone = frozenset(zip(h["departed"], h["departed_at"], strict=True))
    return Kept(h["as_of"], h["guard"], gone, _typed(rows))


def _typed(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select([pl.col(c).cast(t) for c, t in STATE_SCHEMA.items()])


def _digest(df: pl.DataFrame) -> bytes:
    """Of the rows as a set, their columns and types (as ``_cache`` digests its inputs)."""
    h = hashlib.sha256(json.dumps([[c, str(t)] for c, t in df.schema.items()]).encode())
    if len(df):
        h.update(df.hash_rows(seed=7).sort().to_numpy().tobytes())
    return h.digest()


def guard(inp: Inputs) -> str:
    """A digest of what stored rows depend on besides what the cache's fingerprint
    covers and the contacts ``departed`` follows."""
    roles = inp.feature_tables["crm.opportunity_contacts"]
    h = hashlib.sha256(json.dumps({"format": FORMAT, "polars": pl.__version__}).encode())
    h.update(hashlib.sha256(STATES.encode()).digest())
    h.update(inp.definitions.model_dump_json().encode())
    h.update(_digest(roles.filter(pl.col("added_at").is_null())))
    return h.hexdigest()


def departed(inp: Inputs, upto: dt.datetime) -> frozenset[tuple[str, dt.datetime]]:
    """Contacts counted as gone at ``upto`` (``deal_states``: inactive or bounced, and the
    record not changed since) that hold a buying role by then, with their record's date.
    Only a role can make a departure count, and the roles dated by ``upto`` (and the
    undated ones) are the same at every later run that trusts rows of ``upto``; a
    contact created since is on newer roles only."""
    roles = inp.feature_tables["crm.opportunity_contacts"]
    on_roles = roles.filter(~(pl.col("added_at") > upto).fill_null(False))["contact_id"]
    c = inp.feature_tables["crm.contacts"]
    gone = (~pl.col("is_active") | pl.col("email_bounced")) & (pl.col("updated_at") <= upto)
    gone = gone.fill_null(False) & pl.col("contact_id").is_in(on_roles.implode())
    return frozenset(c.filter(gone).select("contact_id", "updated_at").rows())


def states_at(
    inp: Inputs,
    moments: Sequence[dt.datetime],
    kept: Kept | None,
    fixed: Collection[dt.datetime] = (),
    past: tuple[pl.Series, Collection[dt.datetime]] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every deal open at each of ``moments`` in its state then (``deal_states``' rows,
    sorted by moment and deal), and a note of what was taken from ``kept``. ``kept``:
    the last run's rows, given only when the cache's fingerprint says nothing up to its
    as-of changed (``_cache.reuse_of``); None computes every moment. ``fixed``: the
    moments later runs ask about again (fixed snapshot points); the note's ``store``
    says whether ``kept`` lacks any of them, so this run's rows of them must be stored
    (else ``kept`` stands for the next run too: what it lacks against a full replay,
    the deals edited since its as-of, the next run recomputes the same way).
    ``past``: deals and moments: only those deals at those moments when computed (a
    sampled backtest, ``_sample``); every deal at the others."""
    wanted = sorted(set(moments))
    why = _why_not(inp, kept)
    if why is not None or kept is None:
        return _compute_all(inp, wanted, past), {
            "reused_moments": 0,
            "computed_moments": len(wanted),
            "recomputed_deals": 0,
            "store": True,
            "why": why,
        }
    have = set(kept.rows["as_of"].unique().to_list())
    old = [m for m in wanted if m <= kept.as_of and m in have]
    new = [m for m in wanted if m not in set(old)]
    at_old = pl.col("as_of").is_in(pl.Series(old, dtype=pl.Datetime("us")).implode())
    changed = _affected(inp, kept)
    held = kept.rows.select("as_of", "opportunity_id").filter(at_old)["opportunity_id"]
    changed = changed.filter(changed.is_in(held.unique().implode()))
    # One copy of the ~855k stored rows of mid, not three (a copy is ~0.3 s of CPU). A
    # deal without an id is kept, as an anti-join keeps it.
    recomputed = pl.col("opportunity_id").is_in(changed.implode()).fill_null(False)
    parts = [kept.rows.filter(at_old & ~recomputed)]
    if len(changed) and old:
        parts.append(_compute(inp, old, changed))
    if new:
        can = _maybe_open(inp, min(new))
        if past is None:
            parts.append(_compute(inp, new, can))
        else:  # a sampled backtest's past moments: only its deals (``_sample``)
            at = set(past[1])
            some, rest = [m for m in new if m in at], [m for m in new if m not in at]
            ids = past[0].implode()
            parts += [_compute(inp, some, can.filter(can.is_in(ids)))] if some else []
            parts += [_compute(inp, rest, can)] if rest else []
    out = _by_moment_and_deal(pl.concat(parts))
    return out, {
        "reused_moments": len(old),
        "computed_moments": len(new),
        "recomputed_deals": len(changed),
        "store": bool(set(new) & set(fixed)),
        "why": f"reused the rows of moments up to {kept.as_of}",
    }


def _by_moment_and_deal(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` sorted by moment and deal (one row each, so any sort gives these rows in
    this order): the order sorted on the two keys alone, then one gather of every
    column, about half the CPU of sorting the whole frame."""
    order = rows.select(pl.arg_sort_by("as_of", "opportunity_id"))
    return rows[order.to_series()]


def _why_not(inp: Inputs, kept: Kept | None) -> str | None:
    if kept is None:
        return "no stored rows, or the backtest cache was not reused"
    if inp.rebuilt_history:
        return "the history is rebuilt from the deals (its row ids move as deals come in)"
    if inp.as_of < kept.as_of:
        return f"the data's as-of {inp.as_of} is before the stored rows' {kept.as_of}"
    if guard(inp) != kept.guard:
        return "undated buying roles, the query or the definitions changed"
    edited = _edited(inp, kept)
    now = departed(inp, kept.as_of)
    roles = inp.feature_tables["crm.opportunity_contacts"]
    on_roles = set(roles.filter(~(pl.col("added_at") > kept.as_of).fill_null(False))["contact_id"])
    then = {d for d in kept.departed if d[0] not in edited and d[0] in on_roles}
    if now != then:
        return (
            f"a contact counted as gone at {kept.as_of} was deleted or changed without "
            "its record's date moving"
        )
    return None


def _edited(inp: Inputs, kept: Kept) -> set[str]:
    """Contacts counted as gone at the stored as-of whose record was edited since."""
    c = inp.feature_tables["crm.contacts"].filter(pl.col("updated_at") > kept.as_of)
    return set(c["contact_id"].to_list()) & {d[0] for d in kept.departed}


def _affected(inp: Inputs, kept: Kept) -> pl.Series:
    """Deals whose rows at stored moments may differ from what the storing run saw: a
    contact on them counted as gone then and edited since, or a champion added since."""
    roles = inp.feature_tables["crm.opportunity_contacts"]
    edited = pl.Series(sorted(_edited(inp, kept)), dtype=pl.String)
    hit = roles.filter(
        pl.col("contact_id").is_in(edited.implode())
        | ((pl.col("added_at") > kept.as_of) & (pl.col("role") == "champion"))
    )
    return hit["opportunity_id"].unique().sort()


def _maybe_open(inp: Inputs, start: dt.datetime) -> pl.Series:
    """Deals that can be open at a moment at or after ``start``: all but those whose last
    history row (the one in force from then on) closed them at or before it."""
    closed = [s.key for s in inp.definitions.stages if s.closed]
    last = (
        inp.feature_tables["crm.opportunity_history"]
        .select("opportunity_id", "changed_at", "history_id", "stage")  # not every column
        .sort("changed_at", "history_id")
        .group_by("opportunity_id")
        .agg(pl.col("changed_at").last(), pl.col("stage").last())
    )
    done = pl.col("stage").is_in(closed) & (pl.col("changed_at") <= start)
    return last.filter(~done.fill_null(False))["opportunity_id"].sort()


def _compute_all(
    inp: Inputs, wanted: list[dt.datetime], past: tuple[pl.Series, Collection[dt.datetime]] | None
) -> pl.DataFrame:
    """Every moment of ``wanted``; at ``past``'s moments only its deals when given."""
    if past is None:
        return _compute(inp, wanted, None)
    deals, at = past
    some = [m for m in wanted if m in set(at)]
    rest = [m for m in wanted if m not in set(at)]
    parts = [_compute(inp, ms, d) for ms, d in ((some, deals), (rest, None)) if ms]
    if len(parts) < 2:
        return parts[0] if parts else _compute(inp, wanted, None)
    return _by_moment_and_deal(pl.concat(parts))


def _compute(inp: Inputs, moments: Sequence[dt.datetime], deals: pl.Series | None) -> pl.DataFrame:
    """``deal_states`` at ``moments``, for ``deals`` only (None: every deal). A deal's rows
    read only its own history, activities and roles, so a subset gives the same rows."""
    return compute_states(inp, moments, None if deals is None else deals.to_list())


def to_rows(inp: Inputs, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The rows of this run's moments (at the data's as-of), and their head, as rows of
    the two tables."""
    gone = sorted(departed(inp, inp.as_of))
    head = pl.DataFrame(
        {
            "as_of": [inp.as_of],
            "guard": [guard(inp)],
            "departed": [[c for c, _ in gone]],
            "departed_at": [[at for _, at in gone]],
        },
        schema={
            "as_of": pl.Datetime("us"),
            "guard": pl.String,
            "departed": pl.List(pl.String),
            "departed_at": pl.List(pl.Datetime("us")),
        },
    )
    return {TABLES[0]: rows, TABLES[1]: head}
