"""The real-browser setup shared by the browser test and the screenshot script:
`streamlit run` headless on a free port, Debian's chromium driven by playwright."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def nav_pages() -> list[tuple[str, str, str]]:
    """(url_path, title, file stem) of every page in the navigation's order, from app.py;
    the default page's path is "" (Streamlit serves it at the root, not its url_path)."""
    text = APP.read_text()
    rx = r'st\.Page\("app_pages/(\w+)\.py", title="([^"]+)", url_path="(\w+)"(, default=True)?'
    return [("" if m[4] else m[3], m[2], m[1]) for m in re.finditer(rx, text)]


# The app scrolls inside its main block, so a "full page" screenshot of the window
# shows only the first screen: grow the window to the content first.
_CONTENT_HEIGHT = """() => Math.max(
    (document.querySelector('[data-testid="stMain"]') || document.body).scrollHeight,
    (document.querySelector('[data-testid="stSidebarContent"]') || document.body).scrollHeight)"""


def screenshot(page, path: Path, *, width: int = 1400, height: int = 1000) -> None:
    """The whole page, however long, as a PNG."""
    tall = int(page.evaluate(_CONTENT_HEIGHT))
    page.set_viewport_size({"width": width, "height": min(max(tall + 60, height), 16_000)})
    page.wait_for_timeout(2000)  # charts and widgets re-layout to the new size
    settle(page)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": height})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    db: Path, *, timeout: float = 60, port: int | None = None, cwd: Path | None = None
) -> Iterator[str]:
    """The dashboard on ``db``, until the block ends; yields its URL. ``cwd``: where it
    runs, so a ``.streamlit/secrets.toml`` there is the one it reads."""
    port = port or free_port()
    env = {**os.environ, "REVSTACK_DB": str(db)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(
                        f"streamlit did not become healthy within {timeout:.0f} s"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def settle(page, *, timeout: float = 30_000) -> None:
    """Wait until the script run is over and the charts have drawn."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout)
    # widgets load their code lazily and stand as grey skeletons until then
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout
    )
    page.wait_for_timeout(800)


def open_page(page, url: str, path: str, title: str) -> None:
    page.goto(f"{url}/{path}")
    page.locator("h1", has_text=title).first.wait_for(timeout=30_000)
    settle(page)


def sign_in(page, name: str, role: str) -> None:
    """Pick ``name`` in the sidebar's identity box (retried: it can miss a first gesture)."""
    who = page.get_by_role("combobox", name="Signed in as")
    for _attempt in range(3):
        who.click()
        page.wait_for_timeout(500)
        page.get_by_role("option", name=name, exact=True).click()
        page.wait_for_timeout(800)
        page.locator("h1").first.click()  # it commits its value when it loses focus
        page.wait_for_timeout(1500)
        if page.get_by_text(f"role: {role}").count():
            break
    page.get_by_text(f"role: {role}").wait_for(timeout=15_000)
