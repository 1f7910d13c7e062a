"""Two `sigma up` on one machine, each with its own state directory: their own API ports
(neither asked for a port: the first gets 6443 if free, the other a free one), their own
cgroup subtrees, and stopping one leaves the other's pods running. A third on a state
directory in use is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sigma.bench.agentproc import remove_cgroup_subtree
from tests.e2e.test_up import NODE, Up, alive, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


class OwnUp(Up):
    """`sigma up --no-demo` with nothing but its state directory: ports and cgroup root are
    its own choice."""

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sigma", "up", "--no-demo", "--pod-network", "off",
                 "--state-dir", str(self.state)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_up(self) -> None:
        wait_for(lambda: "Sigma is up" in self.output(), 90, f"the banner:\n{self.output()[-3000:]}")
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                             for c in self.client.get("nodes", NODE)["status"]["conditions"]), 60, "node Ready")
        self.cgroup_root = (self.state / "agent" / "cgroup-root").read_text().strip()

    def api_port(self) -> int:
        server = yaml.safe_load((self.state / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
        return int(server.rsplit(":", 1)[1])

    def container_pid(self) -> int:
        for path in (self.state / "agent").glob("*/*/state.json"):
            state = json.loads(path.read_text())
            if isinstance(state.get("pid"), int) and alive(state["pid"]):
                return int(state["pid"])
        raise AssertionError(f"no running container in {self.state / 'agent'}")

    def phase(self, name: str) -> str:
        return str((self.client.get("pods", name, "default").get("status") or {}).get("phase", ""))


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[tuple[OwnUp, OwnUp]]:
    a, b = OwnUp(tmp_path / "a"), OwnUp(tmp_path / "b")
    for u in (a, b):
        u.log.parent.mkdir(parents=True)
        u.cgroup_root = ""
    try:
        yield a, b
    finally:
        for u in (a, b):
            u.close()
            if u.cgroup_root:
                remove_cgroup_subtree(u.cgroup_root)  # nothing, unless the test failed midway


def sleeper() -> dict[str, Any]:
    return {"metadata": {"name": "sleeper"},
            "spec": {"terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "command": ["/bin/sh", "-c", "sleep 3600"]}]}}


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def test_two_sigma_up_on_one_machine_keep_to_their_own(ups: tuple[OwnUp, OwnUp]) -> None:
    a, b = ups
    a.start()
    a.wait_up()
    b.start()
    b.wait_up()
    assert a.api_port() != b.api_port()
    assert a.cgroup_root != b.cgroup_root, "two agents on one cgroup subtree"
    assert {a.cgroup_root, b.cgroup_root} & {"sigma"} == set()

    # A third on a state directory in use: refused at once, saying so.
    third = subprocess.run([sys.executable, "-m", "sigma", "up", "--no-demo", "--pod-network", "off", "--state-dir",
                            str(a.state)],
                           capture_output=True, text=True, timeout=120)
    assert third.returncode != 0 and "Traceback" not in third.stderr, third.stderr
    assert "is in use by another Sigma" in third.stderr and "--state-dir" in third.stderr, third.stderr

    for u in (a, b):
        u.client.create("pods", sleeper(), "default")
    for u in (a, b):
        wait_for(lambda u=u: u.phase("sleeper") == "Running", 60, f"the sleeper of {u.state} to run")
    pid_a, pid_b = a.container_pid(), b.container_pid()
    assert f"/{a.cgroup_root}/" in cgroup_of(pid_a) and f"/{b.cgroup_root}/" in cgroup_of(pid_b)
    assert a.cgroups() and b.cgroups()

    assert a.process is not None
    a.process.send_signal(signal.SIGINT)
    a.process.wait(timeout=60)
    assert a.process.returncode == 0, a.output()[-3000:]
    assert not alive(pid_a) and a.cgroups() == []
    # B's pod never noticed.
    assert alive(pid_b), f"stopping one `sigma up` killed the other's pod:\n{b.output()[-3000:]}"
    assert b.phase("sleeper") == "Running" and b.cgroups()
    assert b.container_pid() == pid_b  # not restarted either
