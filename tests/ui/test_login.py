"""The dashboard's browser login against a real master with authentication on (https, token
file, RBAC bindings from tests/api/auth_fixtures.py), and the one-time link `sigma up` prints.

Real processes and real HTTP throughout; httpx plays the browser by sending what one sends
(Accept: text/html for a page, Origin and Sec-Fetch-Site on a form post, the cookie back).
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sigma.ui.login import form_token, login_page
from tests.api.auth_fixtures import AuthMaster, namespace, pod, start_auth_master
from tests.harness import free_port


def no_jar() -> CookieJar:
    """A cookie jar that keeps nothing: each request sends exactly the cookie the test names."""
    return CookieJar(DefaultCookiePolicy(allowed_domains=[]))


HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


# -- the page itself (pure) -------------------------------------------------------------------
def test_the_login_page_escapes_what_it_echoes() -> None:
    page = login_page('<script>alert("x")</script> & more')
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page


def test_the_login_page_loads_nothing_from_elsewhere() -> None:
    page = login_page()
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "<script" not in page


@pytest.mark.parametrize(("body", "token"), [
    (b"token=abc", "abc"), (b"token=+a%2Bb+", "a+b"), (b"other=1", ""), (b"", ""), (b"token=a&token=b", "a")])
def test_the_token_is_read_from_the_form(body: bytes, token: str) -> None:
    assert form_token(body) == token


# -- against a real master --------------------------------------------------------------------
@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("ui-login")), "--no-controllers", "--tls", "on",
                                 scheme="https")


def trust(master: AuthMaster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(master.state / "auth" / "ca.crt"))


@pytest.fixture
def web(master: AuthMaster) -> Iterator[httpx.Client]:
    """A client without credentials or cookie jar: each test says what it sends."""
    with httpx.Client(base_url=master.url, verify=trust(master), timeout=10, cookies=no_jar()) as client:
        yield client


@pytest.fixture
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin", verify=trust(master)) as client:
        yield client


def form_headers(master: AuthMaster, **extra: str) -> dict[str, str]:
    return {"Origin": master.url, "Sec-Fetch-Site": "same-origin",
            "Content-Type": "application/x-www-form-urlencoded", **HTML, **extra}


def login(web: httpx.Client, master: AuthMaster, token: str, **headers: str) -> httpx.Response:
    return web.post("/ui/login", content=f"token={token}".encode(), headers=form_headers(master, **headers))


def session_of(response: httpx.Response) -> str:
    match = re.match(r"sigma-session=([^;]+)", response.headers.get("set-cookie", ""))
    assert match, f"no session cookie in {response.headers}"
    return match.group(1)


def with_session(sid: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"sigma-session={sid}", **headers}


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/snapshot", "/ui/static/dashboard.js", "/ui/nothing-here"])
def test_a_browser_without_credentials_gets_the_login_page(web: httpx.Client, path: str) -> None:
    r = web.get(path, headers=HTML)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'action="/ui/login"' in r.text and 'name="token"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.e2e
@pytest.mark.parametrize(("path", "accept"), [
    ("/ui", "*/*"), ("/ui/snapshot", "application/json"), ("/ui/events", "text/event-stream"),
    ("/api/v1/pods", HTML["Accept"]), ("/apis/apps/v1/deployments", HTML["Accept"])])
def test_api_clients_and_the_api_keep_getting_401_json(web: httpx.Client, path: str, accept: str) -> None:
    r = web.get(path, headers={"Accept": accept})
    assert r.status_code == 401
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


@pytest.mark.e2e
def test_a_good_token_logs_in_with_a_strict_cookie_that_is_not_the_token(web: httpx.Client,
                                                                         master: AuthMaster) -> None:
    r = login(web, master, "admin-token")
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"]
    flags = {part.strip() for part in cookie.split(";")}
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"} <= flags
    max_age = next(int(f.split("=")[1]) for f in flags if f.startswith("Max-Age="))
    assert 0 < max_age <= 8 * 3600
    sid = session_of(r)
    assert "admin-token" not in cookie and len(sid) >= 40
    page = web.get("/ui", headers=with_session(sid, **HTML))
    assert page.status_code == 200 and "/ui/static/dashboard.js" in page.text
    assert web.get("/ui/snapshot", headers=with_session(sid)).json()["nodes"] is not None


@pytest.mark.e2e
@pytest.mark.parametrize("token", ["wrong-token", "", "admin-token%00"])
def test_a_bad_token_gets_the_login_page_again_and_no_cookie(web: httpx.Client, master: AuthMaster,
                                                             token: str) -> None:
    r = login(web, master, token)
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert "That token was not accepted." in r.text and 'name="token"' in r.text


@pytest.mark.e2e
def test_the_session_cookie_never_authenticates_the_api(web: httpx.Client, master: AuthMaster) -> None:
    sid = session_of(login(web, master, "admin-token"))
    for path in ("/api/v1/namespaces", "/apis/apps/v1/deployments", "/api", "/metrics"):
        r = web.get(path, headers=with_session(sid))
        assert r.status_code == 401, path
    assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 200  # it is a live session


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sse_snapshot(web: httpx.Client, sid: str) -> dict[str, Any]:
    """The first `snapshot` event of the dashboard's live feed."""
    with web.stream("GET", "/ui/events", headers=with_session(sid, Accept="text/event-stream")) as r:
        assert r.status_code == 200
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "snapshot":
                return dict(orjson.loads(line[len("data: "):]))
    raise AssertionError("the feed ended without a snapshot")


@pytest.mark.e2e
def test_the_dashboard_shows_a_user_only_what_rbac_lets_them_list(web: httpx.Client, master: AuthMaster,
                                                                   admin: httpx.Client) -> None:
    # bob may view team-a only; the admin sees everything, nodes included.
    for ns in ("team-a", "team-b"):
        namespace(admin, name=ns)
        r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"p-{ns}"))
        assert r.status_code in (201, 409), r.text
    r = admin.post("/api/v1/nodes", json={"metadata": {"name": "login-node"}})
    assert r.status_code in (201, 409), r.text
    assert web.get("/api/v1/namespaces/team-b/pods", headers={"Authorization": "Bearer viewer-token"}
                   ).status_code == 403  # the API's own answer for bob

    bob = session_of(login(web, master, "viewer-token"))
    alice = session_of(login(web, master, "admin-token"))

    def alice_sees_all() -> bool:  # the dashboard's feed follows the API within moments
        seen = web.get("/ui/snapshot", headers=with_session(alice)).json()
        return ({("team-a", "p-team-a"), ("team-b", "p-team-b")} <= {(p["ns"], p["name"]) for p in seen["pods"]}
                and "login-node" in {n["name"] for n in seen["nodes"]})

    wait_for(alice_sees_all, "the admin's dashboard to show both pods and the node")
    seen_by_bob = web.get("/ui/snapshot", headers=with_session(bob)).json()
    assert {(p["ns"], p["name"]) for p in seen_by_bob["pods"]} == {("team-a", "p-team-a")}
    assert seen_by_bob["nodes"] == [] and seen_by_bob["nodemetrics"] == []
    live = sse_snapshot(web, bob)  # the live feed the page uses is filtered the same way
    assert {(p["ns"], p["name"]) for p in live["pods"]} == {("team-a", "p-team-a")} and live["nodes"] == []
    # dave has no rights in team-a or team-b: none of their pods, whatever way he asks.
    dave = session_of(login(web, master, "noisy-token"))
    assert not {p["ns"] for p in web.get("/ui/snapshot", headers=with_session(dave)).json()["pods"]} & {
        "team-a", "team-b"}


@pytest.mark.e2e
@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Origin": ""}, {"Origin": "null"},
    {"Sec-Fetch-Site": "same-site"}])
def test_a_login_posted_from_another_site_is_refused(web: httpx.Client, master: AuthMaster,
                                                     headers: dict[str, str]) -> None:
    r = login(web, master, "admin-token", **headers)
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    assert "may not change anything here" in r.text


@pytest.mark.e2e
def test_the_refusal_page_escapes_the_origin_it_names(web: httpx.Client, master: AuthMaster) -> None:
    r = login(web, master, "admin-token", Origin='https://x"><script>alert(1)</script>')
    assert r.status_code == 403
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)" in r.text


@pytest.mark.e2e
def test_logout_ends_the_session_on_the_server_and_only_from_the_dashboard(web: httpx.Client,
                                                                          master: AuthMaster) -> None:
    sid = session_of(login(web, master, "admin-token"))
    forged = web.post("/ui/logout", headers=with_session(sid, Origin="https://evil.example"))
    assert forged.status_code == 403
    assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 200  # still logged in
    r = web.post("/ui/logout", headers=with_session(sid, Origin=master.url, **{"Sec-Fetch-Site": "same-origin"}))
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert "Max-Age=0" in r.headers["set-cookie"]
    # Even a browser that kept the cookie is out: the server forgot the session.
    assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 401
    assert 'name="token"' in web.get("/ui", headers=with_session(sid, **HTML)).text


@pytest.mark.e2e
def test_every_login_is_a_new_session_and_ends_the_one_presented(web: httpx.Client, master: AuthMaster) -> None:
    first = session_of(login(web, master, "viewer-token"))
    second = session_of(login(web, master, "admin-token", Cookie=f"sigma-session={first}"))
    assert second != first
    assert web.get("/ui/snapshot", headers=with_session(first)).status_code == 401
    planted = session_of(login(web, master, "admin-token", Cookie="sigma-session=chosen-by-the-attacker"))
    assert planted != "chosen-by-the-attacker"


@pytest.mark.e2e
def test_removing_a_token_from_the_token_file_ends_its_sessions(web: httpx.Client, master: AuthMaster) -> None:
    tokens = master.state / "tokens.csv"
    original = tokens.read_text()
    sid = session_of(login(web, master, "noisy-token"))
    assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 200
    try:
        tokens.write_text("".join(line + "\n" for line in original.splitlines() if not line.startswith("noisy-")))
        assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 401
    finally:
        tokens.write_text(original)
    assert web.get("/ui/snapshot", headers=with_session(sid)).status_code == 401  # ended, not suspended


@pytest.mark.e2e
def test_an_unknown_once_link_gets_the_login_page_with_a_message(web: httpx.Client) -> None:
    r = web.get("/ui/login?once=made-up", headers=HTML)
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "already used or has expired" in r.text


@pytest.mark.e2e
def test_guessing_tokens_is_stopped_by_the_failed_authentication_limiter(tmp_path: Path) -> None:
    # A master of its own: the lockout holds for this address, and would hold other tests up.
    # Its per-client rate is high, so what stops the guesses is the failed-login limiter.
    for master in start_auth_master(tmp_path, "--no-controllers", "--tls", "on", "--rate-limit", "1000:1000",
                                    scheme="https"):
        with httpx.Client(base_url=master.url, verify=trust(master), timeout=10, cookies=no_jar()) as web:
            codes = [login(web, master, f"guess-{i}").status_code for i in range(60)]
            assert codes[0] == 401 and codes[-1] == 429
            locked = login(web, master, "admin-token")  # even the right token is not looked at now
            assert locked.status_code == 429 and "set-cookie" not in locked.headers
            assert "Too many failed logins" in locked.text and int(locked.headers["retry-after"]) >= 1
            assert web.get("/ui/login?once=x", headers=HTML).status_code == 429


# -- `sigma up` and its one-time link -----------------------------------------------------------
class SigmaUp:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.state = tmp / "state"
        self.log = tmp / "up.log"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sigma", "up", "--no-agent", "--no-demo", "--state-dir", str(self.state),
                 "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"},
                start_new_session=True)

    def dashboard_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"dashboard:\s+(\S+)", self.log.read_text())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no dashboard line from sigma up:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def sigma_up(tmp_path: Path) -> Iterator[SigmaUp]:
    up = SigmaUp(tmp_path)
    try:
        yield up
    finally:
        up.stop()


@pytest.mark.e2e
def test_sigma_up_prints_a_one_time_login_link_for_the_admin(sigma_up: SigmaUp) -> None:
    url = sigma_up.dashboard_url()
    assert re.fullmatch(rf"https://127\.0\.0\.1:{sigma_up.port}/ui/login\?once=[A-Za-z0-9_-]{{40,}}", url), url
    ca = ssl.create_default_context(cafile=str(sigma_up.state / "auth" / "ca.crt"))
    with httpx.Client(verify=ca, timeout=10, cookies=no_jar()) as web:
        r = web.get(url, headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == "/ui"  # the secret leaves the address bar
        sid = session_of(r)
        base = f"https://127.0.0.1:{sigma_up.port}"
        assert web.get(f"{base}/ui/snapshot", headers=with_session(sid)).status_code == 200
        assert web.get(f"{base}/api/v1/nodes", headers=with_session(sid)).status_code == 401
        again = web.get(url, headers=HTML)
        assert again.status_code == 401 and "set-cookie" not in again.headers
        assert "already used or has expired" in again.text
