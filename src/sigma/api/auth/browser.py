"""What the API server needs to know about browsers: the dashboard's session cookie, which
paths it may authenticate, and whether a request that changes something came from the
dashboard's own page (CSRF). Pure functions over header values.

The cookie only ever authenticates requests under /ui: the API under /api and /apis takes
bearer tokens and client certificates only, so a page elsewhere that makes the browser send
its cookie there gains nothing. It is HttpOnly (no script reads it), Secure, SameSite=Strict
(no other site's page sends it) and scoped to Path=/ui.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

COOKIE = "sigma-session"
UI = "/ui"
LOGIN_PATH = "/ui/login"
LOGOUT_PATH = "/ui/logout"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of a request the dashboard's own page made, or the user typed.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def is_ui_path(path: str) -> bool:
    return path == UI or path.startswith(UI + "/")


def wants_html(accept: str) -> bool:
    """A browser navigating to a page (what it sends for a typed URL or a link)."""
    return "text/html" in accept.lower()


def session_id(cookie_header: str) -> str:
    """The session id in a Cookie header, "" when there is none (or the header is garbled)."""
    if not cookie_header:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else ""


def session_cookie(value: str, max_age_s: int) -> str:
    return f"{COOKIE}={value}; Max-Age={max_age_s}; Path={UI}; HttpOnly; Secure; SameSite=Strict"


def cleared_cookie() -> str:
    return f"{COOKIE}=; Max-Age=0; Path={UI}; HttpOnly; Secure; SameSite=Strict"


def cross_site_reason(method: str, origin: str, fetch_site: str, host: str, scheme: str) -> str | None:
    """Why a state-changing request does not come from the dashboard's own page, None if it
    does (or is a safe method). Browsers send Sec-Fetch-Site and, on a POST, Origin; a
    request carrying neither is not a browser's, and so no forged cross-site one."""
    if method.upper() in SAFE_METHODS:
        return None
    if fetch_site and fetch_site.lower() not in SAME_SITE_FETCH:
        return f"a cross-site request (Sec-Fetch-Site: {fetch_site}) may not change anything here"
    if origin and origin.lower() != f"{scheme}://{host}".lower():
        return f"a request from another origin ({origin}) may not change anything here"
    return None
