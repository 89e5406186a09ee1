"""One real browser: `streamlit run` headless, Debian's chromium through playwright.

A reviewer signs in, approves a proposal on the Approvals page, and the audit log
shows it. Screenshots of each page land in docs/screenshots/. Skips (saying why)
where chromium is not installed; .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from agents.engine._run import run_agents
from data.warehouse import Warehouse, release_all
from tests.agents.test_runs import FillIndustry, _spec
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(run_wh: Warehouse):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
        )
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    release_all()
    port = _free_port()
    env = {**os.environ, "REVSTACK_DB": str(run_wh.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy within 60 s")
    yield url, run_wh
    proc.terminate()
    proc.wait(10)


def test_a_reviewer_approves_in_a_real_browser(server) -> None:
    from playwright.sync_api import sync_playwright

    url, wh = server
    with wh.connect() as con:
        [(pid, record)] = con.execute(
            "SELECT proposal_id, record_id FROM ops.proposals WHERE status = 'pending' "
            "AND action_type = 'fill_employees' AND run_id <> 'run-t' ORDER BY 1 LIMIT 1"
        ).fetchall()
    release_all()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_text("Stack health").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # let the first run finish drawing before interacting
        page.screenshot(path=str(SHOTS / "stack_health.png"), full_page=True)
        # sign in as the reviewer
        who = page.get_by_role("combobox", name="Signed in as")
        for _attempt in range(
            3
        ):  # the combobox sometimes ignores the first gesture while rendering
            who.click()
            page.wait_for_timeout(500)
            page.get_by_role("option", name="rev", exact=True).click()
            page.wait_for_timeout(800)
            page.locator("h1").first.click()  # it commits its value when it loses focus
            page.wait_for_timeout(1500)
            if page.get_by_text("role: reviewer").count():
                break
        page.get_by_text("role: reviewer").wait_for(timeout=15_000)
        page.get_by_role("link", name="Approvals").click()  # same session, same identity
        page.get_by_text("Waiting for a reviewer").wait_for(timeout=30_000)
        page.locator(f".st-key-approve_{pid} button").wait_for()
        page.screenshot(path=str(SHOTS / "approvals.png"), full_page=True)
        page.get_by_text(f"accounts {record} · employees").first.wait_for()
        page.locator(f".st-key-approve_{pid} button").click()  # keyed widgets carry st-key-<key>
        deadline = time.time() + 30
        status = "pending"
        while time.time() < deadline and status == "pending":
            time.sleep(0.5)
            with wh.connect() as con:
                status = con.execute(
                    "SELECT status FROM ops.proposals WHERE proposal_id = $p", {"p": pid}
                ).fetchall()[0][0]
            release_all()
        page.get_by_role("link", name="Audit & rollback").click()
        page.get_by_text("Hash chain intact").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)
        browser.close()
    assert status == "approved"
    with wh.connect() as con:
        logged = con.execute(
            "SELECT actor, action FROM ops.audit_log WHERE proposal_id = $p ORDER BY seq",
            {"p": pid},
        ).fetchall()
    assert ("rev", "approve") in logged and ("filler", "apply") in logged
