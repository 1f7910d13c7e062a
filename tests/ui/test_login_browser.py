"""The one-time link `sigma up` prints, followed in headless Chromium: it lands on the live
dashboard with a strict session cookie, the secret gone from the address bar; the link does
not work twice; logging out brings the login page back, where the kubeconfig's token logs in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, needs_browser, sync_playwright
from tests.ui.test_login import SigmaUp

pytestmark = [pytest.mark.e2e, needs_browser]


@pytest.fixture
def sigma_up(tmp_path: Path) -> Iterator[SigmaUp]:
    up = SigmaUp(tmp_path)
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def https_browser(tmp_path: Path) -> Iterator[Any]:
    """Like conftest's browser, accepting the cluster's own CA (not in Chromium's store)."""
    assert sync_playwright is not None
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            ignore_https_errors=True)
        try:
            yield context
        finally:
            context.close()


def test_the_once_link_opens_the_dashboard_in_a_browser(sigma_up: SigmaUp, https_browser: Any,
                                                          artifacts: Path) -> None:
    url = sigma_up.dashboard_url()
    base = f"https://127.0.0.1:{sigma_up.port}"
    page = https_browser.new_page()
    page.goto(url)
    assert page.url == f"{base}/ui"  # redirected: the secret is not left in the address bar or history
    page.wait_for_selector("#conn.on", timeout=30_000)  # the live feed answered for the session
    assert page.text_content("#conn") == "live"
    page.screenshot(path=str(artifacts / "dashboard-after-once-login.png"))
    cookie = next(c for c in https_browser.cookies() if c["name"] == "sigma-session")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (True, True, "Strict", "/ui")
    assert page.evaluate("document.cookie") == ""  # no script can read it

    page.click(".logout button")
    page.wait_for_url(f"{base}/ui/login")
    assert page.is_visible("input[name=token]")
    page.goto(f"{base}/ui")
    assert page.is_visible("input[name=token]")  # logged out on the server: the login page again

    page.goto(url)  # the same link a second time
    assert "already used or has expired" in (page.text_content(".msg") or "")

    # The form, with the kubeconfig's token: the browser's own Origin and Sec-Fetch-Site pass.
    kubeconfig = yaml.safe_load((sigma_up.state / "kubeconfig").read_text())
    page.fill("input[name=token]", kubeconfig["users"][0]["user"]["token"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui")
    page.wait_for_selector("#conn.on", timeout=30_000)
