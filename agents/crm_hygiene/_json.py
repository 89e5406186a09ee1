"""JSON text for proposal values and evidence, built as polars expressions."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

__all__ = ["json_expr", "dumps"]


def json_expr(expr: pl.Expr, numeric: bool = False) -> pl.Expr:
    """A column as JSON text: numbers as they are stored (so the guarded apply recognises
    them), strings quoted and escaped, NULL as null."""
    if numeric:
        return pl.when(expr.is_null()).then(pl.lit("null")).otherwise(expr.cast(pl.String))
    return (
        pl.when(expr.is_null())
        .then(pl.lit("null"))
        .otherwise(
            pl.lit('"')
            + expr.cast(pl.String)
            .str.replace_all(r"\\", r"\\\\")
            .str.replace_all('"', r"\"")
            .str.replace_all("\n", r"\n")
            .str.replace_all("\r", r"\r")
            .str.replace_all("\t", r"\t")
            + pl.lit('"')
        )
    )


def dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))
