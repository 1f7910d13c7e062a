"""Separate hosts for tests: network namespaces joined by a switch, all created here.

Layout for ``Network(hosts=N)``, names ``sigma-t-<random>-…`` so parallel runs never meet:

    host h0 (netns) eth0 169.254.77.1/16 ─veth─ p0 ┐
    host h1 (netns) eth0 169.254.77.2/16 ─veth─ p1 ┼─ bridge br0 in the switch netns "sw"
    ...                                            ┘

Everything lives inside namespaces this harness creates (the bridge too), with IPv4
link-local addresses: nothing touches the machine's own interfaces or routes.

- ``cut(i)`` / ``restore(i)`` take host i's switch port down/up: its packets are dropped,
  as when a cable is pulled (TCP connections stall rather than reset).
- ``kill_host(i)`` kills every process in host i's namespace (a machine dying).
- ``popen(i, cmd)`` runs a process on host i; ``curl(i, …)`` makes an HTTP call from it,
  since the test itself runs outside every namespace.
- ``close()`` (also on failure, via ``with``) kills what runs inside and deletes the namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import IO, Any

SUBNET_PREFIX = "169.254.77."


def netns_available() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "curl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Network:
    def __init__(self, hosts: int) -> None:
        self.prefix = f"sigma-t-{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = [f"{self.prefix}-h{i}" for i in range(hosts)]
        self._created: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    def address(self, host: int) -> str:
        return f"{SUBNET_PREFIX}{host + 1}"

    def __enter__(self) -> Network:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None) -> None:
        self.close()

    def _build(self) -> None:
        for ns in (self.switch, *self.hosts):
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts):
            # Created straight inside the two namespaces: the veth never exists in ours.
            _ip("link", "add", "name", "eth0", "netns", ns, "type", "veth",
                "peer", "name", f"p{i}", "netns", self.switch)
            _ip("-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/16", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    # -- faults --------------------------------------------------------------------
    def cut(self, host: int) -> None:
        _ip("-n", self.switch, "link", "set", f"p{host}", "down")

    def restore(self, host: int) -> None:
        _ip("-n", self.switch, "link", "set", f"p{host}", "up")

    def kill_host(self, host: int) -> None:
        pids = subprocess.run(["ip", "netns", "pids", self.hosts[host]], capture_output=True, text=True).stdout
        for pid in pids.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for process in self._processes:
            if process.poll() is None and process.args[3] == self.hosts[host]:  # type: ignore[index]
                process.wait(timeout=5)

    # -- running things on a host ----------------------------------------------------
    def popen(self, host: int, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out: IO[bytes]
        with open(log, "ab") as out:
            process = subprocess.Popen(["ip", "netns", "exec", self.hosts[host], *cmd], stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                       start_new_session=True)
        self._processes.append(process)
        return process

    def curl(self, host: int, url: str, timeout: float = 2.0) -> Any:
        """GET ``url`` from inside host ``host``; the decoded JSON, or None when unreachable."""
        done = subprocess.run(["ip", "netns", "exec", self.hosts[host], "curl", "-sf", "-m", str(timeout), url],
                              capture_output=True)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def close(self) -> None:
        for i in range(len(self.hosts)):
            if self.hosts[i] in self._created:
                self.kill_host(i)
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._created.clear()
