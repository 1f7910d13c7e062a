"""host-gw: a route to every other node's pod block through that node's InternalIP, in the
agent's own network namespace.

Sigma's routes carry their own routing protocol number (``proto 77``, "sigma"): the agent
lists and removes only those, never a route someone else made. Each pass lists the Nodes
and brings the routes to what they say: a Node gone takes its route with it, a Node back
gets it again, and an agent started anew reconciles what a previous one left.

    desired_routes(nodes, own) -> {podCIDR: via}     pure
    route_diff(desired, current) -> (set, remove)    pure
    RouteSync                                        lists Nodes, runs `ip route`
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.routes")

PROTO = "77"  # the routes' protocol number: Sigma's own
PERIOD_S = 2.0

Routes = dict[str, str]  # pod CIDR -> gateway (the node's InternalIP)


def internal_ip(node: dict[str, Any]) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if isinstance(address, dict) and address.get("type") == "InternalIP":
            return str(address.get("address") or "")
    return ""


def desired_routes(nodes: list[dict[str, Any]], own: str) -> Routes:
    """Every other node's podCIDR via its InternalIP; nodes without either (not allocated yet,
    never reported) and malformed values are left out."""
    out: Routes = {}
    for node in nodes:
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        cidr, via = str(spec.get("podCIDR") or ""), internal_ip(node)
        if meta.get("name") == own or not cidr or not via or meta.get("deletionTimestamp"):
            continue
        try:
            net, gw = ipaddress.ip_network(cidr, strict=False), ipaddress.ip_address(via)
        except ValueError:
            continue
        if net.version == 4 and gw.version == 4:
            out[str(net)] = str(gw)
    return out


def route_diff(desired: Routes, current: Routes) -> tuple[Routes, list[str]]:
    """(routes to set, with their gateway; destinations to remove)."""
    to_set = {dst: via for dst, via in desired.items() if current.get(dst) != via}
    return to_set, sorted(set(current) - set(desired))


def current_routes() -> Routes:
    done = subprocess.run(["ip", "-j", "-4", "route", "show", "proto", PROTO], capture_output=True, text=True,
                          check=True)
    out: Routes = {}
    for route in json.loads(done.stdout or "[]"):
        dst = str(route.get("dst", ""))
        if dst and route.get("gateway"):
            out[str(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))] = str(route["gateway"])
    return out


def apply(to_set: Routes, to_remove: list[str]) -> list[str]:
    """Run the changes; the failures, in words (one failing route never stops the others)."""
    failures = []
    for dst, via in to_set.items():
        done = subprocess.run(["ip", "route", "replace", dst, "via", via, "proto", PROTO], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            failures.append(f"route {dst} via {via}: {done.stderr.strip()}")
        else:
            log.info("route %s via %s", dst, via)
    for dst in to_remove:
        done = subprocess.run(["ip", "route", "del", dst, "proto", PROTO], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            failures.append(f"removing route {dst}: {done.stderr.strip()}")
        else:
            log.info("route %s removed: its node is gone", dst)
    return failures


class RouteSync:
    def __init__(self, client: ApiClient, node_name: str, period_s: float = PERIOD_S,
                 on_own_node: Callable[[dict[str, Any]], None] | None = None) -> None:
        """``on_own_node``: called with this agent's own Node at each pass (its podCIDR)."""
        self.client, self.node_name, self.period_s = client, node_name, period_s
        self.on_own_node = on_own_node
        self._last_failures: list[str] = []

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.sync_once()
            stop.wait(self.period_s)

    def sync_once(self) -> None:
        try:
            nodes = self.client.list("nodes")["items"]
            own = next((n for n in nodes if n["metadata"]["name"] == self.node_name), None)
            if own is not None and self.on_own_node is not None:
                self.on_own_node(own)
            to_set, to_remove = route_diff(desired_routes(nodes, self.node_name), current_routes())
        except (ApiError, ConnectionError, OSError, ValueError, subprocess.CalledProcessError) as err:
            log.warning("pod routes: %s", err)
            return
        failures = apply(to_set, to_remove)
        if failures != self._last_failures:  # the same failure every pass is logged once
            for failure in failures:
                log.warning("pod routes: %s", failure)
        self._last_failures = failures
