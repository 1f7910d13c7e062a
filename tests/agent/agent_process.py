"""A real `sigma agent` process joined to a real master, for the tests of node credentials
and of the agent's HTTP server. It runs on a private cgroup subtree and state directory and
is stopped (pods drained, subtree removed) by ``stop``, also when a test fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sigma.agent.cgroups import CgroupTree


class AgentProcess:
    def __init__(self, master_url: str, state: Path, node: str, *, token_file: Path | None = None,
                 env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> None:
        self.master_url, self.state, self.node = master_url, state, node
        self.cgroup_root = f"sigma-test-{uuid.uuid4().hex[:8]}"
        self.log = state.parent / f"agent-{node}.log"
        # No master URL: the agent finds the master in the credential its state directory keeps.
        master = ["--master", master_url] if master_url else []
        args = [sys.executable, "-m", "sigma", "agent", *master, "--node-name", node,
                "--state-dir", str(state), "--listen", "127.0.0.1:0", "--address", "127.0.0.1",
                "--cgroup-root", self.cgroup_root, "--image-dir", str(state.parent / f"images-{node}"),
                "--no-p2p", "--lease-interval", "1", "--drain-on-exit"]
        if token_file is not None:
            args += ["--bootstrap-token-file", str(token_file)]
        self.args = [*args, *extra]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        return self

    def cmdline(self) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def wait_node(self, admin: httpx.Client, timeout: float = 60) -> dict[str, Any]:
        """The agent's Node once it publishes its endpoint."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the agent exited with {self.process.returncode}:\n{self.log.read_text()}")
            r = admin.get(f"/api/v1/nodes/{self.node}")
            if r.status_code == 200 and (r.json().get("status") or {}).get("daemonEndpoints"):
                return dict(r.json())
            time.sleep(0.2)
        raise AssertionError(f"node {self.node} did not register:\n{self.log.read_text()}")

    def port(self, admin: httpx.Client) -> int:
        node = admin.get(f"/api/v1/nodes/{self.node}").json()
        return int(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
        finally:
            CgroupTree(root=self.cgroup_root).remove_all()
