"""The one way revstack writes CSV, so that no cell it writes runs as a spreadsheet formula.

Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula, and a formula can run a program
(``=cmd|' /C calc'!A0``) or send the sheet's contents to a web address. CRM values are
typed by anyone (a lead form, a sync, an import), so every CSV revstack writes goes
through ``write_csv`` or ``csv_text``: a text cell that starts with one of those
characters gets a single quote in front (OWASP's rule for CSV injection), which a
spreadsheet shows as text. Only text cells change: numbers, dates and booleans are
written as they are, so a negative amount stays a number. Column names are text cells
too. docs/security.md says what this promises and what it costs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from revstack.data.errors import InputError

__all__ = ["FORMULA_START", "csv_text", "neutralise", "neutralised", "write_csv"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA = r"^[=+\-@\t\r]"


def neutralise(value: str) -> str:
    """``value`` with a single quote in front if a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def neutralised(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every text cell and column name made safe; other columns unchanged."""
    text = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical) or t == pl.Enum]
    safe = df.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )
    renamed = {c: neutralise(c) for c in safe.columns if neutralise(c) != c}
    return safe.rename(renamed) if renamed else safe


def csv_text(df: pl.DataFrame) -> str:
    """``df`` as CSV text, every text cell made safe (for downloads)."""
    return neutralised(df).write_csv()


def write_csv(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` as CSV, every text cell made safe. The file appears whole
    or not at all: it is written beside the target and then renamed over it. A place
    that cannot be written (a directory, a parent that is a file) is an ``InputError``."""
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a file name to write the CSV to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc
    os.close(fd)
    try:
        neutralised(df).write_csv(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
