"""Screenshots of every dashboard page for the docs, with the browser test's setup.

    python tests/dashboard/screenshots.py [--db var/mid.duckdb] [--out docs/screenshots]
        [--as NAME] [--width 1400]

Starts `streamlit run` headless on the warehouse, opens each page of the navigation
by its link in Debian's chromium, waits for the run to finish and the charts to draw,
and saves a full-page PNG named after the page's file (stack_health.png). A page showing a Python exception stops the script (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.dashboard._browser import (  # noqa: E402
    launch,
    nav_pages,
    open_page,
    screenshot,
    serve,
    settle,
    sign_in,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(ROOT / "var" / "mid.duckdb"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--as", dest="who", help="sign in as this person (with --role)")
    ap.add_argument("--role", default="reviewer")
    ap.add_argument("--width", type=int, default=1400)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with serve(Path(args.db).resolve()) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": args.width, "height": 1000})
        open_page(page, url, "", "Stack health")
        if args.who:
            sign_in(page, args.who, args.role)
        for path, title, stem in nav_pages():
            if path:  # same session: sidebar links keep identity and filters
                page.get_by_role("link", name=title, exact=True).click()
                page.locator("h1", has_text=title).first.wait_for(timeout=30_000)
            settle(page)
            if page.locator('[data-testid="stException"]').count():
                print(f"{title}: the page shows an exception", file=sys.stderr)
                return 1
            target = out / f"{stem}.png"
            screenshot(page, target, width=args.width)
            print(target)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
