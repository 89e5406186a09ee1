"""A digest of what a warehouse holds, for checking that two runs wrote the same.

Per table of crm, foundation and ops: the row count and a hash of the rows (in any
order) over the columns that do not hold a moment of the run itself (when a row was
written, the audit chain's hashes built on it, a run's timings). Two runs of main's code
on copies of one small company differ beyond those, so these are read as equal too:
floating-point numbers to 9 significant digits (EM estimates and forecast quantiles
moved in the 16th), lists as sets (the forecast model's stage list comes in any order),
a briefing's text without its "generated" moment, and the briefing's inputs digest
(it differs between two runs of the same code). ``--against FILE`` prints the tables
that differ.

    python bench/state_digest.py A.duckdb --against B.duckdb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

# Columns whose values are the moment a row was written (or built on it), not what an
# agent decided.
_VOLATILE = {
    "logged_at",
    "created_at",
    "decided_at",
    "started_at",
    "finished_at",
    "generated_at",
    "acquired_at",
    "released_at",
    "fitted_at",
    "fit_at",
    "blocked_at",
    "recorded_at",
    "updated_at",
    "taken_at",
    "measured_at",
    "scored_at",
    "applied_at",
    "changed_at",
    "added_at",
    "hash",
    "prev_hash",
    "os_user",
    "metadata",
    "inputs",
}
_SCHEMAS = ("crm", "foundation", "ops")


def digest(path: Path) -> dict[str, tuple[int, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = con.sql(
            "SELECT table_schema, table_name, list(column_name ORDER BY ordinal_position), "
            "list(data_type ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_schema IN ('crm', 'foundation', 'ops') "
            "AND table_catalog = current_database() GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        out = {}
        for schema, table, names, types in cols:
            # the CRM's own moments are data, but for the moment the engine wrote a record
            # and an event's moment when the engine made it
            volatile = {"updated_at"} if schema == "crm" else _VOLATILE
            if table == "events":
                volatile = volatile | {"occurred_at"}
            keep = [(c, t) for c, t in zip(names, types, strict=True) if c not in volatile]
            quoted = ", ".join(_value(c, t) for c, t in keep)
            [(n, h)] = con.sql(
                f"SELECT count(*), coalesce(sum(hash(r))::VARCHAR, '0') FROM "
                f'(SELECT ({quoted}) AS r FROM "{schema}"."{table}")'
            ).fetchall()
            out[f"{schema}.{table}"] = (int(n), str(h))
        return out
    finally:
        con.close()


def _value(col: str, kind: str) -> str:
    q = f'"{col}"'
    if kind in ("DOUBLE", "FLOAT"):
        return f"format('{{:.9g}}', {q})"
    if kind == "DOUBLE[]":
        return f"list_sort(list_transform({q}, lambda v: format('{{:.9g}}', v)))"
    if kind == "DOUBLE[][]":
        return f"list_transform({q}, lambda l: list_transform(l, lambda v: format('{{:.9g}}', v)))"
    if kind.endswith("[]"):
        return f"list_sort({q})"
    if col in ("markdown", "html"):
        return f"regexp_replace({q}, 'generated [0-9-]+ [0-9:]+ UTC', '')"
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--against", type=Path)
    args = ap.parse_args()
    a = digest(args.db)
    if args.against is None:
        for table, (n, h) in a.items():
            print(f"{table:<40} {n:>12,} {h}")
        return
    b = digest(args.against)
    differ = [t for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t)]
    for t in differ:
        print(f"differs: {t}: {a.get(t)} != {b.get(t)}")
    rows = sum(n for n, _ in a.values())
    print(f"{len(a)} tables, {rows:,} rows; {len(differ)} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
