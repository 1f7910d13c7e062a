"""Streaming lists (`sendInitialEvents=true`), which kubectl and client-go use by default for
watches (the WatchListClient feature): the current state as ADDED events, a bookmark marking
its end, then changes, against a real master."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "command": ["true"]}]}}


def test_initial_events_then_the_end_bookmark_then_changes(http: httpx.Client, ns: str) -> None:
    for i in range(3):
        assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"p{i}")).status_code == 201
    params = {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
              "allowWatchBookmarks": "true", "timeoutSeconds": "5"}
    events: list[dict[str, Any]] = []
    with http.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            events.append(json.loads(line))
            if events[-1]["type"] == "BOOKMARK":
                # The initial state is complete: a change now arrives after the mark.
                assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod("late")).status_code == 201
            if events[-1]["type"] == "ADDED" and events[-1]["object"]["metadata"]["name"] == "late":
                break
    kinds = [e["type"] for e in events]
    assert kinds == ["ADDED", "ADDED", "ADDED", "BOOKMARK", "ADDED"]
    assert sorted(e["object"]["metadata"]["name"] for e in events[:3]) == ["p0", "p1", "p2"]
    mark = events[3]["object"]["metadata"]
    assert mark["annotations"] == {"k8s.io/initial-events-end": "true"}
    listed = max(int(e["object"]["metadata"]["resourceVersion"]) for e in events[:3])
    assert listed <= int(mark["resourceVersion"]) < int(events[4]["object"]["metadata"]["resourceVersion"])


def test_initial_events_need_not_older_than_and_bookmarks(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "true", "sendInitialEvents": "true"})
    assert r.status_code == 400
    assert "resourceVersionMatch=NotOlderThan" in r.json()["message"]


def test_kubectl_get_watch_uses_it_and_sees_the_objects(master: MasterProcess, http: httpx.Client, ns: str) -> None:
    import subprocess

    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod("seen")).status_code == 201
    out = subprocess.run(["kubectl", "--server", master.url, "-n", ns, "get", "pods", "--watch",
                          "--request-timeout=4s", "-o", "name"], capture_output=True, text=True, timeout=60)
    assert "pod/seen" in out.stdout, out.stderr
