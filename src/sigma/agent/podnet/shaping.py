"""The pod's traffic shaping as the ``bandwidth`` CNI plugin leaves it, read and changed with tc.

The plugin (ADD with the ``bandwidth`` runtime config) shapes on the host side only:

    pod ingress  tbf (handle 1:, root) on the pod's host-side veth: what the host sends it
    pod egress   an ifb ``bwp<hash>``; the veth's ingress qdisc redirects (u32 match-all,
                 mirred) every packet the pod sends to it, and a tbf (1:, root) there shapes

Both names are in the ADD's result (``interfaces``: the veth has no ``sandbox``, the ifb's
name starts with ``bwp``). A rate is changed with ``tc qdisc change`` on that tbf: the DEL of
the recorded configuration still finds and removes what the ADD made, which re-running the
plugin with other rates would not guarantee. The change also sets Sigma's burst: the plugin
is given kubelet's "no burst limit" (2^31-1 bits, a 256 MiB bucket), which lets a pod send
its first 256 MiB unshaped; a limit the ladder lowers must hold within a second.

Counters come from /proc/net/dev, which shows the reading process's network namespace
(/sys/class/net shows the namespace sysfs was mounted in, the machine's, for an agent that
entered its host's namespace with nsenter). On the host-side veth, received bytes are what
the pod sent, transmitted bytes what it received.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IFB_PREFIX = "bwp"
LATENCY_MS = 25  # the plugin's
MIN_BURST_BYTES = 256 * 1024  # above one GSO packet (64 KiB), which tbf would otherwise cut up
BURST_SECONDS = 0.02


@dataclass(frozen=True)
class HostLinks:
    veth: str  # shapes the pod's ingress
    ifb: str | None  # shapes the pod's egress; None: the ADD had no bandwidth config


@dataclass(frozen=True)
class Tbf:
    rate_bits: int
    burst_bytes: int


def host_links(result: Mapping[str, Any] | None, bridge: str) -> HostLinks | None:
    """The pod's host-side veth and ifb, from its CNI ADD result."""
    veth = ifb = None
    for iface in (result or {}).get("interfaces") or []:
        name = str(iface.get("name") or "")
        if iface.get("sandbox") or not name or name == bridge:
            continue
        if name.startswith(IFB_PREFIX):
            ifb = name
        elif veth is None:
            veth = name
    return HostLinks(veth, ifb) if veth else None


def burst_bytes(rate_bits: int) -> int:
    return max(MIN_BURST_BYTES, int(rate_bits / 8 * BURST_SECONDS))


def sigmas_burst(tbf: Tbf) -> bool:
    """Whether the tbf has the burst Sigma sets for its rate. The kernel keeps the bucket as a
    time in its ticks, so the bytes read back differ from the bytes written by a rounding."""
    wanted = burst_bytes(tbf.rate_bits)
    return abs(tbf.burst_bytes - wanted) <= wanted // 20


def parse_tbf(text: str) -> Tbf | None:
    """The root tbf in `tc -j qdisc show dev X` (rate in bytes per second there)."""
    try:
        qdiscs = json.loads(text or "[]")
    except ValueError:
        return None
    for q in qdiscs:
        if q.get("kind") == "tbf" and q.get("root"):
            options = q.get("options") or {}
            return Tbf(int(options.get("rate", 0)) * 8, int(options.get("burst", 0)))
    return None


def read_tbf(dev: str) -> Tbf | None:
    done = subprocess.run(["tc", "-j", "qdisc", "show", "dev", dev], capture_output=True, text=True, check=False)
    return parse_tbf(done.stdout) if done.returncode == 0 else None


def tbf_args(rate_bits: int) -> list[str]:
    return ["tbf", "rate", f"{rate_bits}bit", "burst", str(burst_bytes(rate_bits)), "latency", f"{LATENCY_MS}ms"]


def change_rate(dev: str, rate_bits: int) -> None:
    """Set the root tbf of `dev` to `rate_bits` (OSError with tc's message when it fails)."""
    cmd = ["tc", "qdisc", "change", "dev", dev, "root", "handle", "1:", *tbf_args(rate_bits)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def parse_net_dev(text: str) -> dict[str, tuple[int, int]]:
    """/proc/net/dev: interface -> (received bytes, transmitted bytes)."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) >= 9:
            out[name.strip()] = (int(fields[0]), int(fields[8]))
    return out


def read_net_dev(path: str = "/proc/net/dev") -> dict[str, tuple[int, int]]:
    with open(path) as f:
        return parse_net_dev(f.read())
