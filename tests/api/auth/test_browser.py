"""The dashboard cookie's flags and parsing, and the CSRF decision."""

from __future__ import annotations

import pytest

from sigma.api.auth.browser import (
    cleared_cookie,
    cross_site_reason,
    is_ui_path,
    session_cookie,
    session_id,
    wants_html,
)


def test_only_paths_under_ui_are_the_dashboards() -> None:
    assert is_ui_path("/ui") and is_ui_path("/ui/") and is_ui_path("/ui/events")
    assert not is_ui_path("/uix") and not is_ui_path("/api/v1/pods") and not is_ui_path("/apis/ui")


def test_the_cookie_has_every_flag() -> None:
    header = session_cookie("abc", 28800)
    parts = [p.strip() for p in header.split(";")]
    assert parts[0] == "sigma-session=abc"
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/ui", "Max-Age=28800"} <= set(parts)
    assert "Max-Age=0" in cleared_cookie() and "Path=/ui" in cleared_cookie()


@pytest.mark.parametrize(("header", "expected"), [
    ("sigma-session=abc", "abc"),
    ("other=1; sigma-session=x-y_z", "x-y_z"),
    ("other=1", ""),
    ("", ""),
    ('sigma-session="unterminated', ""),
])
def test_the_session_id_is_read_from_the_cookie_header(header: str, expected: str) -> None:
    assert session_id(header) == expected


def test_browsers_asking_for_pages_want_html() -> None:
    assert wants_html("text/html,application/xhtml+xml,*/*;q=0.8")
    assert not wants_html("application/json")
    assert not wants_html("")


HOST, SCHEME = "127.0.0.1:6443", "https"


@pytest.mark.parametrize(("method", "origin", "site", "refused"), [
    ("GET", "https://evil.example", "cross-site", False),  # safe methods are not the point
    ("POST", "https://127.0.0.1:6443", "same-origin", False),
    ("POST", "", "none", False),  # typed by the user
    ("POST", "", "", False),  # not a browser: no ambient cookie to forge with
    ("POST", "https://evil.example", "", True),
    ("POST", "null", "", True),
    ("POST", "", "cross-site", True),
    ("POST", "https://127.0.0.1:6443", "same-site", True),  # another port of the same host
    ("POST", "http://127.0.0.1:6443", "same-origin", True),  # another scheme
])
def test_state_changes_only_from_the_same_origin(method: str, origin: str, site: str, refused: bool) -> None:
    reason = cross_site_reason(method, origin, site, HOST, SCHEME)
    assert (reason is not None) is refused
