"""Defaults and validation of Service and EndpointSlice, as Kubernetes has them. Pure functions.

The rules that need the cluster's state (is the address in the service range, is it free)
belong to the allocators (sigma.api.service_alloc); these are the rules of one object.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from typing import Any

from sigma.api.errors import Cause
from sigma.api.service_schemas import PROTOCOLS
from sigma.api.validation import dns1123_label, dns1123_subdomain, validate_labels

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
DEFAULT_AFFINITY_TIMEOUT_S = 10800  # 3 hours, Kubernetes' default
MAX_AFFINITY_TIMEOUT_S = 86400
ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 100


def is_headless(spec: dict[str, Any]) -> bool:
    return spec.get("clusterIP") == "None"


def needs_cluster_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName" and not is_headless(spec)


def needs_node_ports(spec: dict[str, Any]) -> bool:
    return spec.get("type") in NODE_PORT_TYPES


# -- defaults ------------------------------------------------------------------------------
def default_service(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        if isinstance(config, dict):
            client_ip = config.setdefault("clientIP", {})
            if isinstance(client_ip, dict):
                client_ip.setdefault("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT_S)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
                port["targetPort"] = port["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    if spec["type"] in NODE_PORT_TYPES:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif cluster_ips and isinstance(cluster_ips, list) and not cluster_ip:
        spec["clusterIP"] = cluster_ips[0]
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def carry_over(spec: dict[str, Any], old: dict[str, Any]) -> None:
    """What an update keeps from the stored Service, as kube-apiserver does: an allocated
    ClusterIP or NodePort the update leaves empty stays; NodePorts unchanged from the stored
    ones are dropped when the type no longer has node ports."""
    if not old:
        return
    if needs_cluster_ip(spec) and not spec.get("clusterIP") and old.get("clusterIP") not in (None, "", "None") \
            and old.get("type") != "ExternalName":
        spec["clusterIP"], spec["clusterIPs"] = old["clusterIP"], list(old.get("clusterIPs") or [old["clusterIP"]])
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old.get("ports") or []}
    for port in spec.get("ports") or []:
        previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
        if needs_node_ports(spec) and not port.get("nodePort") and previous and old.get("type") in NODE_PORT_TYPES:
            port["nodePort"] = previous
        elif not needs_node_ports(spec) and port.get("nodePort") and port.get("nodePort") == previous:
            port.pop("nodePort")


# -- Service -------------------------------------------------------------------------------
def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    return Cause(path, f"Unsupported value: {_shown(value)}: supported values: "
                       + ", ".join(f'"{s}"' for s in supported), "FieldValueNotSupported")


def _required(path: str, detail: str = "") -> Cause:
    return Cause(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")


def _forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []  # the name (a DNS-1035 label) is checked with the metadata
    spec = obj.get("spec") or {}
    if old is not None:
        # Judged as admission will write it: with what the update keeps from the stored Service.
        spec = copy.deepcopy(spec)
        carry_over(spec, old.get("spec") or {})
    stype = spec.get("type", "ClusterIP")
    if stype not in SERVICE_TYPES:
        causes.append(_not_supported("spec.type", stype, SERVICE_TYPES))
    causes += _validate_cluster_ips(spec)
    causes += _validate_ports(spec, stype)
    causes += validate_labels(spec.get("selector"), "spec.selector")
    causes += _validate_affinity(spec)
    causes += _validate_policies(spec, stype)
    if stype == "ExternalName":
        name = spec.get("externalName") or ""
        if not name:
            causes.append(_required("spec.externalName"))
        else:
            causes += dns1123_subdomain(name.removesuffix("."), "spec.externalName")
    if old is not None:
        causes += _validate_update(spec, old.get("spec") or {})
    return causes


def _validate_cluster_ips(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    cluster_ip, cluster_ips = spec.get("clusterIP") or "", spec.get("clusterIPs") or []
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        if cluster_ip:
            causes.append(_forbidden("spec.clusterIP", "may not be set for ExternalName services"))
        return causes
    if cluster_ips and cluster_ips[0] != cluster_ip:
        causes.append(Cause("spec.clusterIPs[0]", f"Invalid value: {_shown(cluster_ips[0])}: must match "
                                                  "`clusterIP` when both are specified"))
    if len(cluster_ips) > 1:
        causes.append(Cause("spec.clusterIPs", f"Invalid value: {cluster_ips!r}: at most one address: the service "
                                               "network is single-stack IPv4", "FieldValueInvalid"))
    for i, ip in enumerate(cluster_ips):
        if ip == "None":
            if i > 0:
                causes.append(Cause(f"spec.clusterIPs[{i}]", 'Invalid value: "None": must be the only entry'))
            continue
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            causes.append(Cause(f"spec.clusterIPs[{i}]", f"Invalid value: {_shown(ip)}: must be a valid IP "
                                                         "address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
            continue
        if addr.version != 4:
            causes.append(Cause(f"spec.clusterIPs[{i}]", f"Invalid value: {_shown(ip)}: expected an IPv4 address "
                                                         "(the service network is IPv4)"))
    if is_headless(spec) and stype in NODE_PORT_TYPES:
        causes.append(Cause("spec.clusterIPs[0]", f'Invalid value: "None": may not be set to \'None\' for '
                                                  f"{stype} services"))
    families = spec.get("ipFamilies") or []
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            causes.append(_not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        elif family != "IPv4":
            causes.append(Cause(f"spec.ipFamilies[{i}]", f"Invalid value: {_shown(family)}: not configured on "
                                                         "this cluster"))
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        causes.append(_not_supported("spec.ipFamilyPolicy", policy, policies))
    elif policy == "RequireDualStack":
        causes.append(Cause("spec.ipFamilyPolicy", 'Invalid value: "RequireDualStack": this cluster is not '
                                                   "configured for dual-stack services"))
    return causes


def _validate_ports(spec: dict[str, Any], stype: str) -> list[Cause]:
    causes: list[Cause] = []
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and not is_headless(spec):
        causes.append(_required("spec.ports"))
    require_name = len(ports) > 1
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if require_name and not name:
            causes.append(_required(f"{path}.name"))
        elif name:
            causes += dns1123_label(name, f"{path}.name")
            if name in names:
                causes.append(Cause(f"{path}.name", f"Duplicate value: {_shown(name)}", "FieldValueDuplicate"))
            names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(Cause(f"{path}.port", f"Invalid value: {number!r}: must be between 1 and 65535, "
                                                "inclusive"))
        protocol = port.get("protocol") or ""
        if not protocol:
            causes.append(_required(f"{path}.protocol"))
        elif protocol not in PROTOCOLS:
            causes.append(_not_supported(f"{path}.protocol", protocol, PROTOCOLS))
        causes += _validate_target_port(port.get("targetPort"), f"{path}.targetPort")
        key = (number if isinstance(number, int) else 0, protocol)
        if key in seen:
            causes.append(Cause(path, f'Duplicate value: {{"port":{key[0]},"protocol":"{protocol}"}}',
                                "FieldValueDuplicate"))
        seen.add(key)
        node_port = port.get("nodePort")
        if node_port:
            if stype not in NODE_PORT_TYPES:
                causes.append(_forbidden(f"{path}.nodePort", f"may not be used when `type` is '{stype}'"))
            elif not 1 <= node_port <= 65535:
                causes.append(Cause(f"{path}.nodePort", f"Invalid value: {node_port}: must be between 1 and "
                                                        "65535, inclusive"))
            elif (node_port, protocol) in node_ports:
                causes.append(Cause(f"{path}.nodePort", f"Duplicate value: {node_port}", "FieldValueDuplicate"))
            node_ports.add((node_port, protocol))
    return causes


def _validate_target_port(target: Any, path: str) -> list[Cause]:
    if isinstance(target, bool) or target is None:
        return []
    if isinstance(target, int):
        if not 1 <= target <= 65535:
            return [Cause(path, f"Invalid value: {target}: must be between 1 and 65535, inclusive")]
        return []
    return _port_name(str(target), path)


def _port_name(name: str, path: str) -> list[Cause]:
    """apimachinery IsValidPortName (IANA_SVC_NAME): a container port's name."""
    problems = []
    if not 1 <= len(name) <= 15:
        problems.append("must be no more than 15 characters")
    if not re.match(r"^[-a-z0-9]+$", name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return [Cause(path, f"Invalid value: {_shown(name)}: {p}") for p in problems]


def _validate_affinity(spec: dict[str, Any]) -> list[Cause]:
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("ClientIP", "None"):
        return [_not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        if config:
            return [Cause("spec.sessionAffinityConfig", f"Invalid value: {config!r}: must not be set when "
                                                        "`sessionAffinity` is None")]
        return []
    timeout = ((config or {}).get("clientIP") or {}).get("timeoutSeconds")
    if not isinstance(timeout, int) or not 0 < timeout <= MAX_AFFINITY_TIMEOUT_S:
        return [Cause("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                      f"Invalid value: {timeout!r}: must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT_S}")]
    return []


def _validate_policies(spec: dict[str, Any], stype: str) -> list[Cause]:
    causes: list[Cause] = []
    policies = ("Cluster", "Local")
    external = spec.get("externalTrafficPolicy")
    if external is not None:
        if stype not in NODE_PORT_TYPES:
            causes.append(Cause("spec.externalTrafficPolicy", f"Invalid value: {_shown(external)}: may only be set "
                                                              "when `type` is 'NodePort' or 'LoadBalancer'"))
        elif external not in policies:
            causes.append(_not_supported("spec.externalTrafficPolicy", external, policies))
    internal = spec.get("internalTrafficPolicy")
    if internal is not None and internal not in policies:
        causes.append(_not_supported("spec.internalTrafficPolicy", internal, policies))
    return causes


def _validate_update(spec: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """The cluster IP may not change once set, except to or from an ExternalName Service."""
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return []
    if old.get("clusterIPs") and spec.get("clusterIPs") != old.get("clusterIPs"):
        return [Cause("spec.clusterIPs[0]", f"Invalid value: {spec.get('clusterIPs')!r}: may not change once "
                                            "set")]
    return []


# -- EndpointSlice ---------------------------------------------------------------------------
def validate_endpoint_slice(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = obj.get("metadata") or {}
    causes: list[Cause] = []
    if m.get("name"):
        causes += dns1123_subdomain(m["name"], "metadata.name")
    address_type = obj.get("addressType") or ""
    if not address_type:
        causes.append(_required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        causes.append(_not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > MAX_ENDPOINTS:
        causes.append(Cause("endpoints", f"Too many: {len(endpoints)}: must have at most {MAX_ENDPOINTS} items",
                            "FieldValueTooMany"))
    else:
        for i, endpoint in enumerate(endpoints):
            causes += _validate_endpoint(endpoint, address_type, f"endpoints[{i}]")
    causes += _validate_endpoint_ports(obj.get("ports") or [])
    if old is not None and old.get("addressType") != address_type:
        causes.append(Cause("addressType", f"Invalid value: {_shown(address_type)}: field is immutable"))
    return causes


def _validate_endpoint(endpoint: dict[str, Any], address_type: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    addresses = endpoint.get("addresses") or []
    if not addresses:
        causes.append(_required(f"{path}.addresses", "must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        causes.append(Cause(f"{path}.addresses", f"Too many: {len(addresses)}: must have at most {MAX_ADDRESSES} "
                                                 "items", "FieldValueTooMany"))
    else:
        for i, address in enumerate(addresses):
            causes += _validate_address(address, address_type, f"{path}.addresses[{i}]")
    if endpoint.get("hostname"):
        causes += dns1123_label(endpoint["hostname"], f"{path}.hostname")
    if endpoint.get("nodeName"):
        causes += dns1123_subdomain(endpoint["nodeName"], f"{path}.nodeName")
    return causes


def _validate_address(address: str, address_type: str, path: str) -> list[Cause]:
    if address_type == "FQDN":
        return dns1123_subdomain(address, path)
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        addr = None
    want = 4 if address_type == "IPv4" else 6
    if addr is None or addr.version != want:
        return [Cause(path, f"Invalid value: {_shown(address)}: must be a valid {address_type} address")]
    return []


def _validate_endpoint_ports(ports: list[dict[str, Any]]) -> list[Cause]:
    if len(ports) > MAX_PORTS:
        return [Cause("ports", f"Too many: {len(ports)}: must have at most {MAX_PORTS} items", "FieldValueTooMany")]
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            causes += dns1123_label(name, f"{path}.name")
        if name in names:
            causes.append(Cause(f"{path}.name", f"Duplicate value: {_shown(name)}", "FieldValueDuplicate"))
        names.add(name)
        protocol = port.get("protocol")
        if not protocol:
            causes.append(_required(f"{path}.protocol"))
        elif protocol not in PROTOCOLS:
            causes.append(_not_supported(f"{path}.protocol", protocol, PROTOCOLS))
        number = port.get("port")
        if number is not None and not 0 <= number <= 65535:
            causes.append(Cause(f"{path}.port", f"Invalid value: {number}: must be between 0 and 65535, inclusive"))
    return causes


def default_endpoint_slice(obj: dict[str, Any]) -> None:
    """Kubernetes' defaults: a port's protocol TCP and name ""."""
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("name", "")
