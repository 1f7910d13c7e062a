"""The hostPort table's shell: the pods' mappings kept in memory, ``nft -f`` when they change.

``HostPortTable`` holds each pod's mappings (loaded from the sandbox records at the first
call, so an agent restart reconciles the table with the pods it still has) and rewrites
``ip sigma-hostports`` whenever the set changes. A mapping another pod of the node already
holds is refused (the scheduler's NodePorts filter keeps that from happening, a pod bound
by ``nodeName`` skips the scheduler). Pods are set up by several workers at once: a claim
checks and records under one lock, so two of them never both get one port.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

from sigma.agent.podnet import conflist
from sigma.agent.podnet.hostports import HostPort, HostPortError, render

log = logging.getLogger("sigma.agent.podnet")


class HostPortTable:
    def __init__(self, sysctl_root: str = "/proc/sys/net/ipv4/conf") -> None:
        self.by_pod: dict[str, tuple[str, list[HostPort]]] = {}  # uid -> (ns/name, mappings)
        self.sysctl_root = sysctl_root
        self._applied: str | None = None  # the script the kernel holds; None: unknown
        self._lock = threading.Lock()

    def claim(self, uid: str, name: str, mappings: list[HostPort]) -> None:
        """Hold ``mappings``' ports for pod ``uid`` (its address not known yet: nothing is
        written); HostPortError when another pod of this node holds one of them."""
        with self._lock:
            self.check(uid, mappings)
            self.set(uid, name, mappings)

    def check(self, uid: str, mappings: list[HostPort]) -> None:
        """HostPortError when another pod of this node holds one of ``mappings``' ports."""
        for other, (name, theirs) in self.by_pod.items():
            if other == uid:
                continue
            for m in mappings:
                for t in theirs:
                    if t.protocol == m.protocol and t.host_port == m.host_port and (
                            not t.host_ip or not m.host_ip or t.host_ip == m.host_ip):
                        raise HostPortError(f"hostPort {m.host_port}/{m.protocol.upper()} is taken by pod {name} "
                                            "on this node")

    def set(self, uid: str, name: str, mappings: list[HostPort]) -> None:
        if mappings:
            self.by_pod[uid] = (name, mappings)
        else:
            self.by_pod.pop(uid, None)

    def apply(self, pod_cidr: str | None) -> None:
        """Bring the kernel's table to the mappings held (nothing when it holds them already)."""
        with self._lock:
            self._apply(pod_cidr)

    def _apply(self, pod_cidr: str | None) -> None:
        mappings = [m for _, ms in list(self.by_pod.values()) for m in ms if m.pod_ip]  # claimed only: not yet
        script = render(mappings, pod_cidr)
        if script == self._applied:
            return
        localnet = any(not m.host_ip for m in mappings)
        if not localnet:
            self._route_localnet(False)  # before the table and its guard go
        try:
            out = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=30,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            self._applied = None
            log.error("hostPort table: nft could not run: %s", err)
            return
        if out.returncode != 0:
            self._applied = None
            log.error("hostPort table refused by nft: %s", out.stderr.strip()[-1000:])
            return
        self._applied = script
        if localnet:
            self._route_localnet(True)  # after the table's guard is in place

    def _route_localnet(self, on: bool) -> None:
        # 127.0.0.1:hostPort leaves through the pod bridge with a loopback source until it is
        # masqueraded: without route_localnet the kernel drops it as a martian. Set on
        # Sigma's own bridge only.
        path = os.path.join(self.sysctl_root, conflist.BRIDGE, "route_localnet")
        try:
            with open(path, "w") as f:
                f.write("1\n" if on else "0\n")
        except OSError as err:
            log.debug("route_localnet on %s: %s (localhost hostPorts will not work)", conflist.BRIDGE, err)
