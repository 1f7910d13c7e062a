"""Separate hosts on one machine: network namespaces joined by a switch, all created here.
Used by the multi-host tests (tests/netns.py) and by `sigma bench p2p`.

Layout for ``Network(hosts=N)``, names ``<prefix>-<random>-…`` so parallel runs never meet:

    host h0 (netns) eth0 169.254.77.1/16 ─veth─ p0 ┐
    host h1 (netns) eth0 169.254.77.2/16 ─veth─ p1 ┼─ bridge br0 in the switch netns "sw"
    ...                                            ┘

Everything lives inside namespaces this module creates (the bridge too), with IPv4
link-local addresses: nothing touches the machine's own interfaces or routes.

- ``shape(i, mbit)`` limits host i's link with tbf both ways: its upload on eth0 (the host
  end) and its download on p<i> (the switch end, where the bridge sends its packets).
- ``cut(i)`` / ``restore(i)`` take host i's switch port down/up: its packets are dropped,
  as when a cable is pulled (TCP connections stall rather than reset).
- ``kill_host(i)`` kills every process in host i's namespace (a machine dying).
- ``popen(i, cmd)`` runs a process on host i; ``curl(i, …)`` makes an HTTP call from it,
  since the caller itself runs outside every namespace.
- ``close()`` (also on failure, via ``with``) kills what runs inside and deletes the
  namespaces; their veths, qdiscs and the bridge go with them.

Processes enter only the *network* namespace (``nsenter --net``), not ``ip netns exec``:
that one also makes a mount namespace and remounts /sys for the new network namespace,
which hides every cgroup mount under /sys/fs/cgroup, and an agent there finds no cgroups.
``nsenter`` execs the command (no fork for a network namespace), so a Popen's pid is the
process itself.
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


def netns_available(tools: tuple[str, ...] = ("ip", "curl", "nsenter")) -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _tc(netns: str, *args: str) -> None:
    subprocess.run(["nsenter", f"--net={NETNS_DIR}/{netns}", "--", "tc", *args], check=True, capture_output=True)


class Network:
    def __init__(self, hosts: int, prefix: str = "sigma-t") -> None:
        if not 0 < hosts < 250:
            raise ValueError("between 1 and 249 hosts (one /24 of link-local addresses)")
        self.prefix = f"{prefix}-{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = [f"{self.prefix}-h{i}" for i in range(hosts)]
        self._created: list[str] = []
        self._processes: list[tuple[int, subprocess.Popen[bytes]]] = []  # (host, process)

    def address(self, host: int) -> str:
        return f"{SUBNET_PREFIX}{host + 1}"

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
        self._plain_switch()
        for i, ns in enumerate(self.hosts):
            # Created straight inside the two namespaces: the veth never exists in ours.
            _ip("link", "add", "name", "eth0", "netns", ns, "type", "veth",
                "peer", "name", f"p{i}", "netns", self.switch)
            _ip("-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/16", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def _plain_switch(self) -> None:
        """A switch forwards frames; it does not run them through iptables. Where br_netfilter
        is loaded (Docker, Kubernetes) every bridged packet would go through the netfilter
        hooks, which costs the CPU that a lab of many hosts on one machine is short of. Its
        switches (net.bridge.bridge-nf-call-*) are per network namespace: off in ours."""
        for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"):
            knob = f"/proc/sys/net/bridge/{name}"
            subprocess.run([*self._in(self.switch), "sh", "-c", f"[ ! -e {knob} ] || echo 0 > {knob}"],
                           check=True, capture_output=True)

    def _in(self, netns: str) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR}/{netns}", "--"]

    # -- links ---------------------------------------------------------------------
    def shape(self, host: int, mbit: float, burst: int = 256 * 1024, latency_ms: int = 100) -> None:
        """Limit host ``host`` to ``mbit`` each way with tbf (egress on its eth0, ingress on
        its switch port). The burst must exceed one GSO packet (64 KiB): tbf cuts a bigger
        packet into MTU segments, which costs the CPU far more than the shaping itself."""
        spec = ["tbf", "rate", f"{mbit}mbit", "burst", str(burst), "latency", f"{latency_ms}ms"]
        _tc(self.hosts[host], "qdisc", "replace", "dev", "eth0", "root", *spec)
        _tc(self.switch, "qdisc", "replace", "dev", f"p{host}", "root", *spec)

    def counters(self, host: int) -> dict[str, int]:
        """Host ``host``'s eth0 byte counters: {"tx_bytes", "rx_bytes"} (headers included)."""
        out = subprocess.run(["ip", "-n", self.hosts[host], "-s", "-j", "link", "show", "eth0"],
                             check=True, capture_output=True, text=True).stdout
        stats = json.loads(out)[0]["stats64"]
        return {"tx_bytes": int(stats["tx"]["bytes"]), "rx_bytes": int(stats["rx"]["bytes"])}

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
    def popen(self, host: int, cmd: list[str], log: Path | None = None, env: dict[str, str] | None = None,
              pipes: bool = False) -> subprocess.Popen[bytes]:
        """Run ``cmd`` on host ``host`` in a session of its own (a Ctrl-C meant for the
        caller does not reach it; close() does). Output goes to ``log``; with ``pipes`` the
        caller talks to it over stdin/stdout instead (stderr still goes to ``log``)."""
        out: IO[bytes] | int
        with open(log or os.devnull, "ab") as out:
            process = subprocess.Popen([*self.enter(host), *cmd],
                                       stdout=subprocess.PIPE if pipes else out,
                                       stderr=out if pipes else subprocess.STDOUT,
                                       stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
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
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._created.clear()
