"""How an export becomes crm.* rows: read, convert, check, then write in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

from revstack.data.clock import now_utc
from revstack.data.errors import InputError, Problem
from revstack.data.ingest._mapping import FORMATS, TARGETS, Mapping, ObjectMap, load_mapping
from revstack.data.ingest._read import LINE, read_object
from revstack.data.progress import Progress, report
from revstack.data.warehouse import Warehouse, frame, registered, scalar

__all__ = ["ingest", "FORMATS", "load_mapping"]

_OTHER_SOURCE = "SELECT {pk} AS id, source FROM {table} WHERE source <> $fmt AND {pk} IN (SELECT id FROM batch_ids)"
_SEEN = "SELECT i.import_id, i.started_at, f.file_name, f.sha256 FROM ops.import_files f JOIN ops.imports i USING (import_id) WHERE f.sha256 IN (SELECT sha FROM hashes)"
_COLUMNS = """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = 'crm' AND table_name = $t AND table_catalog = current_database() ORDER BY ordinal_position
"""
# Columns every row must fill; the writer fills source, import_id and _DEFAULTS itself.
_REQUIRED = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'crm' AND table_name = $t AND table_catalog = current_database()
  AND is_nullable = 'NO' AND column_default IS NULL AND column_name NOT IN ('source', 'import_id')
"""
# Columns the schema fills by default when an export does not say.
_DEFAULTS = {
    "is_active": "TRUE",
    "email_bounced": "FALSE",
    "email_opt_out": "FALSE",
    "do_not_contact": "FALSE",
}
_WRITE_ORDER = [
    "users",
    "accounts",
    "contacts",
    "opportunities",
    "opportunity_history",
    "activities",
]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finish(obj: str, df: pl.DataFrame, spec, fmt: str) -> pl.DataFrame:
    for tgt, rule in spec.derive.items():
        if "slug" in rule:
            df = df.with_columns(
                pl.col(rule["slug"])
                .str.to_lowercase()
                .str.replace_all(r"[^a-z0-9]+", "-")
                .str.strip_chars("-")
                .alias(tgt)
            )
        elif "copy" in rule:
            df = df.with_columns(pl.col(rule["copy"]).alias(tgt))
        elif "format" in rule:
            parts = rule["format"].replace("}", "{").split("{")
            exprs = [
                pl.col(p).fill_null("?") if i % 2 else pl.lit(p) for i, p in enumerate(parts) if p
            ]
            df = df.with_columns(pl.concat_str(exprs).alias(tgt))
    for tgt, value in spec.defaults.items():
        df = df.with_columns(
            pl.col(tgt).fill_null(value) if tgt in df.columns else pl.lit(value).alias(tgt)
        )
    for c in df.columns:
        if c.endswith("_id") and spec.null_ids and df.schema[c] == pl.String:
            df = df.with_columns(
                pl.when(pl.col(c).is_in(spec.null_ids)).then(None).otherwise(pl.col(c)).alias(c)
            )
    if obj == "opportunities":
        df = df.with_columns(
            is_closed=pl.col("stage").is_in(["closed_won", "closed_lost"]).fill_null(False),
            is_won=(pl.col("stage") == "closed_won").fill_null(False),
        )
        if "name" not in df.columns:
            df = df.with_columns(name=pl.col("opportunity_id"))
    if obj == "users" and fmt == "maven":  # managers exist only as names on their agents
        managers = (
            df.select(pl.col("team").alias("user_id"))
            .unique()
            .with_columns(
                name=pl.col("user_id").str.replace_all("-", " ").str.to_titlecase(),
                role=pl.lit("manager"),
                region=pl.lit(None, pl.String),
                team=pl.col("user_id"),
                manager_id=pl.lit(None, pl.String),
                **{LINE: pl.lit(None, pl.UInt32)},
            )
        )
        df = pl.concat(
            [df.with_columns(pl.col(LINE).cast(pl.UInt32)), managers], how="diagonal_relaxed"
        )
    if obj == "users":
        df = df.with_columns(
            is_active=pl.col("is_active").fill_null(True)
            if "is_active" in df.columns
            else pl.lit(True)
        )
    return df


def _check_ids(obj: str, df: pl.DataFrame, label: str, problems: list[Problem]) -> None:
    pk = TARGETS[obj][1]
    for line in df.filter(pl.col(pk).is_null())[LINE].head(50):
        problems.append(Problem(label, "missing id", line=line, column=pk))
    dups = df.filter(pl.col(pk).is_not_null() & pl.col(pk).is_duplicated())
    for line, value in dups.select(LINE, pk).head(200).iter_rows():
        if line is not None:
            problems.append(Problem(label, f"duplicate id {value!r}", line=line, column=pk))


def _check_required(
    df: pl.DataFrame,
    om: ObjectMap,
    pk: str,
    label: str,
    required: list[str],
    problems: list[Problem],
) -> None:
    """Every value the warehouse cannot do without is there (ids are ``_check_ids``'s)."""
    source = {tgt: src for src, tgt in reversed(om.columns.items())}
    if pk == "contact_id" and "email_opt_out" not in df.columns:
        # Consent fails closed: without the column nobody can tell who said no, and the
        # schema's default would read as "may contact" for every person in the file.
        asked = source.get("email_opt_out")
        problems.append(
            Problem(
                label,
                f"the file has no {asked or 'email opt-out'} column, so who may be emailed "
                "cannot be told; export it with that column (or map one to email_opt_out "
                "in a custom mapping)",
                column=asked,
            )
        )
    for col in required:
        if col == pk or col in _DEFAULTS:
            continue
        if col not in df.columns:
            problems.append(
                Problem(label, f"no column of the file is mapped to {col}, which every row needs")
            )
            continue
        for line in df.filter(pl.col(col).is_null())[LINE].head(200):
            problems.append(
                Problem(
                    label,
                    f"{col} is empty; every row needs one",
                    line=line,
                    column=source.get(col, col),
                )
            )


def ingest(
    wh: Warehouse,
    fmt: str,
    directory: Path,
    *,
    mapping: Path | None = None,
    as_of: dt.datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load one export directory; all or nothing."""
    clock = time.perf_counter()
    started = now_utc()
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory")
    spec: Mapping = load_mapping(fmt, mapping)
    problems: list[Problem] = []
    objects: dict[str, ObjectMap] = {str(name): om for name, om in spec.objects.items()}
    frames: dict[str, pl.DataFrame] = {}
    labels: dict[str, str] = {}
    files: list[Path] = []
    for i, (obj, om) in enumerate(spec.objects.items()):
        report(progress, "reading", i, len(spec.objects))
        present = [directory / f for f in om.files if (directory / f).is_file()]
        if not present:
            if om.required:
                problems.append(
                    Problem(
                        str(directory / om.files[0]),
                        f"missing file: a {fmt} export needs {' or '.join(om.files)}",
                    )
                )
            continue
        parts = []
        for path in present:
            files.append(path)
            df = read_object(path, om, problems, path.name)
            if df is not None:
                parts.append(df.with_columns(pl.col(LINE).cast(pl.UInt32)))
        if parts:
            df = _finish(obj, pl.concat(parts, how="diagonal_relaxed"), om, fmt)
            labels[obj] = "+".join(p.name for p in present)
            _check_ids(obj, df, labels[obj], problems)
            frames[obj] = df
    known = {f for om in spec.objects.values() for f in om.files} | set(spec.ignore_files)
    not_loaded = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in known)

    hashes = pl.DataFrame({"sha": [_sha256(p) for p in files], "file": [p.name for p in files]})
    with wh.connect() as con:
        with registered(con, "hashes", hashes):
            seen = frame(con, _SEEN)
        # The same export twice is refused; a newer export may repeat files that did not change.
        if len(seen) and set(seen["sha256"]) >= set(hashes["sha"]):
            for row in seen.iter_rows(named=True):
                problems.append(
                    Problem(
                        str(directory / row["file_name"]),
                        f"already imported (import {row['import_id']} at {row['started_at']:%Y-%m-%d %H:%M}); nothing new to load",
                    )
                )
        for name, df in frames.items():
            table, pk = TARGETS[name]
            required = frame(con, _REQUIRED, {"t": table.split(".")[1]})["column_name"]
            _check_required(df, objects[name], pk, labels[name], list(required), problems)
            with registered(con, "batch_ids", df.select(pl.col(pk).alias("id")).drop_nulls()):
                clash = frame(con, _OTHER_SOURCE.format(pk=pk, table=table), {"fmt": fmt})
            for rid, source in clash.head(50).iter_rows():
                line = cast(int | None, df.filter(pl.col(pk) == rid)[LINE].first())
                problems.append(
                    Problem(
                        labels[name],
                        f"id {rid!r} already belongs to a {source} record",
                        line=line,
                        column=pk,
                    )
                )
    if problems:
        raise InputError(
            f"{fmt} import of {directory} rejected with {len(problems)} problem(s); nothing was written",
            problems,
        )

    data_as_of = as_of or _as_of(frames)
    report(progress, "writing", 0, 1)
    unchanged = sorted(seen["file_name"]) if len(seen) else []
    new_hashes = hashes.filter(~pl.col("sha").is_in(list(seen["sha256"]) if len(seen) else []))
    counts = _write(wh, fmt, directory, frames, new_hashes, data_as_of, started)
    report(progress, "writing", 1, 1)
    return {
        "import_id": counts.pop("_import_id"),
        "format": fmt,
        "as_of": data_as_of,
        "rows": counts,
        "files": [p.name for p in files],
        "unchanged": unchanged,
        "not_loaded": not_loaded,
        "seconds": round(time.perf_counter() - clock, 3),
    }


def _as_of(frames: dict[str, pl.DataFrame]) -> dt.datetime:
    stamps: list[dt.datetime] = []
    dates: list[dt.datetime] = []
    for df in frames.values():
        for c, t in df.schema.items():
            if isinstance(t, pl.Datetime) and df[c].max() is not None:
                stamps.append(cast(dt.datetime, df[c].max()))
            elif t == pl.Date and df[c].max() is not None:
                dates.append(dt.datetime.combine(cast(dt.date, df[c].max()), dt.time()))
    found = stamps or dates
    if not found:
        raise InputError("the export holds no dates to tell its as-of moment; pass --as-of")
    return max(found)


def _write(
    wh: Warehouse,
    fmt: str,
    directory: Path,
    frames: dict[str, pl.DataFrame],
    hashes: pl.DataFrame,
    as_of: dt.datetime,
    started: dt.datetime,
) -> dict[str, Any]:
    try:
        return _write_all(wh, fmt, directory, frames, hashes, as_of, started)
    except (duckdb.DataError, duckdb.ConstraintException) as exc:
        # Every value was checked before this point; should the warehouse still refuse
        # one, the transaction is rolled back and the person gets one line, not a trace.
        raise InputError(
            f"{fmt} import of {directory} rejected by the warehouse; nothing was written: "
            f"{str(exc).splitlines()[0]}"
        ) from exc


def _write_all(
    wh: Warehouse,
    fmt: str,
    directory: Path,
    frames: dict[str, pl.DataFrame],
    hashes: pl.DataFrame,
    as_of: dt.datetime,
    started: dt.datetime,
) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    with wh.transaction() as con:
        import_id = int(scalar(con, "SELECT nextval('ops.import_seq')"))
        for obj in _WRITE_ORDER:
            if obj not in frames:
                continue
            table, _ = TARGETS[obj]
            cols = frame(con, _COLUMNS, {"t": table.split(".")[1]})
            df = frames[obj]
            select = []
            for col, dtype in cols.iter_rows():
                if col == "source":
                    select.append("$fmt")
                elif col == "import_id":
                    select.append("$import_id")
                elif col in df.columns:
                    cast = f'CAST("{col}" AS {dtype})'
                    select.append(
                        f"coalesce({cast}, {_DEFAULTS[col]})" if col in _DEFAULTS else cast
                    )
                else:
                    select.append(_DEFAULTS.get(col, f"NULL::{dtype}"))
            with registered(con, "ingest_batch", df.drop(LINE)):
                con.execute(
                    f"INSERT OR REPLACE INTO {table} SELECT {', '.join(select)} FROM ingest_batch",
                    {"fmt": fmt, "import_id": import_id},
                )
            counts[table] = len(df)
        now = now_utc()
        con.execute(
            "INSERT INTO ops.imports VALUES ($id, $fmt, $loc, $as_of, $started, $now, $counts)",
            {
                "id": import_id,
                "fmt": fmt,
                "loc": str(directory),
                "as_of": as_of,
                "started": started,
                "now": now,
                "counts": json.dumps(counts),
            },
        )
        with registered(con, "hashes", hashes):
            con.execute(
                "INSERT INTO ops.import_files SELECT sha, $id, file, 0 FROM hashes",
                {"id": import_id},
            )
    counts["_import_id"] = import_id
    return counts
