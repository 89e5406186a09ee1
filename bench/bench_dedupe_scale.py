"""`revstack dedupe` beside Splink on N contacts of a generated company, each in its own
process: wall time, CPU, peak resident memory of the process tree, and pairwise
precision / recall / F1 against the generator's truth.

The contacts are written as a CRM export would hold them (Salesforce's Contact columns,
the compound Name and the account's website beside them), so `revstack dedupe` reads a
file as a user gives it. N contacts are a seeded sample of whole true people (every
record of a sampled person is kept, so the sample holds its duplicates as the whole list
does); N = 0 takes every contact. Splink (`--splink`, `pip install -e '.[bench]'`) gets
the same file, our prepared columns and our blocking rules, as bench/bench_dedupe.py
sets it up. A watchdog stops a run whose tree passes ``--limit-gb``.

    python bench/bench_dedupe_scale.py --db COMPANY.duckdb [--contacts 1000000] [--seed 0]
        [--splink] [--no-ours] [--limit-gb 16] [--work DIR]

The company is opened read-only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PAGE = os.sysconf("SC_PAGE_SIZE")
# The columns a contacts export has (docs/ingest.md, the Salesforce mapping), the
# compound Name and, from a report joining the account, its website.
_EXPORT = """
WITH people AS (
    SELECT true_entity_id, count(*) AS n,
           hash(true_entity_id || $seed) AS h
    FROM truth.entities WHERE object_type = 'contacts' GROUP BY true_entity_id
), chosen AS (
    SELECT true_entity_id FROM (
        SELECT true_entity_id, sum(n) OVER (ORDER BY h, true_entity_id) - n AS before
        FROM people
    ) WHERE $n = 0 OR before < $n
)
SELECT c.contact_id AS "Id", c.account_id AS "AccountId", c.first_name AS "FirstName",
       c.last_name AS "LastName", concat_ws(' ', c.first_name, c.last_name) AS "Name",
       c.email AS "Email", c.phone AS "Phone", c.title AS "Title",
       c.department AS "Department", c.city AS "MailingCity",
       c.country AS "MailingCountry", c.owner_id AS "OwnerId",
       c.created_at AS "CreatedDate", c.updated_at AS "LastModifiedDate",
       a.website AS "Account Website"
FROM crm.contacts c
JOIN truth.entities t ON t.object_type = 'contacts' AND t.record_id = c.contact_id
SEMI JOIN chosen USING (true_entity_id)
LEFT JOIN crm.accounts a USING (account_id)
ORDER BY c.contact_id
"""
_TRUTH = """
SELECT record_id, true_entity_id AS entity_id FROM truth.entities
WHERE object_type = 'contacts' AND record_id IN (SELECT "Id" FROM read_csv($csv, all_varchar = true))
"""
FIELDS = ["--field", "email=Email", "--field", "phone=Phone", "--field", "domain=Account Website"]
SPLINK_FIELDS = {"name": "Name", "email": "Email", "phone": "Phone", "domain": "Account Website"}


def export(db: str, n: int, seed: int, folder: Path) -> tuple[Path, Path, float]:
    """The sample as a CSV export and its truth as Parquet; the seconds it took."""
    import duckdb

    t = time.perf_counter()
    # Kept in --work for the next run on the same company, size and seed.
    tag = f"{Path(db).stem}-{n}-{seed}"
    csv, truth = folder / f"contacts-{tag}.csv", folder / f"truth-{tag}.parquet"
    if not (csv.exists() and truth.exists()):
        con = duckdb.connect(db, read_only=True, config={"memory_limit": "4GB"})
        try:
            params = {"n": n, "seed": str(seed)}
            con.execute(f"COPY ({_EXPORT}) TO '{csv}.part' (HEADER, DELIMITER ',')", params)
            os.replace(f"{csv}.part", csv)
            con.execute(f"COPY ({_TRUTH}) TO '{truth}' (FORMAT parquet)", {"csv": str(csv)})
        finally:
            con.close()
    return csv, truth, time.perf_counter() - t


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


def measured(cmd: list[str], limit_gb: float, stdout: Path | None = None) -> dict:
    """Run ``cmd`` (its output to ``stdout`` when given); its wall time, CPU (user +
    system of the tree), peak RSS and whether the watchdog stopped it."""
    t = time.perf_counter()
    # A child started by fork and exec inherits this process's high-water mark, so
    # wait4's ru_maxrss is the child's own only where it is above that.
    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(stdout or os.devnull, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out if stdout else None)
    peak, stopped, done = [0], [False], threading.Event()

    def watch() -> None:
        # Not proc.poll(): it would reap the process before wait4 could count its CPU.
        while not done.is_set():
            rss = _tree_rss(proc.pid)
            peak[0] = max(peak[0], rss)
            if rss > limit_gb * 1e9 and not done.is_set():
                stopped[0] = True
                proc.kill()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    return {
        "wall": time.perf_counter() - t,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_gb": max(peak[0], usage.ru_maxrss * 1024 if usage.ru_maxrss > inherited else 0) / 1e9,
        "rc": proc.returncode,
        "stopped": stopped[0],
    }


def _scores(clusters_csv: Path, truth: Path) -> dict:
    import polars as pl

    from revstack.data.identity import pairwise_scores

    clusters = pl.read_csv(clusters_csv, infer_schema=False, columns=["record_id", "cluster_id"])
    return pairwise_scores(clusters, pl.read_parquet(truth))


def splink_child(csv: str, out: str) -> None:
    """Splink on the export: our prepared columns and blocking rules (bench_dedupe)."""
    import polars as pl

    from bench.bench_dedupe import _splink

    columns = ["Id", *SPLINK_FIELDS.values()]
    records = pl.read_csv(csv, infer_schema=False, columns=columns).rename({"Id": "record_id"})
    _splink(records, SPLINK_FIELDS, "person").write_csv(out)


def _line(name: str, run: dict, scores: dict | None) -> str:
    what = "STOPPED at the limit" if run["stopped"] else f"exit {run['rc']}"
    score = (
        f"P {scores['precision']:.4f}  R {scores['recall']:.4f}  F1 {scores['f1']:.4f}"
        if scores
        else "no output"
    )
    return (
        f"  {name:<9} wall {run['wall']:7.1f} s  CPU {run['cpu']:7.1f} s  "
        f"peak {run['peak_gb']:5.2f} GB  {score}  ({what})"
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a generated company (opened read-only)")
    ap.add_argument("--contacts", type=int, default=0, help="how many (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splink", action="store_true", help="run Splink beside ours")
    ap.add_argument("--no-ours", action="store_true")
    ap.add_argument("--limit-gb", type=float, default=16.0)
    ap.add_argument("--work", help="where the export and outputs go (default: a temp dir)")
    ap.add_argument("--splink-child", nargs=2, metavar=("CSV", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.splink_child:
        splink_child(*args.splink_child)
        return
    if not args.db:
        ap.error("give --db COMPANY")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.work or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        csv, truth, took = export(args.db, args.contacts, args.seed, folder)
        import polars as pl

        rows = pl.scan_parquet(truth).select(pl.len()).collect().item()
        print(
            f"{rows:,} contacts (asked {args.contacts or 'all'}, seed {args.seed}), "
            f"export {took:.0f} s, load average {_load()}",
            flush=True,
        )
        if not args.no_ours:
            out, summary = folder / "ours.csv", folder / "ours.json"
            cmd = [
                str(Path(sys.executable).parent / "revstack"),
                "dedupe",
                str(csv),
                "--id",
                "Id",
                "--name",
                "Name",
                "--name-type",
                "person",
                *FIELDS,
                "--out",
                str(out),
                "--json",
            ]
            out.unlink(missing_ok=True)  # a run that writes nothing is not scored
            run = measured(cmd, args.limit_gb, stdout=summary)
            ok = run["rc"] == 0 and out.exists()
            print(_line("revstack", run, _scores(out, truth) if ok else None), flush=True)
            if ok:
                steps = json.loads(summary.read_text()).get("seconds", {})
                print(f"            steps {steps}, load average {_load()}", flush=True)
        if args.splink:
            out = folder / "splink.csv"
            out.unlink(missing_ok=True)
            run = measured(
                [sys.executable, __file__, "--splink-child", str(csv), str(out)], args.limit_gb
            )
            ok = run["rc"] == 0 and out.exists()
            print(_line("splink", run, _scores(out, truth) if ok else None), flush=True)
            print(f"            load average {_load()}", flush=True)


if __name__ == "__main__":
    main()
