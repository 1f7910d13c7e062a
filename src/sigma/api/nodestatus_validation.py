"""Type checks of a Node's status, as a node credential writes it.

The master acts on what a Node publishes: it builds the URL of the node's agent from
``status.addresses`` and ``status.daemonEndpoints.kubeletEndpoint.Port`` when it proxies
pods/log. A node credential must therefore not be able to store anything but an integer
port, addresses of the documented types and well-formed capacities and conditions; each
refusal names its field, as Kubernetes' ValidateNodeUpdate does.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sigma.api.errors import Cause
from sigma.api.validation import dns1123_subdomain
from sigma.quantity import QuantityError, parse_quantity

ADDRESS_TYPES = ("Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS")
IP_TYPES = ("InternalIP", "ExternalIP")
CONDITION_STATUSES = ("True", "False", "Unknown")
CONDITION_STRINGS = ("reason", "message", "lastHeartbeatTime", "lastTransitionTime")


def _type_error(path: str, value: Any, expected: str) -> Cause:
    return Cause(path, f"Invalid value: {value!r}: must be {expected}", "FieldValueTypeInvalid")


def valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def daemon_endpoints(value: Any, path: str = "status.daemonEndpoints") -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_type_error(path, value, "an object")]
    kubelet = value.get("kubeletEndpoint")
    if kubelet is None:
        return []
    if not isinstance(kubelet, dict):
        return [_type_error(f"{path}.kubeletEndpoint", kubelet, "an object")]
    port = kubelet.get("Port")
    if port is None or valid_port(port):
        return []
    return [Cause(f"{path}.kubeletEndpoint.Port", f"Invalid value: {port!r}: must be an integer between 1 and 65535")]


def address_problem(kind: str, address: Any) -> str | None:
    """Why ``address`` is not a valid address of type ``kind``; None when it is."""
    if not isinstance(address, str) or not address:
        return "must be a non-empty string"
    if kind in IP_TYPES:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return "must be a valid IP address"
        return None
    if dns1123_subdomain(address, ""):
        return "must be a lowercase RFC 1123 subdomain"
    return None


def addresses(value: Any, path: str = "status.addresses") -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [_type_error(path, value, "a list")]
    causes: list[Cause] = []
    for i, entry in enumerate(value):
        here = f"{path}[{i}]"
        if not isinstance(entry, dict):
            causes.append(_type_error(here, entry, "an object"))
            continue
        kind = entry.get("type")
        if kind not in ADDRESS_TYPES:
            causes.append(Cause(f"{here}.type", f"Unsupported value: {kind!r}: supported values: "
                                + ", ".join(f'"{t}"' for t in ADDRESS_TYPES), "FieldValueNotSupported"))
            continue
        problem = address_problem(kind, entry.get("address"))
        if problem is not None:
            causes.append(Cause(f"{here}.address", f"Invalid value: {entry.get('address')!r}: {problem}"))
    return causes


def quantities(value: Any, path: str) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_type_error(path, value, "a map of resource names to quantities")]
    causes: list[Cause] = []
    for name, raw in value.items():
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            causes.append(_type_error(f"{path}[{name}]", raw, "a quantity"))
            continue
        try:
            if parse_quantity(raw) < 0:
                causes.append(Cause(f"{path}[{name}]", f"Invalid value: {raw!r}: must be greater than or equal to 0"))
        except QuantityError as err:
            causes.append(Cause(f"{path}[{name}]", f"Invalid value: {raw!r}: {err}"))
    return causes


def conditions(value: Any, path: str = "status.conditions") -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [_type_error(path, value, "a list")]
    causes: list[Cause] = []
    for i, cond in enumerate(value):
        here = f"{path}[{i}]"
        if not isinstance(cond, dict):
            causes.append(_type_error(here, cond, "an object"))
            continue
        if not isinstance(cond.get("type"), str) or not cond["type"]:
            causes.append(Cause(f"{here}.type", "Required value: a non-empty string", "FieldValueRequired"))
        if cond.get("status") not in CONDITION_STATUSES:
            causes.append(Cause(f"{here}.status", f"Unsupported value: {cond.get('status')!r}: supported values: "
                                '"True", "False", "Unknown"', "FieldValueNotSupported"))
        causes += [_type_error(f"{here}.{key}", cond[key], "a string")
                   for key in CONDITION_STRINGS if cond.get(key) is not None and not isinstance(cond[key], str)]
    return causes


def node_info(value: Any, path: str = "status.nodeInfo") -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_type_error(path, value, "an object")]
    return [_type_error(f"{path}.{k}", v, "a string") for k, v in value.items() if not isinstance(v, str)]


def validate_node_status(node: dict[str, Any]) -> list[Cause]:
    """Every type problem of ``node``'s status, each naming its field."""
    status = node.get("status")
    if status is None:
        return []
    if not isinstance(status, dict):
        return [_type_error("status", status, "an object")]
    return [*daemon_endpoints(status.get("daemonEndpoints")), *addresses(status.get("addresses")),
            *quantities(status.get("capacity"), "status.capacity"),
            *quantities(status.get("allocatable"), "status.allocatable"),
            *conditions(status.get("conditions")), *node_info(status.get("nodeInfo"))]
