"""The service network: the ClusterIP range and the NodePort range, and the pure choices the
allocators make in them.

Kubernetes' defaults: ``--service-cluster-ip-range`` 10.96.0.0/12 (Sigma's ``--service-cidr``),
``--service-node-port-range`` 30000-32767. The range's first usable address (10.96.0.1) is
the ``default/kubernetes`` Service's, and the network and broadcast addresses are never
handed out, as kube-apiserver's bitmap allocator has it.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = "30000-32767"
# The most addresses an IPv4 service range may hold (kube-apiserver refuses a wider one: a
# /12 is 2^20; its bitmap caps at 2^20 as well, "specified --service-cluster-ip-range is too large").
MAX_RANGE_BITS = 20


@dataclass(frozen=True)
class ServiceNetwork:
    cidr: ipaddress.IPv4Network
    node_ports: tuple[int, int]  # inclusive

    @classmethod
    def parse(cls, cidr: str = DEFAULT_SERVICE_CIDR, node_ports: str = DEFAULT_NODE_PORT_RANGE,
              cluster_cidr: str | None = None) -> ServiceNetwork:
        """The network the master's flags describe; ValueError says what is wrong with them."""
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as err:
            raise ValueError(f"--service-cidr {cidr!r} is not a valid CIDR: {err}") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"--service-cidr {cidr!r}: only IPv4 service ranges are supported")
        host_bits = 32 - net.prefixlen
        if host_bits > MAX_RANGE_BITS:
            raise ValueError(f"--service-cidr {cidr!r} is too large (at most a /{32 - MAX_RANGE_BITS})")
        if host_bits < 3:
            raise ValueError(f"--service-cidr {cidr!r} is too small (at least a /29)")
        if cluster_cidr:
            pods = ipaddress.ip_network(cluster_cidr, strict=False)
            if pods.version == 4 and net.overlaps(pods):
                raise ValueError(f"--service-cidr {cidr} overlaps the pod network {cluster_cidr}")
        low_text, sep, high_text = node_ports.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if sep else low
        except ValueError:
            raise ValueError(f"--service-node-port-range {node_ports!r} must be LOW-HIGH (e.g. "
                             f"{DEFAULT_NODE_PORT_RANGE})") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"--service-node-port-range {node_ports!r}: need 1 <= LOW <= HIGH <= 65535")
        return cls(net, (low, high))

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ServiceNetwork:
        return cls.parse(str(options.get("service_cidr") or DEFAULT_SERVICE_CIDR),
                         str(options.get("service_node_port_range") or DEFAULT_NODE_PORT_RANGE),
                         options.get("cluster_cidr") or None)

    @property
    def kubernetes_ip(self) -> str:
        """The first usable address: the ``default/kubernetes`` Service's."""
        return str(self.cidr.network_address + 1)

    @property
    def node_port_text(self) -> str:
        return f"{self.node_ports[0]}-{self.node_ports[1]}"

    def ip_in_range(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return (addr in self.cidr and addr != self.cidr.network_address
                and addr != self.cidr.broadcast_address)

    def port_in_range(self, port: int) -> bool:
        return self.node_ports[0] <= port <= self.node_ports[1]

    def ip_range_error(self) -> str:
        return f"provided IP is not in the valid range. The range of valid IPs is {self.cidr}"

    def port_range_error(self) -> str:
        return f"provided port is not in the valid range. The range of valid ports is {self.node_port_text}"


def pick_ip(net: ServiceNetwork, used: Collection[str], rng: random.Random | None = None) -> str | None:
    """A free address of the range (not the reserved first one), or None when it is full.

    Random, like kube-apiserver's allocator, with the lower part of the range (the first 1/16,
    at most 256) kept for addresses people ask for by hand (the DNS Service's 10.96.0.10...)."""
    rng = rng or random.Random()
    first = int(net.cidr.network_address) + 2  # after the network address and kubernetes_ip
    last = int(net.cidr.broadcast_address) - 1
    size = last - first + 1
    static = min(size // 16, 256)
    taken = {int(ipaddress.IPv4Address(u)) for u in used if _v4(u)}
    for lo, hi in ((first + static, last), (first, first + static - 1)):
        found = _pick_in(lo, hi, taken, rng)
        if found is not None:
            return str(ipaddress.IPv4Address(found))
    return None


def pick_port(net: ServiceNetwork, used: Collection[int], rng: random.Random | None = None) -> int | None:
    """A free NodePort, or None when the range is full."""
    return _pick_in(net.node_ports[0], net.node_ports[1], set(used), rng or random.Random())


def _pick_in(lo: int, hi: int, used: set[int], rng: random.Random) -> int | None:
    if hi < lo:
        return None
    start = rng.randint(lo, hi)
    span = hi - lo + 1
    for offset in range(span):  # from a random start, the first free one
        value = lo + (start - lo + offset) % span
        if value not in used:
            return value
    return None


def _v4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False
