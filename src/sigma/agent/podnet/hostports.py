"""Pure: containers' ``ports[].hostPort`` -> Sigma's nft table ``ip sigma-hostports``.

Debian's ``portmap`` CNI plugin implements hostPort with iptables only, in the host's own
chains; Sigma keeps to tables of its own, so the mapping is done here, the way portmap does
it (its defaults: ``snat`` on):

- a connection to one of this node's addresses (``fib daddr type local``; only the given
  address when ``hostIP`` is set) on the hostPort and protocol is DNATed to
  podIP:containerPort, in prerouting (from other hosts and from pods) and in output (from
  the node itself);
- with no hostIP, ``127.0.0.1:hostPort`` works as well from the node (portmap's localhost
  mapping): the packet leaves through the pod bridge with a loopback source, which needs
  ``route_localnet`` on the bridge, and is masqueraded;
- a connection from a pod of this node (the pod itself: hairpin) is masqueraded, so the
  reply comes back through the node and is un-NATed instead of going straight over the
  bridge with the pod's own address.

The whole table is rewritten at every change (one ``nft -f`` transaction, a few rules per
pod): it is small, and a rewrite from the sandbox records is also what reconciles it after
an agent restart.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sigma.agent.podnet.conflist import BRIDGE

TABLE = "sigma-hostports"
FAMILY = "ip"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
ANY_ADDRESS = ("", "0.0.0.0")  # hostIP unset or the wildcard: every address of the node


class HostPortError(ValueError):
    """A hostPort this node cannot give; the message names the field."""


@dataclass(frozen=True, order=True)
class HostPort:
    protocol: str  # tcp | udp | sctp
    host_ip: str  # "" for every address of the node
    host_port: int
    pod_ip: str
    container_port: int


@dataclass(frozen=True)
class Reserved:
    """Ports of the node a pod may not take: the agent's own (its API, metrics...) and the
    Services' NodePort range, whose connections the service proxy owns."""

    agent_ports: tuple[int, ...] = ()
    node_ports: tuple[int, int] | None = (30000, 32767)


def pod_host_ports(pod: dict[str, Any], pod_ip: str, reserved: Reserved = Reserved()) -> list[HostPort]:
    """The pod's hostPort mappings to ``pod_ip``; HostPortError naming the first field this
    node refuses (out of 1..65535, an unknown protocol, a reserved port, an IPv6 hostIP, or
    the same port twice in the pod)."""
    spec = pod.get("spec") or {}
    out: list[HostPort] = []
    seen: set[tuple[str, str, int]] = set()
    for i, container in enumerate(spec.get("containers") or []):
        for j, port in enumerate(container.get("ports") or []):
            host_port = port.get("hostPort")
            if not host_port:
                continue  # 0 or absent: no mapping
            where = f"spec.containers[{i}].ports[{j}]"
            if not isinstance(host_port, int) or not 0 < host_port < 65536:
                raise HostPortError(f"{where}.hostPort: {host_port!r} is not a port number (1-65535)")
            protocol = PROTOCOLS.get(port.get("protocol") or "TCP")
            if protocol is None:
                raise HostPortError(f"{where}.protocol: {port.get('protocol')!r} is not TCP, UDP or SCTP")
            container_port = port.get("containerPort")
            if not isinstance(container_port, int) or not 0 < container_port < 65536:
                raise HostPortError(f"{where}.containerPort: {container_port!r} is not a port number (1-65535)")
            host_ip = str(port.get("hostIP") or "")
            host_ip = "" if host_ip in ANY_ADDRESS else host_ip
            if host_ip:
                try:
                    ipaddress.IPv4Address(host_ip)
                except ValueError:
                    raise HostPortError(f"{where}.hostIP: {host_ip!r} is not an IPv4 address "
                                        "(the pod network is IPv4)") from None
            if host_port in reserved.agent_ports:
                raise HostPortError(f"{where}.hostPort: {host_port} is the node agent's own port")
            low_high = reserved.node_ports
            if low_high is not None and low_high[0] <= host_port <= low_high[1]:
                raise HostPortError(f"{where}.hostPort: {host_port} is in the Services' NodePort range "
                                    f"{low_high[0]}-{low_high[1]}")
            key = (protocol, host_ip, host_port)
            if key in seen:
                raise HostPortError(f"{where}.hostPort: {host_port}/{protocol} is given twice in the pod")
            seen.add(key)
            out.append(HostPort(protocol, host_ip, host_port, pod_ip, container_port))
    return out


def render(mappings: list[HostPort], pod_cidr: str | None) -> str:
    """The whole table for these mappings (replacing any table of that name, in one
    transaction); none: the table is removed."""
    t = f"{FAMILY} {TABLE}"
    head = f"table {t} {{}}\ndelete table {t}\n"
    if not mappings:
        return head
    dnat, masq = [], []
    for m in sorted(set(mappings)):
        match = f"ip daddr {m.host_ip}" if m.host_ip else "fib daddr type local"
        target = f"{m.pod_ip}:{m.container_port}"
        dnat.append(f"\t\t{match} {m.protocol} dport {m.host_port} dnat to {target}")
        to_pod = f"ip daddr {m.pod_ip} {m.protocol} dport {m.container_port}"
        masq.append(f"\t\tct status dnat ip saddr 127.0.0.0/8 {to_pod} masquerade")
        # From this node's pods (the pod itself included): the reply must come back through
        # the node to be un-NATed, not straight over the bridge.
        source = pod_cidr or f"{m.pod_ip}/32"
        masq.append(f"\t\tct status dnat ip saddr {source} {to_pod} masquerade")
    guard = []
    if any(not m.host_ip for m in mappings):
        # 127.0.0.1:hostPort needs route_localnet on the pod bridge, which would also let a
        # pod send to the node's own loopback services (CVE-2020-8558): only replies of
        # connections the node made pass; a new packet from the bridge to 127/8 is dropped.
        guard = ["\tchain localnet-guard {", "\t\ttype filter hook input priority -1; policy accept;",
                 f'\t\tiifname "{BRIDGE}" ip daddr 127.0.0.0/8 ct state != {{ established, related }} drop',
                 "\t}"]
    lines = [f"table {t} {{", *guard,
             "\tchain hostports {", *dnat, "\t}",
             # dstnat - 1: before the service proxy's chains (hostPorts and Service ports do
             # not overlap, the NodePort range is refused; the order only makes it certain).
             "\tchain prerouting {", "\t\ttype nat hook prerouting priority dstnat - 1; policy accept;",
             "\t\tfib daddr type local jump hostports", *_explicit_ips(mappings), "\t}",
             "\tchain output {", "\t\ttype nat hook output priority -101; policy accept;",
             "\t\tfib daddr type local jump hostports", *_explicit_ips(mappings), "\t}",
             "\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat - 1; policy accept;",
             *masq, "\t}",
             "}"]
    return head + "\n".join(lines) + "\n"


def _explicit_ips(mappings: list[HostPort]) -> list[str]:
    """A hostIP that is not (yet) one of the node's own addresses is still matched, as
    portmap matches ``-d hostIP`` whatever the node holds."""
    ips = sorted({m.host_ip for m in mappings if m.host_ip})
    if not ips:
        return []
    return [f"\t\tfib daddr type != local ip daddr {{ {', '.join(ips)} }} jump hostports"]
