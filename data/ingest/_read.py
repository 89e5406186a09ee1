"""Reading one export file into typed target columns, collecting every problem located."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl

from revstack.data.errors import Problem
from revstack.data.ingest._mapping import CONSENT, NO, YES, ObjectMap

__all__ = ["read_object", "LINE"]

LINE = "_line"  # physical line of the record when no field spans lines (header = line 1)
_TS_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
]
_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S%.fZ", "%d.%m.%Y"]
_SPELLINGS = "true/false, yes/no, y/n, 1/0, t/f (any case)"
# What the warehouse's columns hold (migration 001): amounts are DECIMAL(18, 2), whole
# numbers INTEGER. A value beyond them is refused here, located, not by DuckDB mid-write.
_MAX_AMOUNT = 1e16
_MAX_INTEGER = 2**31 - 1
_MAX_PROBLEMS = 200
# Long-text fields (Salesforce allows 131,072 characters) exceed the csv module's default
# limit; polars reads them, so the shape check must too.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))


def _first_bad_utf8_line(path: Path) -> int | None:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _has_nul(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(b"\x00" in block for block in iter(lambda: fh.read(1 << 20), b""))


def _slug(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")


def _convert(col: str, kind: str) -> pl.Expr:
    raw = pl.col(col)
    if kind in ("integer", "number", "amount", "percent", "millions"):
        cleaned = raw.str.replace_all(r"[$,\s]", "").str.replace(r"%$", "")
        parsed = cleaned.cast(pl.Float64, strict=False)
        value = pl.when(parsed.is_finite()).then(parsed)  # NaN and inf are no CRM's numbers
        if kind == "integer":
            return value.round(0).cast(pl.Int64, strict=False)
        if kind == "percent":
            return value / 100.0
        if kind == "millions":
            return value * 1_000_000
        return value
    if kind == "timestamp":
        return pl.coalesce(
            [raw.str.strptime(pl.Datetime("us"), f, strict=False) for f in _TS_FORMATS]
        )
    if kind == "date":
        return pl.coalesce([raw.str.strptime(pl.Date, f, strict=False) for f in _DATE_FORMATS])
    if kind == "boolean":
        low = raw.str.strip_chars().str.to_lowercase()
        return pl.when(low.is_in(YES)).then(True).when(low.is_in(NO)).then(False).otherwise(None)
    if kind == "present":
        return raw.is_not_null()
    if kind == "slug":
        return _slug(raw)
    return raw


def _ragged_rows(path: Path, label: str) -> list[Problem]:
    """Every record whose field count differs from the header's. A CSV reader pads a
    short record with empty values, so a row cut short (a truncated download, a record
    broken by a stray newline) would otherwise load as NULLs."""
    found: list[Problem] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        width = len(header)
        # line = record number + 1, as the frame counts them (a blank line is a record)
        for line, record in enumerate(reader, start=2):
            n = len(record)
            if n == width or n == 0:
                continue
            if n < width:
                found.append(
                    Problem(
                        label,
                        f"the row has {n} of the header's {width} fields: it ends after "
                        f"{header[n - 1].strip()!r} (cut short?)",
                        line=line,
                        column=header[n].strip(),
                    )
                )
            else:
                found.append(
                    Problem(label, f"the row has {n} fields, the header {width}", line=line)
                )
            if len(found) >= _MAX_PROBLEMS:
                break
    return found


def read_object(
    path: Path, spec: ObjectMap, problems: list[Problem], label: str
) -> pl.DataFrame | None:
    """Target-named, typed columns of one file, plus LINE; None when it cannot be read at all."""
    if path.stat().st_size == 0:
        problems.append(Problem(label, "the file is empty (0 bytes)"))
        return None
    bad_line = _first_bad_utf8_line(path)
    if bad_line is not None:
        problems.append(Problem(label, "not UTF-8 text (re-export as UTF-8)", line=bad_line))
        return None
    try:
        df = pl.read_csv(path, infer_schema=False, encoding="utf8", quote_char='"')
    except pl.exceptions.PolarsError as exc:
        # a row longer than the header is one of these; name it when it is
        first = str(exc).splitlines()[0]
        problems.extend(
            _ragged_rows(path, label) or [Problem(label, f"not a readable CSV file: {first}")]
        )
        return None
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    if df.is_empty():
        problems.append(Problem(label, "the file has a header but no rows", line=2))
        return None
    before = len(problems)
    missing = [c for c in spec.required_columns if c not in df.columns]
    for c in missing:
        problems.append(Problem(label, "missing column", line=1, column=c))
    for c in df.columns:
        if c not in spec.columns and not spec.ignored(c):
            hint = " (is the delimiter a comma?)" if re.search(r"[;\t|]", c) else ""
            problems.append(
                Problem(
                    label,
                    f"unknown column{hint}; map it or ignore it in the mapping",
                    line=1,
                    column=c,
                )
            )
    if len(problems) > before:
        return None
    # The reader pads a short record with nulls, so only a file whose last column has a
    # null can hold one (a quoted empty field reads as ""): only then is it read again.
    if df[df.columns[-1]].null_count():
        problems.extend(_ragged_rows(path, label))
        if len(problems) > before:
            return None

    df = df.with_row_index(LINE, offset=2)
    # A NUL byte is no character a person typed: the file is binary or damaged.
    for c in df.columns[1:] if _has_nul(path) else []:
        nul = df.filter(pl.col(c).str.contains("\x00", literal=True))
        for line in nul[LINE].head(_MAX_PROBLEMS):
            problems.append(
                Problem(label, "a NUL byte in the value (a binary or damaged file?)", line, c)
            )
    if len(problems) > before:
        return None
    df = df.with_columns(
        [
            pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in df.columns[1:]
        ]
    )
    targets: dict[str, pl.Expr] = {}
    pairs: list[tuple[str, str]] = []
    for src, tgt in spec.columns.items():
        if src not in df.columns:
            continue
        expr = pl.col(src)
        if tgt in spec.values:
            expr = expr.replace_strict(spec.values[tgt], default=None)
        elif tgt in spec.types:
            expr = _convert(src, spec.types[tgt])
            if tgt in spec.unknown_is_opted_out:
                # the mapping says so: what cannot be read as yes or no counts as opted out
                expr = (
                    pl.when(pl.col(src).is_not_null() & expr.is_null()).then(True).otherwise(expr)
                )
        targets[tgt] = pl.coalesce([targets[tgt], expr]) if tgt in targets else expr
        pairs.append((src, tgt))
    out = df.select(pl.col(LINE), *[e.alias(t) for t, e in targets.items()])
    # Every value that was there but did not convert, or that the warehouse cannot hold,
    # is a located problem.
    for src, tgt in pairs:
        _check_column(df, src, tgt, spec, problems, label)
    return out


def _check_column(
    df: pl.DataFrame, src: str, tgt: str, spec: ObjectMap, problems: list[Problem], label: str
) -> None:
    kind = spec.types.get(tgt, "string")
    if tgt in spec.values:
        bad = df.filter(pl.col(src).is_not_null() & ~pl.col(src).is_in(list(spec.values[tgt])))
        for line, value in bad.select(LINE, src).head(_MAX_PROBLEMS).iter_rows():
            problems.append(
                Problem(
                    label,
                    f"unknown {tgt} {value!r}; add it to the mapping's values.{tgt}",
                    line=line,
                    column=src,
                )
            )
        return
    if kind in ("string", "present", "slug"):
        return
    if kind == "boolean" and tgt in spec.unknown_is_opted_out:
        return
    checked = df.select(LINE, src).with_columns(conv=_convert(src, kind))
    bad = checked.filter(pl.col(src).is_not_null() & pl.col("conv").is_null())
    for line, value, _ in bad.head(_MAX_PROBLEMS).iter_rows():
        if kind == "boolean":
            message = f"cannot read {value!r} as yes or no; the values it accepts are {_SPELLINGS}"
            if tgt in CONSENT:
                message += (
                    f", or list {tgt} under unknown_is_opted_out in the mapping to count "
                    "anything else as opted out"
                )
        else:
            article = "an" if kind[0] in "aeiou" else "a"
            message = f"cannot read {value!r} as {article} {kind}"
        problems.append(Problem(label, message, line=line, column=src))
    conv = pl.col("conv")
    if kind == "amount":
        for line, conv_value in (
            checked.filter(conv < 0).select(LINE, "conv").head(_MAX_PROBLEMS).iter_rows()
        ):
            problems.append(
                Problem(label, f"negative amount {conv_value:g}", line=line, column=src)
            )
        too_large = checked.filter(conv >= _MAX_AMOUNT).select(LINE, src)
        for line, value in too_large.head(_MAX_PROBLEMS).iter_rows():
            problems.append(
                Problem(
                    label,
                    f"amount {value!r} is too large (the warehouse holds amounts below 10^16)",
                    line=line,
                    column=src,
                )
            )
    elif kind == "percent":
        outside = checked.filter((conv < 0) | (conv > 1)).select(LINE, src)
        for line, value in outside.head(_MAX_PROBLEMS).iter_rows():
            problems.append(
                Problem(
                    label, f"{value!r} is not a percentage between 0 and 100", line=line, column=src
                )
            )
    elif kind == "integer":
        outside = checked.filter(conv.abs() > _MAX_INTEGER).select(LINE, src)
        for line, value in outside.head(_MAX_PROBLEMS).iter_rows():
            problems.append(
                Problem(
                    label,
                    f"{value!r} is too large for a whole number (at most 2,147,483,647)",
                    line=line,
                    column=src,
                )
            )
