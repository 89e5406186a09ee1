"""What an incremental identity resolution gives against a full one, week by week.

The hygiene agent's weekly run resolves incrementally from the resolution it stored
(docs/hygiene.md, Weekly runs): the stored model, only the records new or changed
since blocked and compared, only the components they touch grouped again. This bench
measures what that changes, on the agent's own records, fields and settings, without
the engine:

- ``--scale small --seed 3 --weeks 6``: a company generated and cut back (``Replay``,
  as `revstack simulate` does); a full resolution at the start is stored, then each
  week's CRM changes are loaded and the week is resolved twice: incrementally from the
  last week's stored resolution (never estimating again: the most a schedule lets
  the model age) and in full. Per week and object type: records new / changed,
  seconds, candidate pairs, how many records sit in another cluster, clusters
  (of two or more) found by one and not the other, records to merge, and pairwise
  precision / recall / F1 of each against truth (truth.entities).
- ``--weekly FILE``: a warehouse whose hygiene run stored a resolution and whose next
  week's changes are loaded (bench_weekly_agents.py --from-start ... --keep FILE); the
  week resolved incrementally from the stored resolution and in full, compared alike.

    python bench/bench_identity_weekly.py --scale small --seed 3 --weeks 6
    python bench/bench_identity_weekly.py --weekly var/weekly.duckdb
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revstack.agents.crm_hygiene import _stored  # noqa: E402
from revstack.agents.crm_hygiene._merge import (  # noqa: E402
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    KINDS,
    _records,
)
from revstack.agents.engine import Context  # noqa: E402
from revstack.agents.registry import specs  # noqa: E402
from revstack.data.generator import DEFAULT_AS_OF, Replay  # noqa: E402
from revstack.data.identity import (  # noqa: E402
    Resolution,
    StoredResolution,
    changes,
    pairwise_scores,
    resolve,
    resolve_incremental,
)
from revstack.data.inventory import data_as_of  # noqa: E402
from revstack.data.warehouse import Warehouse, frame, release_all  # noqa: E402


def _all_records(ctx: Context) -> dict[str, pl.DataFrame]:
    return {kind: _records(ctx, kind) for kind in KINDS}


def _settings(kind: str) -> dict:
    return {
        "name_type": "org" if kind == "accounts" else "person",
        "threshold": 0.5,
        "move_together": (("address", "zip", "phone"),) if kind == "accounts" else (),
        "twins": False,  # as the hygiene agent resolves them
    }


def _fields(kind: str) -> dict[str, str]:
    return ACCOUNT_FIELDS if kind == "accounts" else CONTACT_FIELDS


def _context(wh: Warehouse) -> Context:
    spec = next(s for s in specs() if s.name == "crm_hygiene")
    with wh.connect() as con:
        as_of = data_as_of(con)
    release_all()
    assert as_of is not None
    return Context(wh, agent=spec.name, reads=spec.reads, as_of=as_of, params=spec.params)


def _truth(wh: Warehouse) -> dict[str, pl.DataFrame]:
    with wh.connect() as con:
        t = frame(
            con,
            "SELECT object_type, record_id, true_entity_id AS entity_id FROM truth.entities",
        )
    release_all()
    return {k: t.filter(pl.col("object_type") == k) for k in ("accounts", "contacts")}


def _multi(clusters: pl.DataFrame) -> set[tuple[str, ...]]:
    groups = clusters.group_by("cluster_id").agg(pl.col("record_id").sort())
    return {tuple(g) for g in groups["record_id"].to_list() if len(g) > 1}


def _compare(inc: Resolution, full: Resolution, truth: pl.DataFrame) -> dict:
    a, b = _multi(inc.clusters), _multi(full.clusters)
    # a record whose cluster (as a set of records) differs between the two
    member = {r for g in a ^ b for r in g}
    p_inc = pairwise_scores(inc.clusters, truth)
    p_full = pairwise_scores(full.clusters, truth)
    return {
        "records_elsewhere": len(member),
        "clusters_only_incremental": len(a - b),
        "clusters_only_full": len(b - a),
        "to_merge_incremental": sum(len(g) - 1 for g in a),
        "to_merge_full": sum(len(g) - 1 for g in b),
        "pairs_incremental": len(inc.pairs),
        "pairs_full": len(full.pairs),
        "incremental": (p_inc["precision"], p_inc["recall"], p_inc["f1"]),
        "full": (p_full["precision"], p_full["recall"], p_full["f1"]),
    }


def _week(
    label: str,
    records: dict[str, pl.DataFrame],
    stored: dict[str, StoredResolution],
    truth: dict[str, pl.DataFrame],
) -> dict[str, StoredResolution]:
    out = {}
    for kind, recs in records.items():
        moved = changes(recs, _fields(kind), stored[kind])
        clock = time.perf_counter()
        inc = resolve_incremental(recs, _fields(kind), stored[kind], **_settings(kind))
        t_inc = time.perf_counter() - clock
        clock = time.perf_counter()
        full = resolve(recs, _fields(kind), **_settings(kind))
        t_full = time.perf_counter() - clock
        c = _compare(inc, full, truth[kind])
        print(
            f"{label} {kind:<8} {len(recs):>7,} records, new {moved['new']:>5,} changed "
            f"{moved['changed']:>4,} removed {moved['removed']:>3,} | incremental "
            f"{t_inc:5.1f} s, full {t_full:5.1f} s | pairs {c['pairs_incremental']:,} / "
            f"{c['pairs_full']:,} | records in another cluster {c['records_elsewhere']}, "
            f"clusters only inc/full {c['clusters_only_incremental']}/"
            f"{c['clusters_only_full']}, to merge {c['to_merge_incremental']:,} / "
            f"{c['to_merge_full']:,} | P/R/F1 inc {c['incremental']} full {c['full']}",
            flush=True,
        )
        assert not inc.incremental.get("full"), inc.incremental
        out[kind] = inc.stored()
    return out


def _replayed(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-identity-", dir=ROOT / "var") as tmp:
        wh = Warehouse(Path(tmp) / "replay.duckdb")
        replay = Replay.start(
            wh, scale=args.scale, seed=args.seed, as_of=args.as_of, weeks=args.weeks
        )
        release_all()
        truth = _truth(wh)
        records = _all_records(_context(wh))
        stored = {k: resolve(r, _fields(k), **_settings(k)).stored() for k, r in records.items()}
        print(f"start {replay.at:%Y-%m-%d}: a full resolution stored", flush=True)
        for week in range(1, args.weeks + 1):
            at = replay.at + dt.timedelta(weeks=1)
            replay.advance(at)
            release_all()
            stored = _week(
                f"week {week} ({at:%Y-%m-%d})", _all_records(_context(wh)), stored, truth
            )
        replay.close()


def _weekly(path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-identity-", dir=ROOT / "var") as tmp:
        db = Path(tmp) / "weekly.duckdb"
        shutil.copy(path, db)
        wh = Warehouse(db)
        ctx = _context(wh)
        previous, why = _stored.read(ctx)
        if why:
            raise SystemExit(f"{path}: {why}")
        stored = {k: s for k, (s, _) in previous.items()}
        _week(f"{ctx.as_of:%Y-%m-%d}", _all_records(ctx), stored, _truth(wh))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small", choices=["small", "mid"])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF)
    ap.add_argument("--weeks", type=int, default=6)
    ap.add_argument("--weekly", type=Path, help="a weekly state with a stored resolution")
    args = ap.parse_args()
    print(
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    if args.weekly:
        _weekly(args.weekly)
    else:
        _replayed(args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS {peak:.2f} GB, load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
