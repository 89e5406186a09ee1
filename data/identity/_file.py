"""Deduplicate any CSV file: whatever its columns are called, name them by kind.

``revstack dedupe INPUT.csv --id ID --name NAME [--field KIND=COL ...] --out OUT.csv``
writes ``record_id,cluster_id,confidence``. Every problem with the input is found and
reported (file, row, column) before anything is written; the output appears whole or
not at all (written beside the target, then renamed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from revstack.data.csvwriter import write_csv
from revstack.data.errors import InputError, Problem
from revstack.data.identity._labels import review_pairs
from revstack.data.identity._prepare import KINDS
from revstack.data.identity._resolve import Resolution, resolve
from revstack.data.identity._score import pairwise_scores
from revstack.data.progress import Progress

__all__ = ["dedupe_file", "read_labels", "read_records", "parse_fields"]


_ENRICH_FIELDS = (
    "domain",
    "company_name",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "city",
)


def parse_fields(
    specs: list[str], *, label: str = "--field", kinds: tuple[str, ...] | None = KINDS
) -> dict[str, str]:
    """'phone=Phone Number' pairs into {kind: column}; unknown kinds are named. With
    ``kinds=None`` the names are enrichment fields instead of matching kinds."""
    allowed = tuple(k for k in kinds if k != "name") if kinds else _ENRICH_FIELDS
    fields: dict[str, str] = {}
    problems = []
    for spec in specs:
        kind, sep, column = spec.partition("=")
        kind = kind.strip().lower()
        if not sep or not column.strip():
            problems.append(Problem(label, f"{spec!r} is not KIND=COLUMN"))
        elif kind not in allowed:
            problems.append(
                Problem(label, f"unknown kind {kind!r}; kinds are {', '.join(allowed)}")
            )
        elif kind in fields:
            problems.append(Problem(label, f"kind {kind!r} given twice"))
        else:
            fields[kind] = column.strip()
    if problems:
        raise InputError(f"bad {label}", problems)
    return fields


def read_records(path: Path, id_col: str, columns: dict[str, str]) -> pl.DataFrame:
    """The file's id and named columns as strings (blank -> null), checked whole."""
    label = str(path)
    if not path.is_file():
        raise InputError(f"{label}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty (0 bytes)")
    wanted = {"id": id_col, **columns}
    try:
        df, header = _read_wanted(path, set(wanted.values()))
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"{label}: not a readable UTF-8 CSV file: {str(exc).splitlines()[0]}"
        ) from exc
    missing = [
        Problem(
            label,
            f"no column {col!r} (given for {kind}); the file has {', '.join(header[:12])}",
            line=1,
            column=col,
        )
        for kind, col in wanted.items()
        if col not in header
    ]
    if missing:
        raise InputError(f"{label}: columns not found", missing)
    if df.is_empty():
        raise InputError(f"{label}: the file has a header but no rows")
    df = df.with_row_index("_row", offset=2).select(
        "_row",
        *[
            pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in dict.fromkeys(wanted.values())
        ],
    )
    problems = [
        Problem(label, "empty id", line=r, column=id_col)
        for r in df.filter(pl.col(id_col).is_null())["_row"].head(50).to_list()
    ]
    repeated = df.filter(pl.col(id_col).is_not_null() & pl.col(id_col).is_duplicated())
    for ident, rows in (
        repeated.group_by(id_col, maintain_order=True).agg(pl.col("_row")).head(50).iter_rows()
    ):
        problems.append(
            Problem(
                label,
                f"id {ident!r} repeats on rows {', '.join(map(str, rows[:5]))}",
                line=rows[1],
                column=id_col,
            )
        )
    if problems:
        raise InputError(f"{label}: ids must be present and unique", problems)
    return df.rename({id_col: "record_id"}) if id_col != "record_id" else df


def _read_wanted(path: Path, wanted: set[str]) -> tuple[pl.DataFrame, list[str]]:
    """The file's columns named in ``wanted`` (as named once stripped of spaces and a
    byte-order mark), as strings, and the names of all its columns: the header is read
    first and only those columns after it (an export's other columns are most of a large
    file, and held whole they were most of the read's memory)."""
    options: dict[str, Any] = {"infer_schema": False, "encoding": "utf8", "quote_char": '"'}
    header = pl.read_csv(path, n_rows=0, **options).columns
    named = {c: c.lstrip("\ufeff").strip() for c in header}
    keep = [c for c in header if named[c] in wanted]
    df = pl.read_csv(path, columns=keep, **options) if keep else pl.DataFrame()
    return df.rename({c: named[c] for c in keep}), [named[c] for c in header]


_SAME = {"same": True, "1": True, "yes": True, "true": True, "y": True, "match": True}
_DIFFERENT = {"different": False, "0": False, "no": False, "false": False, "n": False}


def read_labels(path: Path, ids: set[str]) -> pl.DataFrame:
    """A CSV of marked pairs (left_id, right_id, same) as a frame, checked whole: every id
    must be a record of the input, every mark same or different. A row whose ``same`` is
    empty is a question not answered yet (a ``--ask`` file half filled in) and is left
    out."""
    label = str(path)
    if not path.is_file():
        raise InputError(f"{label}: no such file")
    try:
        df = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{label}: not a readable UTF-8 CSV file") from exc
    df = df.rename({c: c.lstrip("\ufeff").strip().lower() for c in df.columns})
    missing = [c for c in ("left_id", "right_id", "same") if c not in df.columns]
    if missing:
        raise InputError(
            f"{label}: labels need columns left_id,right_id,same; missing {', '.join(missing)}"
        )
    marks = {**_SAME, **_DIFFERENT}
    df = df.filter(pl.col("same").str.strip_chars().fill_null("") != "")
    problems = []
    for row, (left, right, same) in enumerate(
        df.select("left_id", "right_id", "same").iter_rows(), start=2
    ):
        for col, ident in (("left_id", left), ("right_id", right)):
            if ident is None or ident.strip() not in ids:
                problems.append(
                    Problem(label, f"{ident!r} is no record id of the input", line=row, column=col)
                )
        if (same or "").strip().lower() not in marks:
            problems.append(
                Problem(label, f"{same!r} is neither same nor different", line=row, column="same")
            )
        if len(problems) >= 50:
            break
    if problems:
        raise InputError(f"{label}: bad labels", problems)
    return df.select(
        pl.col("left_id").str.strip_chars(),
        pl.col("right_id").str.strip_chars(),
        same=pl.col("same").str.strip_chars().str.to_lowercase().replace_strict(marks),
    )


def dedupe_file(
    path: Path,
    *,
    id_col: str,
    name_col: str,
    fields: dict[str, str],
    out: Path,
    name_type: str = "org",
    threshold: float = 0.5,
    seed: int = 0,
    truth_col: str | None = None,
    pairs_out: Path | None = None,
    move_together: tuple[tuple[str, ...], ...] = (),
    labels: Path | None = None,
    ask: Path | None = None,
    ask_n: int = 20,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Cluster the records of ``path`` and write ``out``; returns a summary (and, with
    ``truth_col``, pairwise precision, recall and F1 against that column).

    ``ask``: also write the ``ask_n`` pairs most worth a person's answer (one of each
    kind of pair, nearest an even chance, none already in ``labels``) as a labels file
    to fill in: left_id, right_id, an empty ``same``, the probability and both records'
    fields. Filled in (or partly), it is the next run's ``labels``."""
    if not 0 < threshold < 1:
        raise InputError(f"--threshold must be between 0 and 1, got {threshold}")
    if name_type not in ("org", "person"):
        raise InputError(f"--name-type must be org or person, got {name_type!r}")
    if ask_n < 1:
        raise InputError(f"--ask-n must be at least 1, got {ask_n}")
    for flag, target in (("--out", out), ("--pairs", pairs_out), ("--ask", ask)):
        if target is None:
            continue
        if target.is_dir():
            raise InputError(f"{flag} {target} is a directory; it takes a file name")
        if target.resolve() == path.resolve() or (
            target.exists() and path.exists() and target.samefile(path)
        ):
            raise InputError(f"{flag} {target} is the input file; write to another file")
    if pairs_out is not None and pairs_out.resolve() == out.resolve():
        raise InputError(f"--pairs {pairs_out} is the --out file; give each its own file")
    if ask is not None and ask.resolve() in {out.resolve(), (pairs_out or out).resolve()}:
        raise InputError(f"--ask {ask} is the --out or --pairs file; give each its own file")
    if ask is not None and labels is not None and ask.resolve() == labels.resolve():
        # the answers are read first and the new questions leave them out, so the file
        # would lose them: a new file each round keeps every answer
        raise InputError(f"--ask {ask} is the --labels file; write the new questions elsewhere")
    columns = {"name": name_col, **fields}
    if truth_col:
        columns["truth"] = truth_col
    records = read_records(path, id_col, columns)
    kinds = {k: c for k, c in columns.items() if k != "truth"}
    unknown = sorted({k for g in move_together for k in g} - set(kinds))
    if unknown:
        raise InputError(f"--move-together names kinds not given as fields: {', '.join(unknown)}")
    marked = read_labels(labels, set(records["record_id"].to_list())) if labels else None
    result: Resolution = resolve(
        records,
        kinds,
        name_type=name_type,
        threshold=threshold,
        seed=seed,
        move_together=move_together,
        labels=marked,
        progress=progress,
    )
    clusters = result.clusters
    write_csv(clusters, out)
    if pairs_out is not None:
        pairs = result.pairs
        # Pairs kept apart (the list's hierarchy, places in names beside it) are shown with
        # their evidence, however strong, and why they were not merged.
        apart = pl.col("apart") if "apart" in pairs.columns else pl.lit(False)
        explained = pairs.filter((pl.col("probability") >= 0.01) | apart).select(
            "left_id",
            "right_id",
            pl.col("probability").round(4),
            "match_weight",
            *[f"g_{c.kind}" for c in result.comparisons],
            *(["apart", "apart_parent", "apart_place"] if "apart" in pairs.columns else []),
        )
        write_csv(explained, pairs_out)
    if ask is not None:
        gcols = [f"g_{c.kind}" for c in result.comparisons]
        asked = review_pairs(result.pairs, gcols, ask_n, marked).select(
            "left_id", "right_id", same=pl.lit(""), probability=pl.col("probability").round(4)
        )
        shown = records.select("record_id", *dict.fromkeys(kinds.values()))
        for side in ("left", "right"):
            asked = asked.join(
                shown.rename({c: f"{side}_{c}" for c in shown.columns if c != "record_id"}),
                left_on=f"{side}_id",
                right_on="record_id",
                how="left",
            )
        write_csv(asked, ask)
    sizes = clusters.group_by("cluster_id").len()
    summary: dict[str, Any] = {
        "input": str(path),
        "output": str(out),
        "records": len(clusters),
        "clusters": len(sizes),
        "records_in_multi_record_clusters": int(sizes.filter(pl.col("len") > 1)["len"].sum()),
        "candidate_pairs": len(result.pairs),
        "kept_apart_by_parent": _apart(result.pairs, "apart_parent"),
        "kept_apart_by_place": _apart(result.pairs, "apart_place"),
        "blocking_rules": result.rules,
        "method": result.method,
        "warnings": result.warnings,
        "labelled_pairs": 0 if marked is None else len(marked),
        "asked": str(ask) if ask else None,
        "seconds": result.timings,
        "parameters": result.parameters(),
    }
    if truth_col:
        truth = records.select("record_id", entity_id=pl.col(truth_col)).drop_nulls()
        summary["scores"] = pairwise_scores(clusters, truth)
    return summary


def _apart(pairs: pl.DataFrame, why: str) -> int:
    """Candidate pairs kept apart for one reason (``apart_parent``: the list's hierarchy;
    ``apart_place``: names in different countries beside it; 0 without a ``parent``
    field)."""
    return int(pairs[why].sum()) if why in pairs.columns else 0
