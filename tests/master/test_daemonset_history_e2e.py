"""A DaemonSet's revision history through a real master and kubectl: each template gets a
ControllerRevision, `kubectl rollout history` lists them, `kubectl rollout undo` patches an
old template back (a strategic merge patch with ``$patch: replace``) and its revision is
renumbered. No agent: one Node object, whose daemon pod is never Ready, so each update
replaces it at once; the history does not need the pods to run."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

MANIFEST = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logger}
spec:
  selector: {matchLabels: {app: logger}}
  template:
    metadata: {labels: {app: logger}}
    spec:
      containers:
      - {name: main, image: "logger:1"}
"""
DS_PATH = "/apis/apps/v1/namespaces/default/daemonsets/logger"


def wait(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_rollout_history_and_undo_of_a_daemonset(tmp_path: Path) -> None:
    with MasterProcess(tmp_path) as master, httpx.Client(base_url=master.url, timeout=10) as http:
        def kubectl(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run(["kubectl", "--server", master.url, "-n", "default", *args], input=stdin,
                                  text=True, capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        def revisions() -> dict[int, str]:
            """revision number -> the image its template has."""
            items = http.get("/apis/apps/v1/namespaces/default/controllerrevisions").json()["items"]
            return {r["revision"]: r["data"]["spec"]["template"]["spec"]["containers"][0]["image"] for r in items}

        def image() -> Any:
            return http.get(DS_PATH).json()["spec"]["template"]["spec"]["containers"][0]["image"]

        def pod_hashes() -> list[str]:
            items = http.get("/api/v1/namespaces/default/pods").json()["items"]
            return [p["metadata"]["labels"]["controller-revision-hash"] for p in items
                    if not p["metadata"].get("deletionTimestamp")]

        def hash_of(number: int) -> str:
            items = http.get("/apis/apps/v1/namespaces/default/controllerrevisions").json()["items"]
            return str(next(r for r in items if r["revision"] == number)["metadata"]["labels"]
                       ["controller-revision-hash"])

        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}
        assert http.post("/api/v1/nodes", json=node).status_code == 201
        kubectl("apply", "-f", "-", stdin=MANIFEST)
        wait(lambda: revisions() == {1: "logger:1"})
        wait(lambda: pod_hashes() == [hash_of(1)])
        kubectl("set", "image", "ds/logger", "main=logger:2")
        wait(lambda: revisions() == {1: "logger:1", 2: "logger:2"})
        kubectl("set", "image", "ds/logger", "main=logger:3")
        wait(lambda: revisions() == {1: "logger:1", 2: "logger:2", 3: "logger:3"})

        history = kubectl("rollout", "history", "ds/logger")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"], history
        assert "logger:2" in kubectl("rollout", "history", "ds/logger", "--revision=2")

        table = kubectl("get", "controllerrevisions")
        header, *rows = table.splitlines()
        assert header.split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
        assert sorted(tuple(r.split()[1:3]) for r in rows) == [("daemonset.apps/logger", n) for n in "123"], table

        assert "rolled back" in kubectl("rollout", "undo", "ds/logger", "--to-revision=1")
        assert image() == "logger:1"
        # The first template came back: its revision is renumbered, not copied.
        wait(lambda: revisions() == {2: "logger:2", 3: "logger:3", 4: "logger:1"})
        assert hash_of(4) != hash_of(3)
        wait(lambda: pod_hashes() == [hash_of(4)])  # the pod of the current revision replaced the old one

        kubectl("rollout", "undo", "ds/logger")  # to the previous revision: 3
        assert image() == "logger:3"
        wait(lambda: revisions() == {2: "logger:2", 4: "logger:1", 5: "logger:3"})

        kubectl("delete", "ds/logger")  # the revisions are owned: garbage collected with it
        wait(lambda: revisions() == {})
