"""One real browser: `streamlit run` headless, Debian's chromium through playwright.

On the small company after a real `revstack run`, a reviewer signs in, approves the
first proposal on the Approvals page, and the audit log and the CRM show it. The
server's first request is a deep link, which must go through the entry point (the
pages live in app_pages/, so Streamlit's older pages/-folder mode never starts). Skips (saying why)
where chromium is not installed; .ci/run installs it. Screenshots for the docs are
taken with the same setup by tests/dashboard/screenshots.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from revstack.agents.engine import list_proposals
from revstack.data.warehouse import Warehouse, release_all
from tests.dashboard._browser import CHROMIUM, launch, open_page, serve, settle, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def server(small_copy: Warehouse):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
        )
    release_all()
    with serve(small_copy.path) as url:
        yield url, small_copy


def _status(wh: Warehouse, pid: str) -> str:
    with wh.connect() as con:
        status = con.execute(
            "SELECT status FROM ops.proposals WHERE proposal_id = $p", {"p": pid}
        ).fetchall()[0][0]
    release_all()  # hand the file back to the server
    return status


@pytest.mark.slow
def test_a_reviewer_approves_in_a_real_browser(server) -> None:
    from playwright.sync_api import sync_playwright

    url, wh = server
    first = wh.read(list_proposals, status="pending", limit=1).row(0, named=True)  # the first card
    release_all()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # The server's very first request is a deep link: it must still go through the
        # entry point (our navigation, sign-in, wide layout), not run the page file alone.
        open_page(page, url, "approvals", "Approvals")
        assert page.get_by_role("link", name="Data quality", exact=True).count() == 1
        assert page.get_by_role("link", name="data quality", exact=True).count() == 0  # v1's name
        assert page.get_by_text("Signed in as").count() == 1
        sign_in(page, "rev", "reviewer")
        settle(page)
        button = page.locator(f".st-key-approve_{first['proposal_id']} button")  # st-key-<key>
        button.wait_for()
        page.get_by_text(
            f"{first['object_type']} {first['record_id']} · {first['field']}"
        ).first.wait_for()
        button.click()
        deadline = time.time() + 30
        while time.time() < deadline and _status(wh, first["proposal_id"]) == "pending":
            time.sleep(0.5)
        page.get_by_role("link", name="Audit & rollback").click()
        page.get_by_text("Hash chain intact").wait_for(timeout=30_000)
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    assert errors == []
    assert _status(wh, first["proposal_id"]) == "approved"
    with wh.connect() as con:
        logged = con.execute(
            "SELECT actor, action, after FROM ops.audit_log WHERE proposal_id = $p ORDER BY seq",
            {"p": first["proposal_id"]},
        ).fetchall()
    # the reviewer's approval, then the engine's guarded write of the proposed value
    assert ("rev", "approve") in [(a, b) for a, b, _ in logged]
    applied = [after for actor, action, after in logged if action == "apply"]
    assert applied and json.loads(applied[-1]) == json.loads(first["new_value"])
