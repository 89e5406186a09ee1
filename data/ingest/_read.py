"""Reading one export file into typed target columns, collecting every problem located."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from revstack.data.errors import Problem
from revstack.data.ingest._mapping import ObjectMap

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


def _first_bad_utf8_line(path: Path) -> int | None:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _slug(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")


def _convert(col: str, kind: str) -> pl.Expr:
    raw = pl.col(col)
    if kind in ("integer", "number", "amount", "percent", "millions"):
        cleaned = raw.str.replace_all(r"[$,\s]", "").str.replace(r"%$", "")
        value = cleaned.cast(pl.Float64, strict=False)
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
        low = raw.str.to_lowercase()
        return (
            pl.when(low.is_in(["1", "true", "yes", "y", "t"]))
            .then(True)
            .when(low.is_in(["0", "false", "no", "n", "f"]))
            .then(False)
            .otherwise(None)
        )
    if kind == "present":
        return raw.is_not_null()
    if kind == "slug":
        return _slug(raw)
    return raw


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
        problems.append(Problem(label, f"not a readable CSV file: {str(exc).splitlines()[0]}"))
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

    df = df.with_row_index(LINE, offset=2).with_columns(
        [
            pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in df.columns
        ]
    )
    targets: dict[str, pl.Expr] = {}
    sources: dict[str, str] = {}
    for src, tgt in spec.columns.items():
        if src not in df.columns:
            continue
        expr = pl.col(src)
        if tgt in spec.values:
            expr = expr.replace_strict(spec.values[tgt], default=None)
        if tgt in spec.types:
            expr = _convert(src, spec.types[tgt]) if tgt not in spec.values else expr
        targets[tgt] = pl.coalesce([targets[tgt], expr]) if tgt in targets else expr
        sources.setdefault(tgt, src)
    out = df.select(pl.col(LINE), *[e.alias(t) for t, e in targets.items()])
    # Every value that was there but did not convert is a located problem.
    for tgt, src in sources.items():
        kind = spec.types.get(tgt, "string")
        if tgt in spec.values:
            bad = df.filter(pl.col(src).is_not_null() & ~pl.col(src).is_in(list(spec.values[tgt])))
            for line, value in bad.select(LINE, src).head(200).iter_rows():
                problems.append(
                    Problem(
                        label,
                        f"unknown {tgt} {value!r}; add it to the mapping's values.{tgt}",
                        line=line,
                        column=src,
                    )
                )
        elif kind not in ("string", "boolean", "present", "slug"):
            bad = (
                df.select(LINE, src)
                .with_columns(conv=_convert(src, kind))
                .filter(pl.col(src).is_not_null() & pl.col("conv").is_null())
            )
            for line, value, _ in bad.head(200).iter_rows():
                article = "an" if kind[0] in "aeiou" else "a"
                problems.append(
                    Problem(
                        label, f"cannot read {value!r} as {article} {kind}", line=line, column=src
                    )
                )
        if kind in ("amount",):
            neg = out.filter(pl.col(tgt) < 0)
            for line, value in neg.select(LINE, tgt).head(200).iter_rows():
                problems.append(Problem(label, f"negative amount {value:g}", line=line, column=src))
    return out
