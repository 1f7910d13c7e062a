"""`sigma up` killed and started again on the same state: finished work stays finished, one
agent serves the node, and a plain SIGTERM stops everything quickly.

Real processes throughout: `sigma up` (master in-process, agent as its child), kill -9 of
`sigma up` alone (the agent learns of it through PR_SET_PDEATHSIG), a restart on the same
state directory. A `restartPolicy: Never` pod appends a line to a marker file each time it
runs: after the restart the file must still hold one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.client.http import HttpClient
from tests.e2e.test_up import NODE, Up, alive, wait_for

STOP_BOUND_S = 10.0  # the pods' grace is 2 s

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


class Restartable(Up):
    def start(self) -> None:
        self._client = None  # the restarted master serves a new certificate chain from the same CA
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sigma", "up", "--no-demo", "--pod-network", "off",
                 "--state-dir", str(self.state),
                 "--port", str(self.port), "--cgroup-root", self.cgroup_root],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_up(self, since: int = 0) -> None:
        wait_for(lambda: self.output().count("Sigma is up") > since, 60, f"the banner:\n{self.output()[-3000:]}")
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                             for c in self.client.get("nodes", NODE)["status"]["conditions"]), 60, "node Ready")

    def agents(self) -> list[int]:
        """Live `sigma agent` processes serving this state directory."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"agent" in cmdline and str(self.state / "agent").encode() in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def phase(self, name: str, namespace: str = "default") -> str:
        return str((self.client.get("pods", name, namespace).get("status") or {}).get("phase", ""))


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Restartable]:
    u = Restartable(tmp_path)
    try:
        yield u
    finally:
        u.close()
        agents = u.agents()
        for pid in agents:  # never leave an agent behind, even when the test failed
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # gone before its pods are, or it could start them again
        while any(alive(pid) for pid in agents) and time.monotonic() < deadline:
            time.sleep(0.1)
        u.remove_leftovers()  # the pods of an agent that did not stop, and their cgroups


HOST_NS = "host-writer"  # a privileged namespace: its privileged pods run on the host's filesystem


def pod(name: str, command: str, restart: str, on_host: bool = False) -> dict[str, Any]:
    # A sandboxed pod sees the host read-only; the marker is written on the host, by a
    # privileged root pod (only a privileged namespace admits it).
    host = {"securityContext": {"runAsUser": 0, "privileged": True}} if on_host else {}
    return {"metadata": {"name": name},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "command": ["/bin/sh", "-c", command], **host}]}}


def test_a_finished_pod_never_runs_again_after_kill_9_and_restart(up: Restartable, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    up.start()
    up.wait_up()
    up.client.create("namespaces", {"metadata": {"name": HOST_NS,
                                                 "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    up.client.create("pods", pod("once", f"echo ran >> {marker}", "Never", on_host=True), HOST_NS)
    up.client.create("pods", pod("sleeper", "sleep 3600", "Always"), "default")
    wait_for(lambda: up.phase("once", HOST_NS) == "Succeeded", 60, "the Never pod to succeed")
    wait_for(lambda: up.phase("sleeper") == "Running", 60, "the sleeper to run")
    assert marker.read_text().splitlines() == ["ran"]
    old_agents = up.agents()
    assert len(old_agents) == 1

    assert up.process is not None
    up.process.kill()  # kill -9 of `sigma up` alone: its agent must not outlive it for long
    up.process.wait()
    wait_for(lambda: not any(alive(p) for p in old_agents), 30, "the old agent to stop with its parent")

    up.start()
    up.wait_up(since=1)
    # Let the new agent sync every pod several times over.
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert len(up.agents()) == 1, "two agents served the node at once"
        time.sleep(0.5)
    assert up.phase("once", HOST_NS) == "Succeeded"
    assert marker.read_text().splitlines() == ["ran"], "the finished pod ran again"
    wait_for(lambda: up.phase("sleeper") == "Running", 60, "the sleeper to run again")


def test_sigterm_stops_sigma_up_and_everything_it_started_quickly(up: Restartable) -> None:
    up.start()
    up.wait_up()
    up.client.create("pods", pod("sleeper", "sleep 3600", "Always"), "default")
    wait_for(lambda: up.phase("sleeper") == "Running", 60, "the sleeper to run")
    pids = up.leftover_pids() + up.agents()
    assert pids
    assert up.process is not None
    started = time.monotonic()
    up.process.send_signal(signal.SIGTERM)
    up.process.wait(timeout=60)
    took = time.monotonic() - started
    # The pod's grace period is 2 s; before, an idle `sigma up` waited out fixed timeouts
    # (10 s of drain whatever the pods' grace, then the API server's and the controllers').
    # A generous bound that those fixed waits alone exceed.
    print(f"sigma up stopped in {took:.1f}s")
    assert took < STOP_BOUND_S, f"sigma up took {took:.1f}s to stop:\n{up.output()[-3000:]}"
    assert [p for p in pids if alive(p)] == []
    assert up.agents() == []
    assert up.cgroups() == []


def test_sigterm_stops_sigma_up_under_load(up: Restartable) -> None:
    up.start()
    up.wait_up()
    up.client.create("pods", pod("sleeper", "sleep 3600", "Always"), "default")
    wait_for(lambda: up.phase("sleeper") == "Running", 60, "the sleeper to run")
    stop = threading.Event()
    created = [0]

    def load() -> None:
        # Pods that fit nowhere keep the scheduler, the API and the store busy.
        client = HttpClient.from_kubeconfig(str(up.state / "kubeconfig"), timeout=5)
        try:
            while not stop.is_set():
                body = pod(f"load-{created[0]}", "true", "Never")
                body["spec"]["nodeSelector"] = {"no-such": "node"}
                try:
                    client.create("pods", body, "default")
                    created[0] += 1
                except (ApiError, ConnectionError, OSError):
                    return  # the master is going away
        finally:
            client.close()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: created[0] >= 200, 60, "the load to be under way")
    pids = up.leftover_pids() + up.agents()
    assert up.process is not None
    started = time.monotonic()
    up.process.send_signal(signal.SIGTERM)
    try:
        up.process.wait(timeout=60)
    finally:
        stop.set()
    took = time.monotonic() - started
    print(f"sigma up stopped under load in {took:.1f}s")
    assert took < STOP_BOUND_S, f"sigma up took {took:.1f}s to stop under load:\n{up.output()[-3000:]}"
    assert [p for p in pids if alive(p)] == [] and up.agents() == []
