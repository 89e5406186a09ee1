"""OpenID Connect sign-in, end to end: a real provider on loopback (tests/dashboard/_oidc.py),
`streamlit run` with an ``[auth]`` table pointing at it, Debian's chromium through
playwright.

One browser walks what docs/security.md promises: nothing but a sign-in button before
signing in; sign-in on the provider's own page; a reviewer's approval credited in
ops.audit_log to the person the verified email names; a viewer's approval refused; an
email the provider does not vouch for, and a signed-in stranger, see only that fact;
sign-out goes through the provider's end-session endpoint and asks for sign-in again.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from revstack.agents.engine import add_person, run_agents
from revstack.data.warehouse import Warehouse, release_all
from tests.agents.test_runs import FillIndustry, _spec
from tests.dashboard._browser import CHROMIUM, free_port, launch, open_page, serve, settle
from tests.dashboard._oidc import Provider, provider

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REVIEWER, VIEWER, UNVERIFIED, STRANGER = (
    "Rita@Example.com",  # in ops.people as rita@example.com: case does not matter
    "val@example.com",
    "eve@example.com",
    "sam@example.com",
)


def _secrets(folder: Path, port: int, idp: Provider) -> None:
    (folder / ".streamlit").mkdir()
    (folder / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "{idp.redirect_uri}"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{idp.client_id}"\n'
        f'client_secret = "{idp.client_secret}"\n'
        f'server_metadata_url = "{idp.issuer}/.well-known/openid-configuration"\n'
    )


def _one(wh: Warehouse, sql: str, params: dict) -> list[tuple]:
    with wh.connect() as con:
        rows = con.execute(sql, params).fetchall()
    release_all()  # hand the file back to the server
    return rows


def _status(wh: Warehouse, pid: str) -> str:
    return _one(wh, "SELECT status FROM ops.proposals WHERE proposal_id = $p", {"p": pid})[0][0]


def _sign_in(page, url: str, idp: Provider, email: str) -> None:
    page.goto(f"{url}/approvals")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#email").wait_for(timeout=30_000)  # the provider's page, not ours
    assert page.url.startswith(f"{idp.issuer}/authorize?")
    page.fill("#email", email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{url}/**", timeout=30_000)
    settle(page)


def _sign_out(page, url: str, idp: Provider) -> None:
    before = idp.signed_out
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert idp.signed_out == before + 1  # through the provider's end-session endpoint
    assert page.url.startswith(url)


@pytest.fixture
def signed(run_wh: Warehouse, tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
        )
    run_agents(run_wh, [_spec("filler", FillIndustry)])
    for email, role in (
        ("rita@example.com", "reviewer"),
        (VIEWER, "viewer"),
        (UNVERIFIED, "reviewer"),
    ):
        add_person(run_wh, email, role, by="ana")
    release_all()
    port = free_port()
    accounts = {REVIEWER: True, VIEWER: True, UNVERIFIED: False, STRANGER: True}
    with provider(
        client_id="revstack-test",
        client_secret=secrets.token_urlsafe(16),
        redirect_uri=f"http://127.0.0.1:{port}/oauth2callback",
        accounts=accounts,
    ) as idp:
        _secrets(tmp_path, port, idp)
        with serve(run_wh.path, port=port, cwd=tmp_path) as url:
            yield url, idp, run_wh


def test_sign_in_through_a_real_provider(signed) -> None:
    from playwright.sync_api import sync_playwright

    url, idp, wh = signed
    first, second = (
        r[0]
        for r in _one(
            wh,
            "SELECT proposal_id FROM ops.proposals WHERE status = 'pending' ORDER BY 1 LIMIT 2",
            {},
        )
    )
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # Before sign-in: a button, no page, no navigation, no list of names to pick.
        open_page(page, url, "approvals", "revstack")
        assert page.get_by_role("button", name="Sign in").count() == 1
        assert page.get_by_role("link", name="Approvals").count() == 0
        assert page.get_by_text("Signed in as").count() == 0

        # A reviewer signs in on the provider's page and approves: credited to them.
        _sign_in(page, url, idp, REVIEWER)
        open_page(page, url, "approvals", "Approvals")
        page.get_by_text("Signed in as rita@example.com").wait_for()
        page.get_by_text("role: reviewer").wait_for()
        page.locator(f".st-key-approve_{first} button").click()
        deadline = time.time() + 30
        while time.time() < deadline and _status(wh, first) == "pending":
            time.sleep(0.5)
        assert _status(wh, first) == "approved"
        _sign_out(page, url, idp)

        # A viewer: the decision buttons are refused to them.
        _sign_in(page, url, idp, VIEWER)
        open_page(page, url, "approvals", "Approvals")
        page.get_by_text("Viewers can look but not decide").wait_for()
        assert page.locator(f".st-key-approve_{second} button").is_disabled()
        _sign_out(page, url, idp)

        # An email the provider does not say is verified names nobody, even a reviewer.
        _sign_in(page, url, idp, UNVERIFIED)
        page.get_by_text("did not confirm").wait_for(timeout=30_000)
        assert page.get_by_role("link", name="Approvals").count() == 0
        _sign_out(page, url, idp)

        # A stranger sees that fact and nothing else, on any page.
        _sign_in(page, url, idp, STRANGER)
        for path in ("approvals", "audit", ""):
            page.goto(f"{url}/{path}")
            page.get_by_text("is not a person in this warehouse").wait_for(timeout=30_000)
            settle(page)
            assert page.get_by_text(STRANGER).count() == 1
            assert page.locator("h1").count() == 0  # no page drew its title
            assert page.get_by_role("link", name="Approvals").count() == 0
            assert page.locator('[data-testid="stDataFrame"]').count() == 0
        _sign_out(page, url, idp)

        # After sign-out, the session's cookie no longer names anyone.
        open_page(page, url, "approvals", "revstack")
        assert page.get_by_role("button", name="Sign in").count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    assert errors == []
    assert idp.signed_in == [REVIEWER, VIEWER, UNVERIFIED, STRANGER]
    assert idp.refused == []  # the app spoke the protocol as the provider requires
    logged = _one(
        wh,
        "SELECT actor, actor_kind, action FROM ops.audit_log WHERE proposal_id = $p ORDER BY seq",
        {"p": first},
    )
    assert ("rita@example.com", "person", "approve") in logged
    assert _status(wh, second) == "pending"
    assert _one(
        wh,
        "SELECT count(*) FROM ops.audit_log WHERE actor IN ($v, $e, $s)",
        {"v": VIEWER, "e": UNVERIFIED, "s": STRANGER},
    ) == [(0,)]
