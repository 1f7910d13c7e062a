"""Logging a browser in to the dashboard, and out again.

    GET  /ui/login              the login page (what any dashboard page shows a browser
                                without a session: the auth middleware sends it here)
    GET  /ui/login?once=SECRET  a one-time link (`sigma up` prints one): a session for its
                                user, then 303 to /ui, so the secret leaves the address bar
    POST /ui/login              token=BEARER (a form): checked by the API's own
                                authenticator; a session cookie and 303 to /ui
    POST /ui/logout             ends the session on the server and clears the cookie

A wrong token or a used, expired or unknown one-time secret counts as a failed
authentication of the address (the API's limiter): after too many the page answers 429
without looking. Posts must come from the dashboard's own origin (CSRF), every login gets a
new session id (no fixation), and the page echoes nothing unescaped. The page is one small
HTML document with its style inline and no script: nothing is loaded from elsewhere.
"""

from __future__ import annotations

import html
import math
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sigma.api.auth import AuthSetup
from sigma.api.auth.browser import (
    LOGIN_PATH,
    LOGOUT_PATH,
    UI,
    cleared_cookie,
    cross_site_reason,
    session_cookie,
    session_id,
)
from sigma.api.auth.identity import MASTERS, User
from sigma.api.auth.middleware import AuthPolicy
from sigma.api.auth.ratelimit import retry_after_header
from sigma.api.auth.sessions import StillValid
from sigma.api.auth.tokens import digest

MAX_FORM = 8192  # a token is a few dozen bytes
FORM_TYPE = "application/x-www-form-urlencoded"
# The administrator `sigma up` writes into its kubeconfig (cli/master.py admin_token).
SIGMA_UP_ADMIN = User("sigma-admin", "sigma-admin", (MASTERS,)).with_authenticated()
# Nothing from elsewhere, no script, forms only to this origin, never inside another site's frame.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it a browser posts the form with Origin: null, which the CSRF
    # check refuses. Same-origin keeps the page's address (a used link) on this origin.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
USED_LINK = ("This login link was already used or has expired. Log in with the token from your "
             "kubeconfig, or restart sigma up for a new link.")
BAD_TOKEN = "That token was not accepted."
TOO_MANY = "Too many failed logins from this address; please try again later."

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sigma · log in</title>
<style>
body {{ margin: 0; background: #0f1419; color: #d8dee6; font: 14px/1.5 system-ui, sans-serif; }}
main {{ max-width: 420px; margin: 12vh auto; padding: 20px 24px; background: #171d24;
       border: 1px solid #2a333d; border-radius: 8px; }}
h1 {{ margin: 0 0 12px; font-size: 20px; }}
label {{ display: block; margin: 12px 0 4px; color: #8592a0; }}
input {{ width: 100%; box-sizing: border-box; padding: 6px 8px; background: #0f1419; color: #d8dee6;
        border: 1px solid #2a333d; border-radius: 4px; font-family: monospace; }}
button {{ margin-top: 14px; padding: 6px 16px; background: #4c8dff; color: #fff; border: 0; border-radius: 4px; }}
.msg {{ padding: 8px 10px; background: #4a1c1c; color: #ffb0b0; border-radius: 4px; }}
code {{ color: #f5a524; }}
</style></head>
<body><main>
<h1>Sigma</h1>
{message}<form method="post" action="{action}">
<label for="token">Bearer token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required>
<button type="submit">Log in</button>
</form>
<p>The token is the one in your kubeconfig (<code>users[].user.token</code>); <code>sigma up</code>
also prints a one-time login link.</p>
</main></body></html>
"""


def login_page(message: str = "") -> str:
    """The page, with `message` (escaped: it may quote what the request sent) above the form."""
    shown = f'<p class="msg" role="alert">{html.escape(message)}</p>\n' if message else ""
    return _PAGE.format(message=shown, action=html.escape(LOGIN_PATH))


def form_token(body: bytes) -> str:
    """The `token` field of an urlencoded form, stripped; "" when it is missing."""
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get("token") or [""]
    return values[0].strip()


def _page(message: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(login_page(message), status_code=status, media_type="text/html; charset=utf-8",
                    headers={**PAGE_HEADERS, **(headers or {})})


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "?"


def _cross_site(request: Request) -> str | None:
    h = request.headers
    return cross_site_reason(request.method, h.get("origin", ""), h.get("sec-fetch-site", ""), h.get("host", ""),
                             request.url.scheme)


async def _read_form(request: Request) -> bytes | None:
    """The body if it fits MAX_FORM, else None (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def login_routes(policy: AuthPolicy) -> list[BaseRoute]:
    sessions, failures = policy.sessions, policy.failed_auth

    def blocked(request: Request) -> Response | None:
        wait = failures.blocked(_source(request)) if failures is not None else 0.0
        return _page(TOO_MANY, 429, {"Retry-After": retry_after_header(wait)}) if wait > 0 else None

    def failed(request: Request, message: str) -> Response:
        if failures is not None:
            failures.take(_source(request))
        return _page(message, 401)

    def logged_in(request: Request, user: User, still_valid: StillValid | None = None) -> Response:
        # A session id the browser already had is ended, never reused: every login is a new id.
        sessions.end(session_id(request.headers.get("cookie", "")))
        sid = sessions.create(user, still_valid)
        response = RedirectResponse(UI, status_code=303, headers={"Cache-Control": "no-store",
                                                                  "Referrer-Policy": "no-referrer"})
        response.headers["Set-Cookie"] = session_cookie(sid, math.floor(sessions.session_ttl_s))
        return response

    async def show(request: Request) -> Response:
        once = request.query_params.get("once")
        if once is None:
            return _page("")
        refused = blocked(request)
        if refused is not None:
            return refused
        user = sessions.redeem_once(once)
        return failed(request, USED_LINK) if user is None else logged_in(request, user)

    async def submit(request: Request) -> Response:
        reason = _cross_site(request)
        if reason is not None:
            return _page(reason, 403)
        refused = blocked(request)
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
            return _page(f"The login form is posted as {FORM_TYPE}.", 415)
        body = await _read_form(request)
        if body is None:
            return _page(f"The login form may not exceed {MAX_FORM} bytes.", 413)
        token = form_token(body)
        key = digest(token)  # only the hash is kept, to notice a revoked token
        user = policy.credentials.authenticate_digest(key) if token else None
        if user is None:
            return failed(request, BAD_TOKEN)
        return logged_in(request, user, lambda: policy.credentials.authenticate_digest(key) == user)

    async def logout(request: Request) -> Response:
        reason = _cross_site(request)
        if reason is not None:
            return _page(reason, 403)
        sessions.end(session_id(request.headers.get("cookie", "")))
        response = RedirectResponse(LOGIN_PATH, status_code=303, headers={"Cache-Control": "no-store"})
        response.headers["Set-Cookie"] = cleared_cookie()
        return response

    return [Route(LOGIN_PATH, show, methods=["GET"]), Route(LOGIN_PATH, submit, methods=["POST"]),
            Route(LOGOUT_PATH, logout, methods=["POST"])]


def once_login_url(auth: AuthSetup | None, base_url: str, user: User = SIGMA_UP_ADMIN) -> str:
    """A one-time dashboard login link for `user` (the admin of `sigma up` by default), or
    the plain /ui address of a master without authentication."""
    if auth is None:
        return f"{base_url}{UI}"
    return f"{base_url}{LOGIN_PATH}?once={auth.policy.sessions.issue_once(user)}"
