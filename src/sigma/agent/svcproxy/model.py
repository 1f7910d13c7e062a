"""Pure: Services and EndpointSlices (dicts, as the API returns them) -> service ports.

Kubernetes semantics kept here:
- an EndpointSlice belongs to the Service named by its ``kubernetes.io/service-name`` label,
  in its own namespace; only ``addressType: IPv4`` slices are used (the table is ``ip``);
- a service port finds its endpoints' port in each slice by port name and protocol, so a
  named targetPort may resolve to different numbers in different slices;
- endpoints with ``conditions.ready`` true (absent means true) are used; when a service port
  has none, those both serving and terminating are (as kube-proxy does, so a rolling update
  does not drop connections while the last pods shut down);
- headless (clusterIP None) and ExternalName services get no rules;
- ``externalTrafficPolicy: Local`` (NodePort, LoadBalancer) sends traffic from outside the
  cluster only to this node's endpoints (``nodeName``) and keeps the client's address;
  ``internalTrafficPolicy: Local`` sends ClusterIP traffic only to this node's endpoints.
One malformed object is skipped (and named by ``problems``); it never stops the rest.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from functools import cached_property
from socket import AF_INET, inet_pton
from typing import Any, NamedTuple

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEFAULT_AFFINITY_TIMEOUT_S = 10800  # Kubernetes' sessionAffinityConfig.clientIP.timeoutSeconds default


class Endpoint(NamedTuple):
    """Ordered by address, then port. A tuple: made for every endpoint of every Service on
    a full sync, where a frozen dataclass's construction and comparison cost several times more."""

    ip: str
    port: int


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str  # the service port's name ("" for a single unnamed port)
    protocol: str  # tcp | udp | sctp
    port: int
    cluster_ips: tuple[str, ...]  # the ClusterIP and any externalIPs: all matched on this port
    cluster_ip: str  # the ClusterIP itself (masquerade of traffic from outside the cluster CIDR)
    node_port: int | None
    endpoints: tuple[Endpoint, ...]  # sorted; empty: rejected
    affinity_timeout: int | None  # seconds of ClientIP affinity, None without
    # This node's endpoints, for the Local traffic policies: external (NodePort traffic from
    # outside the cluster) and internal (ClusterIP traffic). None: the policy is Cluster.
    external_local: tuple[Endpoint, ...] | None = None
    internal_local: tuple[Endpoint, ...] | None = None

    @cached_property  # read for every chain, map key and set name of the port
    def key(self) -> str:
        """Unique per service port, readable in `nft list`: ns/name/tcp/portname."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or self.port}"


@dataclass
class Model:
    ports: list[ServicePort] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per object skipped


def endpoint_ready(endpoint: dict[str, Any]) -> bool:
    return (endpoint.get("conditions") or {}).get("ready") is not False


def endpoint_serving_terminating(endpoint: dict[str, Any]) -> bool:
    cond = endpoint.get("conditions") or {}
    serving = cond.get("serving")
    if serving is None:
        serving = cond.get("ready") is not False
    return bool(serving) and cond.get("terminating") is True


def slices_by_service(slices: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service and s.get("addressType", "IPv4") == "IPv4":
            out.setdefault((meta.get("namespace") or "default", service), []).append(s)
    return out


def _valid_ipv4(text: Any) -> bool:
    # inet_pton takes exactly the dotted quad (as ipaddress does) at a fraction of the cost:
    # a full sync checks every endpoint address of every Service.
    if not isinstance(text, str):
        return False
    try:
        socket.inet_pton(socket.AF_INET, text)
        return True
    except OSError:
        return False


def port_endpoints(slices: list[dict[str, Any]], port_name: str, protocol: str,
                   node_name: str | None = None) -> tuple[Endpoint, ...]:
    """The endpoints of one service port: ready ones, else serving-and-terminating ones;
    with ``node_name``, only those on that node."""
    ready: set[tuple[str, int]] = set()
    fallback: set[tuple[str, int]] = set()
    for s in slices:
        number = next((p.get("port") for p in s.get("ports") or []
                       if (p.get("name") or "") == port_name and PROTOCOLS.get(p.get("protocol") or "TCP") == protocol),
                      None)
        if not isinstance(number, int) or not 0 < number < 65536:
            continue  # this slice does not carry the port (or names it differently)
        for ep in s.get("endpoints") or []:
            if node_name is not None and ep.get("nodeName") != node_name:
                continue
            # endpoint_ready inline: this loop runs for every endpoint of every Service.
            if (ep.get("conditions") or {}).get("ready") is not False:
                into = ready
            elif endpoint_serving_terminating(ep):
                into = fallback
            else:
                continue
            addresses = ep.get("addresses")
            if addresses:
                ip = addresses[0]  # Kubernetes: consumers use the first address
                if isinstance(ip, str):
                    try:  # _valid_ipv4 inline
                        inet_pton(AF_INET, ip)
                    except OSError:
                        continue
                    into.add((ip, number))
    return tuple(map(Endpoint._make, sorted(ready or fallback)))


def service_ports(svc: dict[str, Any], slices: list[dict[str, Any]], node_name: str = "") -> list[ServicePort]:
    """The ports of one Service with their endpoints from its slices (``node_name``: this
    node, for the Local traffic policies); raises on a malformed one."""
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ns, name = meta.get("namespace") or "default", meta["name"]
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") == "ExternalName" or cluster_ip in ("", "None") or not _valid_ipv4(cluster_ip):
        return []
    ips = [cluster_ip, *sorted(ip for ip in spec.get("externalIPs") or [] if _valid_ipv4(ip))]
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT_S)
    out = []
    for p in spec.get("ports") or []:
        protocol = PROTOCOLS.get(p.get("protocol") or "TCP")
        port = p.get("port")
        if protocol is None or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port {p!r} has no valid port number or protocol")
        node_port = p.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else None
        port_name = p.get("name") or ""
        node_port = node_port if isinstance(node_port, int) and node_port > 0 else None
        external_local = internal_local = None
        if node_port is not None and spec.get("externalTrafficPolicy") == "Local":
            external_local = port_endpoints(slices, port_name, protocol, node_name)
        if spec.get("internalTrafficPolicy") == "Local":
            internal_local = port_endpoints(slices, port_name, protocol, node_name)
        out.append(ServicePort(ns, name, port_name, protocol, port, tuple(dict.fromkeys(ips)), cluster_ip, node_port,
                               port_endpoints(slices, port_name, protocol), affinity, external_local, internal_local))
    return out


def build_model(services: list[dict[str, Any]], slices: list[dict[str, Any]], node_name: str = "") -> Model:
    """Every service port of every Service, sorted by key (the rules come out in that order)."""
    model = Model()
    by_service = slices_by_service(slices)
    for svc in services:
        meta = svc.get("metadata") or {}
        try:
            model.ports += service_ports(svc, by_service.get((meta.get("namespace") or "default",
                                                               meta.get("name") or ""), []), node_name)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            model.problems.append(f"service {meta.get('namespace')}/{meta.get('name')}: {err}")
    model.ports.sort(key=lambda p: p.key)
    return model
