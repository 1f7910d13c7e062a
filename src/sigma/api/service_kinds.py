"""Service and EndpointSlice in the API: schemas, defaults, validation, `kubectl get` columns,
the ClusterIP/NodePort allocation on every Service write, and the ``default/kubernetes``
Service every cluster has.

Installed by sigma.api.admission.install with the master's service network.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.schema import register_schema
from sigma.api.service_alloc import Allocator
from sigma.api.service_network import ServiceNetwork
from sigma.api.service_schemas import ENDPOINT_SLICE_SCHEMA, SERVICE_SCHEMA
from sigma.api.service_validation import (
    default_endpoint_slice,
    default_service,
    validate_endpoint_slice,
    validate_service,
)
from sigma.api.tables import age, register_printer
from sigma.api.validation import NAME_RULES, register_defaults, register_validator

SERVICES = resource("services")
ENDPOINT_SLICES = resource("endpointslices")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MORE_SHOWN = 3  # kubectl shows the first three ports and addresses of a slice, then "+ N more..."


def install(registry: Registry, network: ServiceNetwork) -> Allocator:
    register_kinds()
    allocator = Allocator(registry, network)
    registry.add_admission("Service", allocator.admit)
    return allocator


def register_kinds() -> None:
    """Schemas, defaults, validation and columns of both kinds (what needs no registry)."""
    register_schema("Service", SERVICE_SCHEMA)
    register_schema("EndpointSlice", ENDPOINT_SLICE_SCHEMA)
    NAME_RULES["Service"] = "dns1035"
    register_defaults("Service", default_service)
    register_defaults("EndpointSlice", default_endpoint_slice)
    register_validator("Service", validate_service)
    register_validator("EndpointSlice", validate_endpoint_slice)
    register_printer("Service", [("Name", "string", 0), ("Type", "string", 0), ("Cluster-IP", "string", 0),
                                 ("External-IP", "string", 0), ("Port(s)", "string", 0), ("Age", "string", 0),
                                 ("Selector", "string", 1)], service_row)
    register_printer("EndpointSlice", [("Name", "string", 0), ("AddressType", "string", 0), ("Ports", "string", 0),
                                       ("Endpoints", "string", 0), ("Age", "string", 0)], endpoint_slice_row)


# -- kubectl get columns ----------------------------------------------------------------------
def service_row(svc: dict[str, Any], now: float) -> list[Any]:
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    return [svc["metadata"]["name"], stype, spec.get("clusterIP") or "<none>", _external_ip(svc, stype),
            _ports(spec.get("ports") or []), age(svc, now), _selector(spec.get("selector") or {})]


def _external_ip(svc: dict[str, Any], stype: str) -> str:
    spec = svc.get("spec") or {}
    external = list(spec.get("externalIPs") or [])
    if stype == "ExternalName":
        return str(spec.get("externalName") or "<none>")
    if stype == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external += [i.get("ip") or i.get("hostname") or "" for i in ingress]
        return ",".join(external) if external else "<pending>"
    return ",".join(external) if external else "<none>"


def _ports(ports: list[dict[str, Any]]) -> str:
    parts = []
    for p in ports:
        protocol = p.get("protocol") or "TCP"
        node = p.get("nodePort")
        parts.append(f"{p.get('port')}:{node}/{protocol}" if node else f"{p.get('port')}/{protocol}")
    return ",".join(parts) if parts else "<none>"


def _selector(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) if selector else "<none>"


def endpoint_slice_row(eps: dict[str, Any], now: float) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else "<unset>" for p in eps.get("ports") or []]
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [eps["metadata"]["name"], eps.get("addressType", ""), _shorten(ports), _shorten(addresses),
            age(eps, now)]


def _shorten(values: list[str]) -> str:
    if not values:
        return "<unset>"
    shown = ",".join(values[:MORE_SHOWN])
    more = len(values) - MORE_SHOWN
    return f"{shown} + {more} more..." if more > 0 else shown


# -- the kubernetes Service -----------------------------------------------------------------
def master_address(host: str) -> str:
    """The address the ``kubernetes`` Service's endpoint names: the master's listening
    address, or the loopback when it listens on every address or a name."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return "127.0.0.1"
    return "127.0.0.1" if addr.is_unspecified or addr.version != 4 else str(addr)


def bootstrap(registry: Registry, network: ServiceNetwork, host: str, port: int) -> None:
    """The ``default/kubernetes`` Service (the range's first address, port 443 to the master)
    and its EndpointSlice; brought up to date when the master's address or port changed."""
    labels = {"component": "apiserver", "provider": "kubernetes"}
    service: dict[str, Any] = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
               "spec": {"type": "ClusterIP", "clusterIP": network.kubernetes_ip,
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}
    _upsert(registry, SERVICES, service, lambda old: old["spec"].get("ports") == service["spec"]["ports"],
            lambda old: {**old, "spec": {**old["spec"], "ports": service["spec"]["ports"]}})
    slice_: dict[str, Any] = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "kubernetes", "namespace": "default", "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
              "addressType": "IPv4",
              "endpoints": [{"addresses": [master_address(host)], "conditions": {"ready": True}}],
              "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    _upsert(registry, ENDPOINT_SLICES, slice_,
            lambda old: (old.get("endpoints"), old.get("ports")) == (slice_["endpoints"], slice_["ports"]),
            lambda old: {**old, "endpoints": slice_["endpoints"], "ports": slice_["ports"]})


def _upsert(registry: Registry, rt: Any, obj: dict[str, Any], same: Any, updated: Any) -> None:
    try:
        registry.create(rt, "default", obj)
        return
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise
    old = registry.get(rt, "default", obj["metadata"]["name"])
    if not same(old):
        registry.update(rt, "default", obj["metadata"]["name"], updated(old))
