"""The pod bridge made up front: ``sigma0`` with the node's gateway address, as soon as the
Node has its podCIDR, rather than at the first pod's CNI ADD (which is when the bridge
plugin would make it). The cluster DNS listens on the gateway address, and a node that
runs no pod yet must still answer there and route to its pod CIDR.

The bridge plugin finds the bridge and the address in place and keeps them.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


def ensure_bridge(name: str, pod_cidr: str) -> str | None:
    """Create bridge ``name`` (if missing), give it the first address of ``pod_cidr`` and
    bring it up. None when done, else why not."""
    net = ipaddress.ip_network(pod_cidr, strict=False)
    address = f"{net.network_address + 1}/{net.prefixlen}"
    if _ip("link", "show", "dev", name).returncode != 0:
        made = _ip("link", "add", name, "type", "bridge")
        if made.returncode != 0 and "exists" not in made.stderr:
            return f"ip link add {name}: {made.stderr.strip()}"
    shown = _ip("-j", "addr", "show", "dev", name)
    present = {f"{a['local']}/{a['prefixlen']}" for link in json.loads(shown.stdout or "[]")
               for a in link.get("addr_info", []) if a.get("family") == "inet"}
    if address not in present:
        added = _ip("addr", "add", address, "dev", name)
        if added.returncode != 0 and "exists" not in added.stderr:
            return f"ip addr add {address} dev {name}: {added.stderr.strip()}"
    up = _ip("link", "set", name, "up")
    return None if up.returncode == 0 else f"ip link set {name} up: {up.stderr.strip()}"
