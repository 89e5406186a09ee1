"""Dashboard page times on a mid company, printed (never asserted).

For every page: the first render in a fresh session (cold: the page's reads not
cached yet; the session's first run, Stack health, has already drawn), then REPEAT reruns of the same page (warm: what a person waits for
after clicking), median and max; one rerun right after a reviewer's decision (the
warehouse changed, so every cached read is recomputed), and the page opened in a new
session after that decision; and every metrics / engine read the page made on its cold
render, with its own time. Run once with the page
cache off (REVSTACK_DASH_CACHE=0) and once on. The warehouse is prepared if missing: generate
mid seed 1, audit, three people, `revstack run`, and a few hundred decisions so the
trust ramp and override figures have something to show.

    python bench/bench_pages.py [--db var/mid.duckdb] [--repeat 7] [--page agents] [--cache both]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402, TID251 - drives the dashboard like its tests

from revstack.data.warehouse import Warehouse, release_all  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")

# Modules whose public functions the pages call for their data; each is timed.
TIMED_MODULES = (
    "revstack.metrics.engine",
    "revstack.metrics.health",
    "revstack.metrics.trust",
    "revstack.metrics.thresholds",
    "revstack.metrics.agents",
    "revstack.metrics.weekly_review",
    "revstack.metrics.reviewers",
    "revstack.metrics.calibration",
    "revstack.metrics.activity",
    "revstack.metrics.effort",
    "revstack.metrics.drilldown",
    "revstack.agents.engine._queries",
    "revstack.agents.engine._people",
    "revstack.agents.registry",
    "revstack.agents.engine",
    "revstack.data.snapshots",
    "revstack.agents.engine._audit",
)

CALLS: dict[str, list[float]] = defaultdict(list)


def _timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CALLS[name].append(time.perf_counter() - t)

    return wrapper


def instrument() -> None:
    """Wrap every public function of the timed modules (pages import them per run)."""
    for mod_name in TIMED_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        for attr in getattr(mod, "__all__", []):
            fn = getattr(mod, attr, None)
            if (
                callable(fn)
                and not isinstance(fn, type)
                and getattr(fn, "__module__", "").startswith(
                    ("revstack.metrics", "revstack.agents", "revstack.data")
                )
            ):
                setattr(mod, attr, _timed(f"{mod_name.split('.')[-1]}.{attr}", fn))


def prepare(path: Path) -> None:
    """Mid seed 1, audited, with people, one `revstack run` and some decisions."""
    from revstack.agents.engine import add_person, decide, list_proposals, run_agents
    from revstack.agents.registry import specs
    from revstack.contracts import load_definitions
    from revstack.data.generator import generate
    from revstack.metrics.quality import audit

    wh = Warehouse(path)
    print(f"preparing {path} (mid, seed 1) ...", flush=True)
    generate(wh, scale="mid", seed=1)
    audit(wh, load_definitions())
    add_person(wh, "ana", "admin", by="ana")
    add_person(wh, "rev", "reviewer", by="ana")
    add_person(wh, "vic", "viewer", by="ana")
    run_agents(wh, specs(), definitions=load_definitions())
    decide_some(wh, list_proposals, decide)
    release_all()


def decide_some(wh: Warehouse, list_proposals, decide) -> None:
    pending = wh.read(list_proposals, status="pending", limit=300)
    for i, pid in enumerate(pending["proposal_id"]):
        if i % 6 == 5:
            decide(wh, pid, approve=False, by="rev", note="provider is out of date")
        else:
            decide(wh, pid, approve=True, by="rev")


def page_names() -> list[str]:
    return sorted(
        p.stem for p in (ROOT / "dashboard" / "app_pages").glob("*.py") if p.stem != "__init__"
    )


def _decide_one(wh: Warehouse) -> None:
    from revstack.agents.engine import decide, list_proposals

    # A quarter's simulation leaves no card pending; a tier-3 task done changes the file too.
    for status in ("pending", "task"):
        found = wh.read(list_proposals, status=status, limit=1)["proposal_id"].to_list()
        if found:
            decide(wh, found[0], approve=True, by="rev", note="bench")
            return
    raise SystemExit("no pending card or open task to decide")


def bench_page(
    page: str, repeat: int, wh: Warehouse
) -> tuple[float, list[float], float, dict[str, list[float]]]:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="identity").set_value("rev").run()
    CALLS.clear()
    t = time.perf_counter()
    at.switch_page(f"app_pages/{page}.py").run()
    cold = time.perf_counter() - t
    if at.exception:
        raise SystemExit(f"{page}: {at.exception[0].message}")
    calls = {k: list(v) for k, v in CALLS.items()}
    warm = []
    for _ in range(repeat):
        t = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t)
    _decide_one(wh)
    t = time.perf_counter()
    at.run()
    changed = time.perf_counter() - t
    # Another person opening the page after that decision: a new session, in a server
    # that has drawn pages before (what it keeps across decisions is kept).
    other = AppTest.from_file(APP, default_timeout=300)
    other.run()
    other.sidebar.selectbox(key="identity").set_value("rev").run()
    t = time.perf_counter()
    other.switch_page(f"app_pages/{page}.py").run()
    calls["opened in a new session after the decision (s)"] = [time.perf_counter() - t]
    if page == "agents":  # each agent's measures are their own reads: time every choice
        for name in at.selectbox(key="agents_page_agent").options:
            t = time.perf_counter()
            at.selectbox(key="agents_page_agent").set_value(name).run()
            calls[f"agents page, {name} chosen (s)"] = [time.perf_counter() - t]
    return cold, warm, changed, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(ROOT / "var" / "mid.duckdb"))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--page", action="append", help="only these pages (file stem)")
    ap.add_argument("--cache", choices=("off", "on", "both"), default="both")
    args = ap.parse_args()
    path = Path(args.db).resolve()
    if not path.exists():
        prepare(path)
    os.environ["REVSTACK_DB"] = str(path)
    # AppTest outside a server: Streamlit warns once per run that there is no session.
    import streamlit.logger  # noqa: TID251 - as above

    streamlit.logger.set_log_level("error")
    instrument()
    wh = Warehouse(path)
    print(
        f"{path.name}; {os.cpu_count()} cores (shared with other work unless the machine is quiet); "
        f"{args.repeat} warm reruns per page"
    )
    modes = {"off": ["0"], "on": ["1"], "both": ["0", "1"]}[args.cache]
    for mode in modes:
        os.environ["REVSTACK_DASH_CACHE"] = mode
        print(f"\npage cache {'on' if mode == '1' else 'off'}")
        print(
            f"{'page':<15}{'cold s':>7}{'warm med s':>11}{'warm max s':>11}{'changed s':>10}   "
            "metrics calls on the cold render (s)"
        )
        for page in args.page or page_names():
            cold, warm, changed, calls = bench_page(page, args.repeat, wh)
            detail = ", ".join(
                f"{k} {sum(v):.3f}" + (f" x{len(v)}" if len(v) > 1 else "")
                for k, v in sorted(calls.items(), key=lambda kv: -sum(kv[1]))
            )
            print(
                f"{page:<15}{cold:>7.2f}{statistics.median(warm):>11.3f}{max(warm):>11.3f}"
                f"{changed:>10.3f}   {detail}",
                flush=True,
            )


if __name__ == "__main__":
    main()
