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
- ``cgroup_root(i)`` names a cgroup subtree for host i's agent; ``close()`` removes it.
- ``close()`` (also on failure, via ``with``) kills what runs inside, removes the hosts'
  cgroup subtrees and deletes the namespaces.

Processes enter only the *network* namespace (``nsenter --net``), not ``ip netns exec``:
that one also makes a mount namespace and remounts /sys for the new network namespace,
which hides every cgroup mount under /sys/fs/cgroup, and an agent there finds no cgroups.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

SUBNET_PREFIX = "169.254.77."
NETNS_DIR = "/var/run/netns"  # where `ip netns add` binds each namespace
CGROUP_MOUNT = "/sys/fs/cgroup"


def netns_available() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "curl", "nsenter"):
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
        self._processes: list[tuple[int, subprocess.Popen[bytes]]] = []  # (host, process)

    def address(self, host: int) -> str:
        return f"{SUBNET_PREFIX}{host + 1}"

    def cgroup_root(self, host: int) -> str:
        """A cgroup subtree (relative to each hierarchy) for host ``host``'s agent."""
        return f"{self.hosts[host]}-cg"

    def enter(self, host: int) -> list[str]:
        """The prefix that runs a command on host ``host``: its network namespace only."""
        return ["nsenter", f"--net={NETNS_DIR}/{self.hosts[host]}", "--"]

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

    def pids(self, host: int) -> list[int]:
        """Every process in host ``host``'s network namespace (its children too)."""
        out = subprocess.run(["ip", "netns", "pids", self.hosts[host]], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_host(self, host: int) -> None:
        # Twice: a process forked while the first list was read is caught by the second.
        for _ in range(2):
            for pid in self.pids(host):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for owner, process in self._processes:
            if owner == host and process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)

    # -- running things on a host ----------------------------------------------------
    def popen(self, host: int, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out: IO[bytes]
        with open(log, "ab") as out:
            process = subprocess.Popen([*self.enter(host), *cmd], stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                       start_new_session=True)
        self._processes.append((host, process))
        return process

    def run(self, host: int, cmd: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.enter(host), *cmd], capture_output=True, timeout=timeout)

    def curl(self, host: int, url: str, timeout: float = 2.0, *, method: str = "GET", body: Any = None,
             headers: dict[str, str] | None = None, content_type: str = "application/json") -> Any:
        """``method`` ``url`` from inside host ``host`` (``body`` sent as JSON); the decoded
        JSON answer, or None when unreachable or answered with an error."""
        cmd = ["curl", "-sf", "-m", str(timeout), "-X", method, url]
        for name, value in (headers or {}).items():
            cmd += ["-H", f"{name}: {value}"]
        if body is not None:
            cmd += ["-H", f"Content-Type: {content_type}", "--data-binary", json.dumps(body)]
        done = self.run(host, cmd, timeout=timeout + 5)
        return json.loads(done.stdout) if done.returncode == 0 and done.stdout else None

    def close(self) -> None:
        for i in range(len(self.hosts)):
            if self.hosts[i] in self._created:
                self.kill_host(i)
        for _host, process in self._processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for i in range(len(self.hosts)):
            remove_cgroup_tree(self.cgroup_root(i))
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._created.clear()


def remove_cgroup_tree(rel: str, mount: str = CGROUP_MOUNT) -> None:
    """Remove ``rel`` from every hierarchy under ``mount`` (v1 and the unified one),
    deepest groups first; processes still inside are killed first."""
    if not os.path.isdir(mount):
        return
    tops = [os.path.join(mount, rel)]
    tops += [os.path.join(mount, entry.name, rel) for entry in os.scandir(mount) if entry.is_dir()]
    for top in tops:
        if not os.path.isdir(top):
            continue
        groups = [dirpath for dirpath, _dirs, _files in os.walk(top)]
        for group in reversed(groups):  # os.walk is top-down: reversed, children come first
            with contextlib.suppress(OSError), open(os.path.join(group, "cgroup.procs")) as procs:
                for pid in procs.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    os.rmdir(group)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # killed processes take a moment to leave the group
