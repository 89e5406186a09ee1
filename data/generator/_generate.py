"""generate(): build a company in memory, then write it in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import numpy as np
import polars as pl

from revstack.data.errors import InputError
from revstack.data.generator._build import simulate
from revstack.data.generator._config import DEFAULT_AS_OF, RATES, SCALES, definitions
from revstack.data.generator._crm import crm_tables
from revstack.data.generator._forecasts import revenue, submissions
from revstack.data.generator._ref import news_table, provider
from revstack.data.generator._truth import truth_tables
from revstack.data.generator._util import Clock
from revstack.data.generator._write import TABLES, write
from revstack.data.progress import Progress, report
from revstack.data.warehouse import Warehouse, scalar

__all__ = ["generate"]

_HAS_CRM = "SELECT (SELECT count(*) FROM crm.accounts) + (SELECT count(*) FROM crm.opportunities)"
_STEPS = ["simulating", "keying into the CRM", "forecasts and truth", "writing"]


def build_tables(
    scale: str, seed: int, as_of: dt.date, progress: Progress | None = None
) -> dict[str, pl.DataFrame]:
    """Every table of the company as polars frames (no warehouse involved)."""
    rng = np.random.default_rng(seed)
    size = SCALES[scale]
    as_of_dt = dt.datetime.combine(as_of, dt.time())
    clock = Clock(start=as_of_dt - dt.timedelta(days=round(365.25 * size.years)), as_of=as_of_dt)
    report(progress, _STEPS[0], 0, len(_STEPS))
    world = simulate(rng, size, clock)
    report(progress, _STEPS[1], 1, len(_STEPS))
    tables = crm_tables(rng, world, RATES)
    truth_firmo = world.accounts.select(
        "account_id", "name", "domain", "industry", "employees", "annual_revenue", "country", "city"
    )
    tables["ref.enrichment"], tables["_provider_defects"] = provider(rng, clock, truth_firmo, RATES)
    tables["ref.news"] = news_table(rng, clock, world.news, world.accounts)
    report(progress, _STEPS[2], 2, len(_STEPS))
    tables["crm.forecast_submissions"] = submissions(
        rng, clock, world.deals, world.team, world.history
    )
    tables["truth.revenue"] = revenue(clock, world.deals, world.team)
    tables.update(truth_tables(world, tables, definitions()["required_fields"]))
    d = world.deals
    closed = d.closed
    tables["_outcomes"] = {  # type: ignore[assignment]
        "win_rate": round(float(d.won[closed].mean()), 4) if closed.any() else None,
        "median_cycle_days": round(float(np.median(d.outcome[closed] - d.created[closed])), 1)
        if closed.any()
        else None,
        "open_deals": int((~d.crm_closed).sum()),
    }
    return tables


def generate(
    wh: Warehouse,
    *,
    scale: str = "small",
    seed: int = 0,
    as_of: dt.date | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build a sample company at ``scale`` into ``wh``, deterministic by ``seed``.

    The company is built in memory and written in one transaction, so a failure leaves
    the warehouse as it was. A warehouse that already holds a CRM is refused unless
    ``replace`` is set; then crm, ref, foundation and truth (and the engine's state about
    the old records) are cleared first. Returns a JSON-able summary: scale, seed, as_of,
    seconds, rows per table, defects per class and outcome figures.
    """
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    as_of = as_of or DEFAULT_AS_OF
    with wh.connect() as con:
        has_crm = int(scalar(con, _HAS_CRM))
    if has_crm and not replace:
        raise InputError(
            f"{wh.path} already holds a CRM ({has_crm:,} accounts and deals); pass --replace to build a new company in its place"
        )
    clock = time.perf_counter()
    tables = build_tables(scale, seed, as_of, progress)
    report(progress, _STEPS[3], 3, len(_STEPS))
    params = {
        "scale": scale,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "rates": RATES.as_dict(),
        "scale_params": SCALES[scale].__dict__,
    }
    rows = {t: len(tables[t]) for t in TABLES}
    defects = dict(
        tables["truth.defects"].group_by("defect_class").len().sort("defect_class").iter_rows()
    )
    outcomes = tables["_outcomes"]
    write(
        wh,
        tables,
        scale=scale,
        seed=seed,
        as_of=as_of,
        params=json.dumps(params, default=str),
        replace=replace,
    )
    report(progress, _STEPS[3], len(_STEPS), len(_STEPS))
    return {
        "scale": scale,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "seconds": round(time.perf_counter() - clock, 2),
        "rows": rows,
        "defects": defects,
        "outcomes": outcomes,
    }
