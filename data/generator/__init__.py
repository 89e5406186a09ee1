"""The sample company: a realistic B2B CRM with its ground truth, built straight into
the warehouse, deterministic by seed. See docs/generator.md."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import numpy as np
import polars as pl

from data.errors import InputError
from data.generator._build import build
from data.generator._config import DEFAULT_AS_OF, RATES, SCALES
from data.generator._write import TABLES, write
from data.progress import Progress, report
from data.warehouse import Warehouse, scalar

__all__ = ["generate", "SCALES", "RATES", "DEFAULT_AS_OF"]

_HAS_DATA = "SELECT (SELECT count(*) FROM crm.accounts) + (SELECT count(*) FROM crm.opportunities)"


def generate(
    wh: Warehouse,
    *,
    scale: str = "small",
    seed: int = 0,
    as_of: dt.date | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build a company at ``scale`` into ``wh`` in one transaction; returns a summary."""
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    as_of = as_of or DEFAULT_AS_OF
    with wh.connect() as con:
        has_data = int(scalar(con, _HAS_DATA))  # type: ignore[arg-type]
    if has_data and not replace:
        raise InputError(
            f"{wh.path} already holds a CRM ({has_data:,} accounts and deals); pass --replace to build a new company in its place"
        )
    clock = time.perf_counter()
    tables = build(np.random.default_rng(seed), SCALES[scale], as_of, progress=progress)
    report(progress, "writing", 0, 1)
    params = {"scale": scale, "seed": seed, "as_of": as_of.isoformat(), "rates": RATES.__dict__}
    write(
        wh,
        tables,
        scale=scale,
        seed=seed,
        as_of=as_of,
        params=json.dumps(params, default=str),
        replace=replace,
    )
    report(progress, "writing", 1, 1)
    opps = tables["truth.deal_outcomes"]
    closed = opps.filter(pl.col("outcome") != "open")
    cycles = tables["_cycles"]
    return {
        "scale": scale,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "seconds": round(time.perf_counter() - clock, 2),
        "rows": {t: len(tables[t]) for t in TABLES if t in tables},
        "defects": dict(
            tables["truth.defects"].group_by("defect_class").len().sort("defect_class").iter_rows()
        ),
        "outcomes": {
            "win_rate": round(float((closed["outcome"] == "won").mean()), 4),
            "median_cycle_days": float(cycles.median()),  # type: ignore[arg-type]
            "open_deals": int((opps["outcome"] == "open").sum()),
        },
    }
