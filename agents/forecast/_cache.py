"""The backtest's cache: what a run scored, stored for the next run to reuse.

A snapshot whose period was over when it was scored says the same thing at every later
run, unless what came before it changed. So each run stores those snapshots (migration
012: ranges per segment, PITs, the combination's per-team record, the implied-variance
spreads, the scored deal probabilities) and the next run reuses them when the
fingerprint of its inputs up to the stored as-of is the stored one. Anything else is a
full replay, with the reason said in the run's metadata: the first run, another agent
version or parameters, data older than the cache, a moved start of the backtest, or a
correction to anything the stored snapshots could see.

The tables hold plain numbers, dates and strings, never code: a warehouse may come from
someone else, and reading it back must not run anything (docs/forecast.md, The
backtest cache).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import polars as pl

from revstack.agents.engine import Context
from revstack.agents.features import TABLES as FEATURE_TABLES
from revstack.agents.forecast._backtest import Forecast, Open, Reuse, Scored, _Spread
from revstack.agents.forecast._combine import Record, season_of, slot
from revstack.agents.forecast._inputs import ACTIVITIES, Inputs

__all__ = ["TABLES", "Stored", "fingerprint", "fingerprint_parts", "read", "reuse_of", "to_rows"]

TABLES = (
    "ops.forecast_cache",
    "ops.forecast_cache_snapshots",
    "ops.forecast_cache_segments",
    "ops.forecast_cache_open",
)
# Bumped when what is stored, or what a stored snapshot means, changes.
FORMAT = 1
_PIT_KINDS = ("company", "region", "team", "rep")
_SUMMARY = {
    "segment_kind": pl.String,
    "segment": pl.String,
    "p10": pl.Float64,
    "p50": pl.Float64,
    "p90": pl.Float64,
    "expected": pl.Float64,
    "won_to_date": pl.Float64,
    "pipeline_expected": pl.Float64,
    "new_expected": pl.Float64,
    "actual": pl.Float64,
    "crps": pl.Float64,
}
# Per input: the column that dates a row. A row dated after the cache's as-of cannot
# have been seen by a stored snapshot; every other row could, so any change to one
# invalidates the cache. Undated tables count whole.
_DATED = {
    "crm.opportunity_history": "changed_at",
    "crm.activities": "occurred_at",
    "crm.opportunity_contacts": "added_at",
    # Today's flags, trusted at a moment only if the row has not changed since.
    "crm.contacts": "updated_at",
}
# Dated inputs whose rows without a date every snapshot sees: a buying role with no
# added_at counts from its deal's creation (``agents.features``), so a change to one
# changes snapshots before any cut.
_UNDATED_SEEN = {"crm.opportunity_contacts"}


@dataclass(frozen=True)
class Stored:
    """The cache one run left: its as-of, first month scored, fingerprint and contents."""

    as_of: dt.datetime
    eval_from: dt.date
    fingerprint: str
    reuse: Reuse
    # Each input's own digest (``fingerprint_parts``), so a replay can say which input
    # moved; None in a cache stored before migration 025.
    parts: dict[str, str] | None = None


@dataclass(frozen=True)
class _Hashed:
    """A frame's row hashes, for digests of its rows as a set at several cuts: a run
    takes two fingerprints (the stored as-of's and its own) of the same frames, and
    hashing them was most of each (2M activity rows on mid)."""

    schema: bytes  # its columns and types
    rows: np.ndarray  # uint64, one per row (polars' row hash is the row's own)

    @classmethod
    def of(cls, df: pl.DataFrame) -> _Hashed:
        schema = json.dumps([[c, str(t)] for c, t in df.schema.items()]).encode()
        return cls(schema, df.hash_rows(seed=7).to_numpy() if len(df) else np.zeros(0, np.uint64))

    def digest(self, keep: np.ndarray | None = None) -> str:
        """Of the rows (``keep``: a mask of those to take) as a set, their columns and types."""
        h = hashlib.sha256(self.schema)
        rows = self.rows if keep is None else self.rows[keep]
        if len(rows):
            h.update(np.sort(rows).tobytes())
        return h.hexdigest()


def _digest(df: pl.DataFrame) -> str:
    """Of the rows as a set (a scan promises no order), their columns and types."""
    return _Hashed.of(df).digest()


def _hashed(inp: Inputs, name: str, df: pl.DataFrame) -> _Hashed:
    """``df``'s row hashes, kept with the run's inputs for its next fingerprint."""
    if name not in inp.hashed:
        inp.hashed[name] = _Hashed.of(df)
    return cast(_Hashed, inp.hashed[name])


def _streamed(inp: Inputs, table: str) -> tuple[_Hashed, pl.Series]:
    """A table the run does not hold (``Inputs.warehouse``): its rows' hashes, as
    ``_Hashed.of`` the frame ``load`` would have read (a row's hash is its own, so parts
    of any size in any order give the same digests), and their stamps (``_DATED``)."""
    key = f"{table}|parts"
    if key not in inp.hashed:
        cols = FEATURE_TABLES[table]
        ctx = inp.warehouse
        empty = ctx.table(table, cols, any_of={"opportunity_id": []})
        hashes, stamps = [np.zeros(0, np.uint64)], [empty[_DATED[table]]]
        for part in ctx.batches(table, cols):
            part = part.select(cols)
            hashes.append(part.hash_rows(seed=7).to_numpy())
            stamps.append(part[_DATED[table]])
        schema = json.dumps([[c, str(t)] for c, t in empty.schema.items()]).encode()
        inp.hashed[key] = (_Hashed(schema, np.concatenate(hashes)), pl.concat(stamps))
    return cast(tuple[_Hashed, pl.Series], inp.hashed[key])


def _upto(col: pl.Series, upto: dt.datetime) -> np.ndarray:
    """The rows a filter on ``col <= upto`` keeps (not those without a date)."""
    return (col <= upto).fill_null(False).to_numpy()


def _known_users(inp: Inputs, dated: np.ndarray, seen: pl.Series, called: np.ndarray) -> np.ndarray:
    """The users a snapshot at or before the cut can see (a mask over ``inp.users``): the
    owners of the deals it saw (``seen``), whoever changed them then (history rows
    ``dated``), and whoever called a forecast (submissions ``called``). A user with none
    of these (a rep hired since) owns nothing then, draws no share of new business
    (``_newbiz.rep_shares``, ``working``) and is in no row, so hiring one changes no
    stored snapshot; hashing every user replayed the whole backtest each week one came."""
    found = [inp.submissions["user_id"].filter(pl.Series(called))]
    if "owner_id" in inp.deals.columns:  # frames made by hand in tests may lack them
        found.append(inp.deals.filter(pl.col("opportunity_id").is_in(seen.implode()))["owner_id"])
    if "changed_by" in inp.history.columns:
        found.append(inp.history["changed_by"].filter(pl.Series(dated)))
    known = pl.concat([f.cast(pl.String) for f in found]).drop_nulls().unique().implode()
    return inp.users["user_id"].cast(pl.String).is_in(known).fill_null(False).to_numpy()


def fingerprint(inp: Inputs, upto: dt.datetime, settings: dict[str, Any]) -> str:
    """A digest of every input a snapshot at or before ``upto`` could see, with the
    ``settings`` (agent version, parameters, first month scored) that shape the result."""
    return _whole(fingerprint_parts(inp, upto, settings))


def _whole(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def fingerprint_parts(inp: Inputs, upto: dt.datetime, settings: dict[str, Any]) -> dict[str, str]:
    """``fingerprint``'s parts, one digest per input (and one for the settings). Polars'
    row hash is stable within one polars version only, so that is in the settings too.
    Each frame's rows are hashed once per run (``_Hashed``), whatever the cuts."""
    parts = {"settings": json.dumps({**settings, "format": FORMAT, "polars": pl.__version__})}
    parts["definitions"] = inp.definitions.model_dump_json()
    history = inp.history
    if inp.rebuilt_history:  # its ids number rows of a table new deals are added to
        history = history.drop("history_id")
    dated = _upto(inp.history["changed_at"], upto)
    parts["history"] = _hashed(inp, "history", history).digest(dated)
    seen = inp.history["opportunity_id"].filter(pl.Series(dated)).unique()
    static = inp.deals.select("opportunity_id", "lead_source", "opportunity_type", "product")
    parts["deals"] = _hashed(inp, "deals", static).digest(
        inp.deals["opportunity_id"].is_in(seen.implode()).fill_null(False).to_numpy()
    )
    called = _upto(inp.submissions["submitted_at"], upto)
    parts["users"] = _hashed(inp, "users", inp.users).digest(_known_users(inp, dated, seen, called))
    # Teams and regions are numbered in the order of all users' (the stored per-team
    # records are arrays by team): a new team is a change, a new member of one is not.
    parts["segments"] = json.dumps(
        [sorted(inp.users[c].fill_null("(none)").unique().to_list()) for c in ("team", "region")]
    )
    parts["submissions"] = _hashed(inp, "submissions", inp.submissions).digest(called)
    names = set(inp.feature_tables)
    if ACTIVITIES not in names:  # not held (``Inputs.warehouse``): read in parts
        names.add(ACTIVITIES)
    for table in sorted(names):
        # Contacts keep no history: a snapshot sees a contact's flags only if the row has
        # not changed since its moment, so any contact edited after the stored as-of
        # would change what a replay of an earlier snapshot sees. A stored snapshot keeps
        # the view it had when it was scored (what was known then); otherwise every
        # week's edits to contacts replayed everything (measured: `revstack simulate`).
        if table in ("crm.opportunity_history", "crm.contacts"):
            continue
        at = _DATED.get(table)
        if table not in inp.feature_tables:
            hashed, stamps = _streamed(inp, table)
            parts[table] = hashed.digest(_upto(stamps, upto))
            continue
        df = inp.feature_tables[table]
        keep = None
        if at:
            keep = _upto(df[at], upto)
            if table in _UNDATED_SEEN:
                keep |= df[at].is_null().to_numpy()
        parts[table] = _hashed(inp, table, df).digest(keep)
    return parts


def read(ctx: Context) -> Stored | None:
    """The cache the last run stored, if any. Read in any order: every row is looked up
    by its snapshot's key (and a snapshot's segments sorted), so none is needed."""
    head = ctx.table(TABLES[0], ordered=False)
    if head.is_empty():
        return None
    head = head.sort("as_of", "run_id").tail(1)
    run = head["run_id"][0]
    snaps = ctx.table(TABLES[1], ordered=False).filter(pl.col("run_id") == run)
    segs = ctx.table(TABLES[2], ordered=False).filter(pl.col("run_id") == run)
    summaries = {
        (k[0], k[1], k[2]): g
        for k, g in segs.group_by("period_kind", "period_start", "period_offset")
    }
    scored = {}
    for r in snaps.iter_rows(named=True):
        key = (r["period_kind"], r["period_start"], int(r["period_offset"]))
        scored[key] = _scored(r, key, summaries.get(key))
    opened = {}
    for r in (
        ctx.table(TABLES[3], ordered=False).filter(pl.col("run_id") == run).iter_rows(named=True)
    ):
        key = (r["period_kind"], r["period_start"], int(r["period_offset"]))
        opened[key] = _open(r, key)
    h = head.row(0, named=True)
    fits = {
        day: {
            "fit_at": day.isoformat(),
            "train_rows": int(n),
            "rho_company": float(rc),
            "rho_team": float(rt),
        }
        for day, n, rc, rt in zip(
            h["fit_at"], h["train_rows"], h["rho_company"], h["rho_team"], strict=True
        )
    }
    parts = _parts_of(h.get("parts"))
    return Stored(h["as_of"], h["eval_from"], h["fingerprint"], Reuse(scored, fits, opened), parts)


def _parts_of(text: str | None) -> dict[str, str] | None:
    """The stored parts, or None where they are missing or not a map of strings (a
    warehouse may come from someone else: a bad value loses only the reason's detail)."""
    if not text:
        return None
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parts.items()
    ):
        return None
    return parts


_OPEN_SUMMARY = [c for c in _SUMMARY if c not in ("actual", "crps")]


def _open(r: dict[str, Any], key: tuple[str, dt.date, int]) -> Open:
    summary = pl.DataFrame(
        {c: r[c] for c in _OPEN_SUMMARY}, schema={c: _SUMMARY[c] for c in _OPEN_SUMMARY}
    ).with_columns(actual=pl.lit(None, pl.Float64), crps=pl.lit(None, pl.Float64))
    deals = pl.DataFrame(
        {
            "opportunity_id": r["opportunity_id"],
            "owner_id": r["owner_id"],
            "row_hash": r["row_hash"],
            "p": r["win_probability"],
            "value": r["booked"],
        },
        schema={
            "opportunity_id": pl.String,
            "owner_id": pl.String,
            "row_hash": pl.UInt64,
            "p": pl.Float64,
            "value": pl.Float64,
        },
    )
    rho = (float(r["rho_company"]), float(r["rho_team"]))
    return Open(key, r["snapshot_at"], r["model_key"], rho, summary, deals)


def _scored(r: dict[str, Any], key: tuple[str, dt.date, int], seg: pl.DataFrame | None) -> Scored:
    def arr(name: str) -> np.ndarray:
        return np.array(r[name], dtype=np.float64)

    teams_sq = arr("error_teams")
    spread = None
    if r["variance_company"]:
        spread = _Spread(
            r["period_end"],
            arr("variance_company"),
            float(r["error_company"]),
            arr("variance_teams").reshape(len(teams_sq), -1),
            teams_sq,
        )
    summary = (
        pl.DataFrame(schema=_SUMMARY)
        if seg is None
        else seg.sort("segment_kind", "segment").select(
            [pl.col(c).cast(t) for c, t in _SUMMARY.items()]
        )
    )
    record = Record(
        slot(key[0], key[1], key[2]),
        r["period_end"],
        arr("team_won"),
        arr("team_mean"),
        arr("team_commit"),
        arr("team_actual"),
        float(r["spread"]),
        season_of(key[1]),
    )
    deals = pl.DataFrame(
        {"opportunity_id": r["opportunity_id"], "p": r["win_probability"], "value": r["booked"]},
        schema={"opportunity_id": pl.String, "p": pl.Float64, "value": pl.Float64},
    )
    pit_points = int(seg["pit_points"][0]) if seg is not None and len(seg) else 0
    return Scored(
        key,
        r["period_end"],
        r["snapshot_at"],
        summary,
        pit_points,
        {k: arr(f"pit_{k}") for k in _PIT_KINDS},
        record,
        spread,
        deals,
    )


def reuse_of(
    stored: Stored | None, inp: Inputs, eval_from: dt.date, settings: dict[str, Any]
) -> tuple[Reuse | None, str]:
    """What of ``stored`` this run may reuse, and in words why all or nothing."""
    if stored is None:
        return None, "no stored backtest yet"
    if inp.as_of < stored.as_of:
        return None, f"the data's as-of {inp.as_of} is before the cache's {stored.as_of}"
    if eval_from != stored.eval_from:
        return None, (
            f"the backtest now starts {eval_from}, not {stored.eval_from} (a quarter of "
            "the history is kept for training, and the history grew)"
        )
    parts = fingerprint_parts(inp, stored.as_of, settings)
    if _whole(parts) != stored.fingerprint:
        return None, _changed(parts, stored)
    return stored.reuse, f"reused the snapshots of periods over by {stored.as_of}"


def _changed(parts: dict[str, str], stored: Stored) -> str:
    """Why the fingerprint differs, naming the inputs that moved when the cache says."""
    head = f"inputs up to the cache's as-of {stored.as_of} changed"
    if stored.parts is None or _whole(stored.parts) != stored.fingerprint:
        return (
            f"{head} (a correction to history, deals, users, submissions or definitions) "
            "or the agent's version or parameters did"
        )
    moved = sorted(
        k for k in parts.keys() | stored.parts.keys() if parts.get(k) != stored.parts.get(k)
    )
    named = [_PART_NAMES.get(k, k) for k in moved]
    return f"{head}: {', '.join(named)}"


# How a reason names a part; a table's part is named by the table.
_PART_NAMES = {
    "settings": "the agent's version, parameters or polars version",
    "definitions": "the stage definitions",
    "history": "stage and amount history",
    "deals": "a seen deal's source, type or product",
    "users": "a user a past snapshot can see",
    "segments": "the list of teams or regions",
    "submissions": "forecast calls",
}


def to_rows(
    fc: Forecast, as_of: dt.datetime, eval_from: dt.date, parts: dict[str, str]
) -> dict[str, pl.DataFrame]:
    """The cache as rows of its tables (``parts``: the fingerprint's at ``as_of``)."""
    fits = fc.params["fits"]
    head = pl.DataFrame(
        {
            "as_of": [as_of],
            "eval_from": [eval_from],
            "fingerprint": [_whole(parts)],
            "parts": [json.dumps(parts, sort_keys=True)],
            "fit_at": [[dt.date.fromisoformat(f["fit_at"]) for f in fits]],
            "train_rows": [[int(f["train_rows"]) for f in fits]],
            "rho_company": [[float(f["rho_company"]) for f in fits]],
            "rho_team": [[float(f["rho_team"]) for f in fits]],
        },
        schema={
            "as_of": pl.Datetime("us"),
            "eval_from": pl.Date,
            "fingerprint": pl.String,
            "parts": pl.String,
            "fit_at": pl.List(pl.Date),
            "train_rows": pl.List(pl.Int64),
            "rho_company": pl.List(pl.Float64),
            "rho_team": pl.List(pl.Float64),
        },
    )
    snaps, segs = [], []
    for s in fc.scored:
        sp = s.spread
        snaps.append(
            {
                "period_kind": s.key[0],
                "period_start": s.key[1],
                "period_offset": s.key[2],
                "period_end": s.period_end,
                "snapshot_at": s.moment,
                **{f"pit_{k}": s.pits[k].tolist() for k in _PIT_KINDS},
                "team_won": s.record.won.tolist(),
                "team_mean": s.record.mean.tolist(),
                "team_commit": s.record.commit.tolist(),
                "team_actual": s.record.actual.tolist(),
                "spread": s.record.spread,
                "variance_company": [] if sp is None else sp.company.tolist(),
                "error_company": 0.0 if sp is None else sp.company_sq,
                "variance_teams": [] if sp is None else sp.teams.ravel().tolist(),
                "error_teams": [] if sp is None else sp.teams_sq.tolist(),
                "opportunity_id": s.deals["opportunity_id"].to_list(),
                "win_probability": s.deals["p"].to_list(),
                "booked": s.deals["value"].to_list(),
            }
        )
        segs.append(
            s.summary.select(list(_SUMMARY)).with_columns(
                period_kind=pl.lit(s.key[0]),
                period_start=pl.lit(s.key[1]),
                period_offset=pl.lit(s.key[2], pl.Int32),
                pit_points=pl.lit(s.pit_points, pl.Int64),
            )
        )
    f64 = pl.List(pl.Float64)
    snap_schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "period_kind": pl.String,
        "period_start": pl.Date,
        "period_offset": pl.Int32,
        "period_end": pl.Date,
        "snapshot_at": pl.Datetime("us"),
        **{f"pit_{k}": f64 for k in _PIT_KINDS},
        **{c: f64 for c in ("team_won", "team_mean", "team_commit", "team_actual")},
        "spread": pl.Float64,
        "variance_company": f64,
        "error_company": pl.Float64,
        "variance_teams": f64,
        "error_teams": f64,
        "opportunity_id": pl.List(pl.String),
        "win_probability": f64,
        "booked": f64,
    }
    opened = [
        {
            "period_kind": o.key[0],
            "period_start": o.key[1],
            "period_offset": o.key[2],
            "snapshot_at": o.moment,
            "model_key": o.model_key,
            "rho_company": o.rho[0],
            "rho_team": o.rho[1],
            "opportunity_id": o.deals["opportunity_id"].to_list(),
            "owner_id": o.deals["owner_id"].to_list(),
            "row_hash": o.deals["row_hash"].to_list(),
            "win_probability": o.deals["p"].to_list(),
            "booked": o.deals["value"].to_list(),
            **{c: o.summary[c].to_list() for c in _OPEN_SUMMARY},
        }
        for o in fc.open
    ]
    open_schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "period_kind": pl.String,
        "period_start": pl.Date,
        "period_offset": pl.Int32,
        "snapshot_at": pl.Datetime("us"),
        "model_key": pl.String,
        "rho_company": pl.Float64,
        "rho_team": pl.Float64,
        "opportunity_id": pl.List(pl.String),
        "owner_id": pl.List(pl.String),
        "row_hash": pl.List(pl.UInt64),
        "win_probability": f64,
        "booked": f64,
        **{c: pl.List(_SUMMARY[c]) for c in _OPEN_SUMMARY},
    }
    return {
        TABLES[0]: head,
        TABLES[1]: pl.DataFrame(snaps, schema=snap_schema),
        TABLES[2]: pl.concat(segs) if segs else pl.DataFrame(),
        TABLES[3]: pl.DataFrame(opened, schema=open_schema),
    }
