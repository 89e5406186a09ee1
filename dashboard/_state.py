"""What every page shares: the warehouse, who is signed in, the filters, cached reads."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import streamlit as st

from revstack.contracts import Bundle, default_dir, load_all
from revstack.dashboard.charts import safe_labels
from revstack.data import csvwriter
from revstack.data.warehouse import Warehouse, default_db_path

__all__ = [
    "warehouse",
    "signed_in",
    "download",
    "table",
    "load",
    "Filters",
    "filters",
    "WINDOWS",
    "csv_text",
    "bundle",
    "keep_choice",
    "column_config",
    "show_frame",
    "refresh",
    "plain",
    "value_text",
    "chart",
    "chain_checkpoint",
    "keep_chain_checkpoint",
]

T = TypeVar("T")


@st.cache_resource
def _warehouse(path: str) -> Warehouse:
    # A Warehouse holds no connection, so one object can serve every session;
    # each page render opens and closes the file per unit of work.
    return Warehouse(path)


def _path() -> str:
    return str(Path(os.environ.get("REVSTACK_DB") or default_db_path()).resolve())


def warehouse() -> Warehouse:
    return _warehouse(_path())


@st.cache_resource(ttl=60)
def bundle() -> Bundle:
    """The contracts and definitions (re-read a minute after RevOps edits them)."""
    return load_all()


# -- cached reads ---------------------------------------------------------------------


def _call(path: str, module: str, name: str, args: tuple, kwargs: dict) -> Any:
    from revstack.metrics.remembered import remembering

    fn = getattr(importlib.import_module(module), name)
    # With the cache on, figures a decision cannot change (truth's verdicts...) are kept
    # across fingerprints too, so the render after a decision does not recompute them.
    keep = remembering() if _caching() else contextlib.nullcontext()
    with _warehouse(path).connect() as con, keep:
        return fn(con, *args, **kwargs)


@st.cache_data(ttl=600, max_entries=512, show_spinner=False)
def _cached(path: str, stamp: tuple, module: str, name: str, args: tuple, kwargs: dict) -> Any:
    del stamp  # part of the key only: a new fingerprint is a new entry
    return _call(path, module, name, args, kwargs)


def _caching() -> bool:
    return os.environ.get("REVSTACK_DASH_CACHE", "1") != "0"


def _contracts_changed() -> float:
    return max((p.stat().st_mtime for p in default_dir().rglob("*.yaml")), default=0.0)


def refresh() -> None:
    """Read the warehouse's fingerprint anew: at the top of every run (app.py, before the
    page), and after a page writes (a policy change), so what follows on the same run sees
    it. The contracts' newest edit is part of it: the registry is read from them."""
    from revstack.metrics.health import last_change

    with warehouse().connect() as con:
        st.session_state["_stamp"] = (_path(), (last_change(con), _contracts_changed()))


def load(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(con, *args, **kwargs)`` on the warehouse, cached until the warehouse changes.

    The cache key holds ``metrics.health.last_change`` (audit log, runs, proposals,
    snapshots, imports), read at the start of every run and after every write the
    dashboard makes, so a decision made a moment ago (here or by the CLI) is on the very
    next render. Arguments must be hashable by Streamlit (strings, numbers, dates,
    tuples). ``REVSTACK_DASH_CACHE=0`` turns the cache off (bench/bench_pages.py
    measures both).
    """
    module, name = fn.__module__, fn.__name__
    path = _path()
    if not _caching():
        return _call(path, module, name, args, kwargs)
    kept = st.session_state.get("_stamp")
    if kept is None or kept[0] != path:
        refresh()
        kept = st.session_state["_stamp"]
    return _cached(path, kept[1], module, name, args, kwargs)


# -- the audit chain's checkpoint ------------------------------------------------------


@st.cache_resource
def _checkpoints() -> dict[str, Any]:
    # One per warehouse file, shared by every session of this server process: the last
    # good chain check, which a later check starts from (agents.engine.verify, since).
    return {}


def chain_checkpoint() -> Any:
    """The last good chain check of this warehouse in this process (None before one)."""
    return _checkpoints().get(_path())


def keep_chain_checkpoint(report: Any) -> None:
    """Keep a good check as the checkpoint if it re-hashed every row (a file restored
    from a backup is then the log checked) or reaches further than the one kept (the
    same one kept is the same cache key for the next session's check)."""
    kept = _checkpoints().get(_path())
    whole = report.rehashed_from <= 1
    if report.ok and report.chain and (kept is None or whole or report.rows > kept.rows):
        _checkpoints()[_path()] = report


# -- who is acting --------------------------------------------------------------------


def signed_in() -> tuple[str | None, str | None]:
    return st.session_state.get("actor"), st.session_state.get("role")


# -- filters that follow a person from page to page -----------------------------------

WINDOWS = {
    "Last 7 days": 7,
    "Last 30 days": 30,
    "Last 90 days": 90,
    "Last year": 365,
    "All time": None,
}


@dataclass(frozen=True)
class Filters:
    """The sidebar's filters as a page applies them. Empty ``agents`` means every agent."""

    agents: tuple[str, ...] = ()
    window: str = "All time"
    team: str | None = None
    region: str | None = None

    @property
    def since(self) -> dt.datetime:
        """Start of the time window, at midnight UTC (a stable cache key all day)."""
        days = WINDOWS[self.window]
        if days is None:
            return dt.datetime(1970, 1, 1)
        today = dt.datetime.now(dt.UTC).replace(tzinfo=None).date()
        return dt.datetime.combine(today - dt.timedelta(days=days), dt.time())

    def by_agent(self, df: pl.DataFrame, column: str = "agent") -> pl.DataFrame:
        return df if not self.agents else df.filter(pl.col(column).is_in(list(self.agents)))

    def describe(self) -> str:
        parts = [", ".join(self.agents) if self.agents else "all agents", self.window.lower()]
        parts += [f"team {self.team}"] if self.team else []
        parts += [f"region {self.region}"] if self.region else []
        return " · ".join(parts)


def _kept(key: str, options: list[Any], default: Any, *, multi: bool = False) -> None:
    """Seed a widget from the value kept under a plain key.

    Streamlit forgets a widget's state on a page that does not draw it, so every
    filter's value also lives under ``keep.<key>``, which no page removes.
    """
    kept = st.session_state.get(f"keep.{key}", default)
    if multi:
        kept = [v for v in kept if v in options]
    elif kept not in options:
        kept = default
    st.session_state[key] = kept


def _keep(key: str) -> None:
    st.session_state[f"keep.{key}"] = st.session_state[key]


def keep_choice(key: str, options: list[Any]) -> dict[str, Any]:
    """Keyword arguments for a page's own selectbox whose choice should outlive a visit
    to another page: ``st.selectbox(label, options, **keep_choice(key, options))``."""
    _kept(key, options, options[0] if options else None)
    return {"key": key, "on_change": _keep, "args": (key,)}


def filters(*, agents: bool = True, window: bool = True, territory: bool = False) -> Filters:
    """Draw the filters a page uses in the sidebar and return them.

    A filter set on one page is in force on every other page that uses it, for the
    whole session.
    """
    from revstack.metrics.activity import agents_seen

    out: dict[str, Any] = {}
    st.sidebar.markdown("**Filters**")
    if agents:
        names = sorted(set(bundle().contracts) | set(load(agents_seen)))
        _kept("filter_agents", names, [], multi=True)
        chosen = st.sidebar.multiselect(
            "Agents",
            names,
            key="filter_agents",
            on_change=_keep,
            args=("filter_agents",),
            placeholder="All agents",
        )
        out["agents"] = tuple(chosen)
    if window:
        labels = list(WINDOWS)
        _kept("filter_window", labels, "All time")
        out["window"] = st.sidebar.selectbox(
            "Time window", labels, key="filter_window", on_change=_keep, args=("filter_window",)
        )
    if territory:
        from revstack.metrics.drilldown import territories

        terr = load(territories)
        for col, label in (("team", "Team"), ("region", "Region")):
            values = ["All"] + sorted(v for v in terr[col].unique().to_list() if v is not None)
            _kept(f"filter_{col}", values, "All")
            pick = st.sidebar.selectbox(
                label, values, key=f"filter_{col}", on_change=_keep, args=(f"filter_{col}",)
            )
            out[col] = None if pick == "All" else pick
    return Filters(**out)


# -- text from the data ----------------------------------------------------------------

# Every ASCII punctuation character: CommonMark lets a backslash make each one literal,
# so nothing in an escaped value can start a link, an image, emphasis, a heading, HTML,
# an entity, a Streamlit colour or emoji directive (:red[...]) or LaTeX ($...$).
_MARKUP = re.compile(r"([!-/:-@\[-`{-~])")


def value_text(stored: str | None) -> str:
    """A proposal's stored value (JSON text) as a person reads it: "(blank)" for none, a
    string without its quotes, an object as "key: value" pairs (an email draft's subject
    and sequence rather than its braces)."""
    if stored is None:
        return "(blank)"
    try:
        value = json.loads(stored)
    except ValueError:
        return stored
    if value is None:
        return "(blank)"
    if isinstance(value, dict):
        return " · ".join(f"{k}: {value_text(json.dumps(v))}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(value_text(json.dumps(v)) for v in value)
    return str(value)


def plain(value: object) -> str:
    """``value`` as text to put inside ``st.markdown``, ``st.caption``, ``st.info``, an
    expander's label...: every Markdown and HTML character escaped, line breaks as spaces.

    Values on pages come from CRM exports, enrichment providers, news feeds and agents'
    reasons, none of which revstack wrote: ``[click](http://evil.example)`` or
    ``<img src=x onerror=alert(1)>`` must read as those characters, not as a link or an
    image. Numbers and dates formatted by the page itself need no escaping.
    """
    return _MARKUP.sub(r"\\\1", " ".join(str(value).splitlines()))


def chart(where: Any, fig: Any, **kwargs: Any) -> None:
    """``where.plotly_chart(fig, **kwargs)`` (``where``: ``st``, a column, the sidebar)
    with every label escaped (``charts.safe_labels``): the one way a page shows a chart."""
    where.plotly_chart(safe_labels(fig), **kwargs)


# -- tables ---------------------------------------------------------------------------


def csv_text(df: pl.DataFrame) -> str:
    """CSV of any frame: nested columns (lists, structs) become JSON text, which CSV holds,
    and text cells are neutralised like every CSV revstack writes (data/csvwriter.py)."""
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    flat = df.with_columns(
        pl.col(c).map_elements(
            lambda v: json.dumps(v.to_list() if isinstance(v, pl.Series) else v, default=str),
            return_dtype=pl.String,
        )
        for c in nested
    )
    return csvwriter.csv_text(flat)


def download(df: pl.DataFrame, name: str, *, key: str) -> None:
    """Every table can be taken away as CSV (built when clicked, not on every render)."""
    st.download_button(
        f"Download {name} (CSV)",
        lambda: csv_text(df),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key,
        on_click="ignore",
    )


# How a column reads, by its name: money in dollars, shares as percentages, counts with
# thousands separators. Shares are checked first (commit_bias is a share, commit money).
_MONEY = re.compile(
    r"(^|_)(amount|value|revenue|p10|p50|p90|expected|rep_commit|won_to_date|gap_to_commit|"
    r"pipeline_expected|new_expected|commit|best_case|won|booked|arr|dollars?|actual|error|crps)($|_)"
)
_SHARE = re.compile(
    r"(^|_)(share|rate|precision|recall|f1|coverage|mape|wape|bias|within_5|within_10|"
    r"pr_auc|base_rate|bound|right_low|right_high|precision_low|precision_high|"
    r"probability|p|at_k|skill|width|weight|predicted|observed|lower|upper|bar|agreement|accuracy)($|_)"
)


def column_config(df: pl.DataFrame) -> dict[str, Any]:
    """Streamlit column formats for a frame: money, shares and counts read as such, and
    every header in words ("precision low", not "precision_low")."""
    config: dict[str, Any] = {}
    for name, dtype in df.schema.items():
        label = name.replace("_", " ")
        if dtype.is_float() and "ratio" in name:
            config[name] = st.column_config.NumberColumn(label, format="%.2f×")
        elif dtype.is_float() and _SHARE.search(name):
            config[name] = st.column_config.NumberColumn(label, format="percent")
        elif dtype.is_numeric() and _MONEY.search(name):
            config[name] = st.column_config.NumberColumn(label, format="dollar")
        elif dtype.is_integer():
            config[name] = st.column_config.NumberColumn(label, format="localized")
        elif dtype.is_float():
            config[name] = st.column_config.NumberColumn(label, format="%.2f")
        elif isinstance(dtype, pl.Datetime) and _all_midnight(df[name]):
            # a week's or a period's start: "2026-06-29", not "2026-06-29 00:00:00"
            config[name] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD")
        else:
            config[name] = st.column_config.Column(label)
    return config


def _all_midnight(values: pl.Series) -> bool:
    times = values.drop_nulls()
    return len(times) > 0 and bool((times.dt.truncate("1d") == times).all())


def show_frame(df: pl.DataFrame, *, key: str | None = None) -> None:
    """A frame on the page with its columns formatted (``column_config``)."""
    st.dataframe(df, hide_index=True, column_config=column_config(df), key=key)


def table(df: pl.DataFrame, name: str, *, key: str, rows: int | None = None) -> None:
    """A table on the page (the first ``rows`` rows if given) and its full CSV download."""
    shown = df if rows is None or len(df) <= rows else df.head(rows)
    show_frame(shown)
    if rows is not None and len(df) > rows:
        st.caption(f"Showing the first {rows:,} of {len(df):,} rows; the download has them all.")
    download(df, name, key=key)
