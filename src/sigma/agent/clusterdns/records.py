"""Pure: a query name -> the answer, from the Services and EndpointSlices (Kubernetes' DNS spec).

- ``SVC.NS.svc.DOMAIN``: A of the ClusterIP; for a headless Service (clusterIP None), A of
  every ready endpoint; for ExternalName, a CNAME;
- ``HOSTNAME.SVC.NS.svc.DOMAIN``: A of the endpoint with that hostname (headless);
- ``_PORT._PROTO.SVC.NS.svc.DOMAIN``: SRV of each named port (target: the service name, or
  each endpoint's own name for a headless service);
- ``A-B-C-D.NS.pod.DOMAIN``: A of that address (CoreDNS' "pods insecure" mode: the agent
  does not watch the cluster's pods);
- AAAA (and any other type) of an existing name: no data, NOERROR; a name under the domain
  that does not exist: NXDOMAIN.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.svcproxy.model import PROTOCOLS, endpoint_ready, slices_by_service


@dataclass(frozen=True)
class Record:
    rtype: str  # A | SRV | CNAME
    value: str  # an address, a target name, or "PRIORITY WEIGHT PORT TARGET" for SRV


@dataclass
class Zone:
    domain: str  # "cluster.local"
    names: dict[str, list[Record]] = field(default_factory=dict)  # lower-case FQDN without the dot

    def add(self, name: str, record: Record | None = None) -> None:
        records = self.names.setdefault(name.lower(), [])
        if record is not None and record not in records:
            records.append(record)


def _ipv4(text: Any) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


def build_zone(services: list[dict[str, Any]], slices: list[dict[str, Any]], domain: str) -> Zone:
    zone = Zone(domain.strip(".").lower())
    by_service = slices_by_service(slices)
    for svc in services:
        try:
            _add_service(zone, svc, by_service)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # one malformed Service costs only its own names
    return zone


def _add_service(zone: Zone, svc: dict[str, Any], by_service: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    meta, spec = svc["metadata"], svc.get("spec") or {}
    ns, name = meta.get("namespace") or "default", meta["name"]
    fqdn = f"{name}.{ns}.svc.{zone.domain}"
    zone.add(f"{ns}.svc.{zone.domain}")  # the namespace's own name exists (NOERROR, no data)
    if spec.get("type") == "ExternalName":
        zone.add(fqdn, Record("CNAME", str(spec["externalName"]).rstrip(".")))
        return
    headless = spec.get("clusterIP") == "None"
    slices = by_service.get((ns, name), [])
    endpoints = [(ep, s) for s in slices for ep in s.get("endpoints") or [] if endpoint_ready(ep)]
    zone.add(fqdn)
    if headless:
        for ep, _ in endpoints:
            ip = _ipv4((ep.get("addresses") or [None])[0])
            if ip is None:
                continue
            zone.add(fqdn, Record("A", ip))
            if ep.get("hostname"):
                zone.add(f"{ep['hostname']}.{fqdn}", Record("A", ip))
    elif (ip := _ipv4(spec.get("clusterIP"))) is not None:
        zone.add(fqdn, Record("A", ip))
    for port in spec.get("ports") or []:
        if not port.get("name"):
            continue  # SRV names need a port name
        proto = PROTOCOLS.get(port.get("protocol") or "TCP", "tcp")
        srv = f"_{port['name']}._{proto}.{fqdn}"
        if not headless:
            zone.add(srv, Record("SRV", f"0 100 {int(port['port'])} {fqdn}"))
            continue
        zone.add(srv)
        for ep, s in endpoints:
            number = next((p.get("port") for p in s.get("ports") or [] if p.get("name") == port["name"]), None)
            ip = _ipv4((ep.get("addresses") or [None])[0])
            if number is None or ip is None:
                continue
            target = f"{ep.get('hostname') or ip.replace('.', '-')}.{fqdn}"
            zone.add(target, Record("A", ip))
            zone.add(srv, Record("SRV", f"0 100 {int(number)} {target}"))


def lookup(zone: Zone, qname: str) -> list[Record] | None:
    """The records of a name inside the domain, [] for a name that exists without records
    (NOERROR, no data), None for one that does not (NXDOMAIN)."""
    name = qname.rstrip(".").lower()
    found = zone.names.get(name)
    if found is not None:
        return found
    pod = _pod_record(zone, name)
    if pod is not None:
        return [pod]
    # Kubernetes' structure: the domain, svc.DOMAIN, pod.DOMAIN exist; so does any name
    # with existing names below it (an "empty non-terminal").
    if name in (zone.domain, f"svc.{zone.domain}", f"pod.{zone.domain}"):
        return []
    suffix = "." + name
    if any(n.endswith(suffix) for n in zone.names):
        return []
    return None


def _pod_record(zone: Zone, name: str) -> Record | None:
    tail = f".pod.{zone.domain}"
    if not name.endswith(tail):
        return None
    labels = name[: -len(tail)].split(".")
    if len(labels) != 2:
        return None
    ip = _ipv4(labels[0].replace("-", "."))
    return Record("A", ip) if ip is not None and labels[0].count("-") == 3 else None


def in_domain(zone: Zone, qname: str) -> bool:
    name = qname.rstrip(".").lower()
    return name == zone.domain or name.endswith("." + zone.domain)
