"""Floods of failed authentications: throttled per source address before authentication,
each audit line bounded, the audit log rotating at a size. Against a real `sigma master`
with authentication on, and the audit log itself on real files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.api.auth.attributes import attributes_of
from sigma.api.auth.audit import MAX_LINE_BYTES, AuditLog
from sigma.api.auth.identity import User
from tests.api.auth_fixtures import AuthMaster, start_auth_master


@pytest.fixture
def master(tmp_path: Path) -> Iterator[AuthMaster]:
    yield from start_auth_master(tmp_path / "flood", "--no-controllers")


def _audit_size(master: AuthMaster) -> int:
    path = master.state / "audit.log"
    return path.stat().st_size if path.exists() else 0


@pytest.mark.e2e
def test_a_flood_of_anonymous_writes_is_throttled_and_audited_within_bounds(master: AuthMaster) -> None:
    before = _audit_size(master)
    long_query = "x=" + "a" * 60_000
    codes: list[int] = []
    with master.client(None) as anonymous:
        for _ in range(1000):
            r = anonymous.post(f"/api/v1/namespaces/default/pods?{long_query}", json={})
            codes.append(r.status_code)
        assert set(codes) <= {401, 429} and codes[0] == 401
        assert codes.count(429) > 800, f"{codes.count(401)} 401s, {codes.count(429)} 429s"
        later = anonymous.get("/api/v1/pods")
        assert later.status_code == 429 or anonymous.get("/api/v1/pods").status_code == 429
        refused = anonymous.post("/api/v1/namespaces/default/pods", json={})
        if refused.status_code == 429:
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.json()["reason"] == "TooManyRequests"
        assert anonymous.get("/readyz").status_code == 200  # health checks stay answered
    # Before authentication: a valid credential from that address is refused too.
    with master.client("admin") as admin:
        assert any(admin.get("/api/v1/namespaces").status_code == 429 for _ in range(5))
    time.sleep(0.5)  # the audit writer appends every few tens of milliseconds
    grown = _audit_size(master) - before
    assert 0 < grown < 1024 * 1024, f"the audit log grew by {grown} bytes"
    lines = (master.state / "audit.log").read_bytes().splitlines()
    assert all(len(line) < MAX_LINE_BYTES for line in lines)
    entry = json.loads(lines[-1])
    assert entry["code"] == 401 and "more characters]" in entry["requestURI"]


def test_an_audit_line_is_bounded_whatever_the_request_holds(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    user = User("u" * 10_000, "", tuple(f"group-{i}" + "g" * 1000 for i in range(100)))
    attrs = attributes_of("POST", "/api/v1/namespaces/" + "n" * 5000 + "/pods", {})
    log.record(user, attrs, 401, "127.0.0.1", "/api/v1/pods?" + '"\\' * 30_000)
    log.close()
    (line,) = (tmp_path / "audit.log").read_bytes().splitlines()
    assert len(line) <= MAX_LINE_BYTES
    entry = json.loads(line)
    assert entry["code"] == 401 and entry["user"].startswith("uuu") and len(entry["groups"]) == 8


def test_the_audit_log_rotates_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = AuditLog(path, max_bytes=20_000, backups=2)
    attrs = attributes_of("POST", "/api/v1/namespaces/default/pods", {})
    for i in range(400):
        log.record(User("alice", "", ("devs",)), attrs, 201, "10.0.0.1", f"/api/v1/namespaces/default/pods?i={i}")
        if i % 50 == 49:
            log.flush()
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"], files
    assert all((tmp_path / name).stat().st_size <= 20_000 for name in files)
    newest = json.loads(path.read_bytes().splitlines()[-1])
    assert newest["requestURI"].endswith("i=399")
