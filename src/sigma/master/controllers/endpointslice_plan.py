"""What the EndpointSlice controller decides, as pure functions: the endpoints a Service should
have (``desired_endpoints``) and the creates, updates and deletes that bring its slices there
(``plan_slices``).

Kubernetes' rules: a pod is an endpoint when the Service's selector matches it, it has an IP
and it is not terminal (Succeeded / Failed); a terminating pod stays, with ``ready: false``
(``serving`` still tells whether it is Ready). Endpoints are grouped by their resolved ports
(a named targetPort is looked up in each pod's containers; a pod without that port is left
out of that port), each group split into slices of at most ``max_per_slice`` endpoints. A
Service with nothing to select has one empty slice (no ports, no endpoints), as Kubernetes
keeps a placeholder.

A pod left out of a port that way is otherwise silent in Kubernetes (its controller only logs
it); here ``unresolved_target_ports`` finds such ports and their pods, and
``port_warnings_due`` says which of them to tell the user about: each once, and again only
when the set of pods changes.

Churn is kept low as Kubernetes' reconciler does: an existing slice of the same ports keeps
its endpoints and is only updated when one changed or went; new endpoints fill slices that
are being updated anyway, then slices with room, then new slices; a slice no longer needed is
reused (updated under its name) for one that would be created.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
# Kubernetes' value: Sigma's controller has exactly the role and the rules of Kubernetes'
# EndpointSlice controller, and tools that tell its slices from hand-made or mirrored ones
# (kubectl users, service proxies, other controllers) select on this value.
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager's --max-endpoints-per-slice default
TERMINAL = ("Succeeded", "Failed")

Ports = tuple[tuple[str, str, int, str], ...]  # (name, protocol, port, appProtocol), sorted


@dataclass
class SlicePlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


# -- desired endpoints ------------------------------------------------------------------------
def selects(selector: dict[str, str], pod: dict[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_endpoint_pod(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return bool(status.get("podIP")) and status.get("phase") not in TERMINAL


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def find_port(pod: dict[str, Any], service_port: dict[str, Any]) -> int | None:
    """The pod's port for a Service port (Kubernetes' FindPort): a number as it is, a name
    looked up among the containers' ports of the same protocol; None when the pod has none."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for p in container.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def endpoint_ports(service: dict[str, Any], pod: dict[str, Any]) -> Ports:
    out = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, sp)
        if number is not None:
            out.append((sp.get("name") or "", sp.get("protocol") or "TCP", number, sp.get("appProtocol") or ""))
    return tuple(sorted(out))


def pod_endpoint(service: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    spec, m = service.get("spec") or {}, pod["metadata"]
    publish = bool(spec.get("publishNotReadyAddresses"))
    terminating = bool(m.get("deletionTimestamp"))
    serving = _pod_ready(pod)
    ready = publish or (serving and not terminating)
    endpoint: dict[str, Any] = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m["name"], "uid": m.get("uid", "")},
    }
    pod_spec = pod.get("spec") or {}
    if pod_spec.get("nodeName"):
        endpoint["nodeName"] = pod_spec["nodeName"]
    if pod_spec.get("hostname") and pod_spec.get("subdomain") == service["metadata"]["name"]:
        endpoint["hostname"] = pod_spec["hostname"]
    return endpoint


def desired_endpoints(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[Ports, list[dict[str, Any]]]:
    """The Service's endpoints grouped by their ports, each group in pod-name order."""
    selector = (service.get("spec") or {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    groups: dict[Ports, list[dict[str, Any]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if (pod["metadata"].get("namespace") != namespace or not selects(selector, pod)
                or not is_endpoint_pod(pod)):
            continue
        groups.setdefault(endpoint_ports(service, pod), []).append(pod_endpoint(service, pod))
    return groups


# -- named target ports no pod declares ------------------------------------------------------
# The reason of the Warning Event on the Service. Kubernetes has no Event for this (its
# controllers leave the pod out of the port and log it at a debug level), so the reason is
# Sigma's own: it names the field (targetPort) and what went wrong with it (the name was not
# found among the pod's container ports). Not "Failed...": the slices were written.
TARGET_PORT_NOT_FOUND = "TargetPortNameNotFound"
PODS_NAMED = 3  # pods named in a message; the rest are counted


@dataclass(frozen=True)
class UnresolvedPort:
    """A Service port whose targetPort name some selected endpoint pods do not declare."""

    index: int  # in spec.ports
    name: str  # the Service port's name
    target: str  # the targetPort name
    protocol: str
    pods: tuple[str, ...]  # the pods without it, sorted

    def message(self) -> str:
        shown = ", ".join(self.pods[:PODS_NAMED])
        more = f" and {len(self.pods) - PODS_NAMED} more" if len(self.pods) > PODS_NAMED else ""
        noun = "pod declares" if len(self.pods) == 1 else "pods declare"
        return (f"spec.ports[{self.index}].targetPort: {len(self.pods)} selected {noun} no {self.protocol} "
                f"container port named \"{self.target}\" ({shown}{more}): they are endpoints "
                f"without port \"{self.name}\"")


def unresolved_target_ports(service: dict[str, Any], pods: list[dict[str, Any]]) -> list[UnresolvedPort]:
    """The Service's named targetPorts that some of its endpoint pods do not declare."""
    selector = (service.get("spec") or {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    members = [p for p in pods if p["metadata"].get("namespace") == namespace and selects(selector, p)
               and is_endpoint_pod(p)]
    out = []
    for index, sp in enumerate((service.get("spec") or {}).get("ports") or []):
        target = sp.get("targetPort", sp.get("port"))
        if not isinstance(target, str) or target.isdigit():
            continue
        missing = tuple(sorted(p["metadata"]["name"] for p in members if find_port(p, sp) is None))
        if missing:
            out.append(UnresolvedPort(index, sp.get("name") or "", target, sp.get("protocol") or "TCP", missing))
    return out


def port_warnings_due(told: frozenset[UnresolvedPort], now: list[UnresolvedPort]) -> list[UnresolvedPort]:
    """The problems to write an Event for: the ones not told yet. A problem whose pods
    changed is a new one; one that stays is not told again; a fixed one is forgotten by
    the caller (``told`` becomes ``now``), so its return is told anew."""
    return [u for u in now if u not in told]


# -- slices ------------------------------------------------------------------------------------
def slice_labels(service: dict[str, Any]) -> dict[str, str]:
    """The Service's labels, plus the ones that say whose slice it is."""
    labels = {k: v for k, v in ((service["metadata"].get("labels") or {}).items())
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)}
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def _owner(service: dict[str, Any]) -> dict[str, Any]:
    m = service["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "name": m["name"], "uid": m.get("uid", ""), "controller": True,
            "blockOwnerDeletion": True}


def _port_objects(ports: Ports) -> list[dict[str, Any]]:
    out = []
    for name, protocol, number, app in ports:
        p: dict[str, Any] = {"name": name, "protocol": protocol, "port": number}
        if app:
            p["appProtocol"] = app
        out.append(p)
    return out


def slice_ports(eps: dict[str, Any]) -> Ports:
    return tuple(sorted((p.get("name") or "", p.get("protocol") or "TCP", int(p.get("port") or 0),
                         p.get("appProtocol") or "") for p in eps.get("ports") or []))


def new_slice(service: dict[str, Any], ports: Ports, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    m = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{m['name'][:57]}-", "namespace": m.get("namespace", ""),
                         "labels": slice_labels(service), "ownerReferences": [_owner(service)]},
            "addressType": "IPv4", "endpoints": endpoints, "ports": _port_objects(ports)}


def _key(endpoint: dict[str, Any]) -> str:
    ref = endpoint.get("targetRef") or {}
    return str(ref.get("uid") or ref.get("name") or json.dumps(endpoint.get("addresses")))


def plan_slices(service: dict[str, Any], groups: dict[Ports, list[dict[str, Any]]],
                existing: list[dict[str, Any]], max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> SlicePlan:
    """The writes that turn the Service's `existing` slices (the ones this controller
    manages) into the `groups` of desired endpoints."""
    plan = SlicePlan()
    labels, owner = slice_labels(service), _owner(service)
    unused: list[dict[str, Any]] = []
    by_ports: dict[Ports, list[dict[str, Any]]] = {}
    for eps in sorted(existing, key=lambda s: s["metadata"]["name"]):
        if eps.get("addressType") != "IPv4":
            plan.delete.append(eps)
            continue
        by_ports.setdefault(slice_ports(eps), []).append(eps)
    for ports, slices in by_ports.items():
        if ports not in groups:
            unused.extend(slices)
    for ports, wanted in groups.items():
        _plan_group(service, ports, wanted, by_ports.get(ports, []), plan, unused, max_per_slice)
    if not any(groups.values()):
        _keep_placeholder(service, by_ports, plan, unused)
    # A slice no longer needed becomes one that would be created: an update, not a delete and a create.
    while plan.create and unused:
        reused, body = unused.pop(0), plan.create.pop(0)
        plan.update.append({**body, "metadata": {**reused["metadata"], "labels": body["metadata"]["labels"]}})
    plan.delete.extend(unused)
    for eps in plan.update:
        eps["metadata"]["labels"] = labels
        eps["metadata"]["ownerReferences"] = [owner]
    return plan


def _plan_group(service: dict[str, Any], ports: Ports, wanted: list[dict[str, Any]],
                slices: list[dict[str, Any]], plan: SlicePlan, unused: list[dict[str, Any]],
                max_per_slice: int) -> None:
    if not wanted:
        return
    desired = {_key(e): e for e in wanted}
    placed: set[str] = set()
    changed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for eps in slices:
        current = eps.get("endpoints") or []
        endpoints: list[dict[str, Any]] = []
        for e in current:
            k = _key(e)
            if k in desired and k not in placed and len(endpoints) < max_per_slice:
                endpoints.append(desired[k])
                placed.add(k)
        if not endpoints:
            unused.append(eps)
            continue
        new = copy.deepcopy(eps)
        new["endpoints"] = endpoints
        if endpoints != current or _labels_stale(service, eps):
            changed.append(new)
        else:
            kept.append(new)
    rest = [e for e in wanted if _key(e) not in placed]
    # New endpoints go first into slices written anyway, then into slices with room.
    for eps in changed:
        rest = _fill(eps, rest, max_per_slice)
    for eps in kept:
        if rest and len(eps["endpoints"]) < max_per_slice:
            rest = _fill(eps, rest, max_per_slice)
            changed.append(eps)
    plan.update.extend(changed)
    for start in range(0, len(rest), max_per_slice):
        plan.create.append(new_slice(service, ports, rest[start:start + max_per_slice]))


def _fill(eps: dict[str, Any], rest: list[dict[str, Any]], max_per_slice: int) -> list[dict[str, Any]]:
    room = max(max_per_slice - len(eps["endpoints"]), 0)
    eps["endpoints"].extend(rest[:room])
    return rest[room:]


def _labels_stale(service: dict[str, Any], eps: dict[str, Any]) -> bool:
    m = eps.get("metadata") or {}
    return bool(m.get("labels") != slice_labels(service) or m.get("ownerReferences") != [_owner(service)])


def _keep_placeholder(service: dict[str, Any], by_ports: dict[Ports, list[dict[str, Any]]], plan: SlicePlan,
                      unused: list[dict[str, Any]]) -> None:
    """No endpoints at all: one empty slice stays (an existing empty one, else a new one)."""
    for eps in unused:
        if not eps.get("endpoints") and not eps.get("ports"):
            unused.remove(eps)
            if _labels_stale(service, eps):
                plan.update.append(copy.deepcopy(eps))
            return
    plan.create.append(new_slice(service, (), []))
