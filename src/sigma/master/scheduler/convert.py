"""Kubernetes Node and Pod objects -> the scheduling core's NodeSpec and PodSpec.

Pure functions over plain dicts. Quantities become the core's integer units (milli-cores
for cpu and sigma.io/batch-cpu, bytes for memories, a count for pods). A pod's requests
are computed the way Kubernetes computes the effective request: the sum of its containers,
or the largest init container if that is bigger (init containers run one at a time,
before the others), plus the RuntimeClass overhead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sigma.quantity import MAX_INT64, QuantityError, resource_units
from sigma.scheduling import (
    DEFAULT_RESOURCES,
    AntiAffinityTerm,
    LabelSelector,
    NodeSelectorTerm,
    NodeSpec,
    Operator,
    PodSpec,
    Requirement,
    SpreadConstraint,
    Taint,
    TaintEffect,
    Toleration,
    WhenUnsatisfiable,
    labels,
    requests,
)

NOT_READY_TAINT = Taint("node.kubernetes.io/not-ready", "", TaintEffect.NO_SCHEDULE)
"""Put on a node whose Ready condition is not True, as Kubernetes' TaintNodesByCondition
does: no new pods land there unless they tolerate it, and the reason reads as the taint."""

TRACKED = frozenset(DEFAULT_RESOURCES)

# The snapshot holds amounts in int64 arrays and sums a node's pods: an amount past 2**53
# (9 PB of memory, 9e12 cores) is no real request and would overflow those sums.
MAX_UNITS = 2**53


class ConversionError(ValueError):
    """The object cannot be scheduled as written (for example an unparsable quantity)."""


def node_is_ready(node: dict[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def node_spec(node: dict[str, Any]) -> NodeSpec:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    # Allocatable is what pods may use; a node reporting only capacity offers all of it.
    amounts = status.get("allocatable") or status.get("capacity") or {}
    taints = tuple(_taint(t) for t in spec.get("taints") or [] if t.get("key"))
    if not node_is_ready(node) and NOT_READY_TAINT not in taints:
        taints = (*taints, NOT_READY_TAINT)
    return NodeSpec(
        name=meta["name"],
        allocatable=_quantities(amounts),
        labels=labels(meta.get("labels") or {}),
        taints=taints,
        unschedulable=bool(spec.get("unschedulable")),
    )


def pod_spec(pod: dict[str, Any]) -> PodSpec:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = meta.get("namespace") or "default"
    affinity = spec.get("affinity") or {}
    return PodSpec(
        uid=meta.get("uid") or f"{namespace}/{meta.get('name')}",
        name=meta.get("name", ""),
        namespace=namespace,
        priority=int(spec.get("priority") or 0),
        requests=requests(pod_requests(spec)),
        labels=labels(meta.get("labels") or {}),
        node_selector=labels(spec.get("nodeSelector") or {}),
        required_affinity=_required_node_affinity(affinity.get("nodeAffinity") or {}),
        tolerations=tuple(_toleration(t) for t in spec.get("tolerations") or []),
        anti_affinity=_anti_affinity(affinity.get("podAntiAffinity") or {}),
        spread=tuple(_spread(c) for c in spec.get("topologySpreadConstraints") or []),
        host_ports=host_ports(spec),
    )


def host_ports(spec: dict[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """The containers' hostPorts as the NodePorts filter reads them ("0.0.0.0" is every address, as "")."""
    out = set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("hostPort")
            if isinstance(number, int) and number > 0:
                ip = str(port.get("hostIP") or "")
                out.add((str(port.get("protocol") or "TCP"), "" if ip == "0.0.0.0" else ip, number))
    return tuple(sorted(out))


def pod_requests(spec: dict[str, Any]) -> dict[str, int]:
    """Effective requests: max(sum of containers, each init container) + overhead."""
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, 0) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, 0), amount)
    for name, amount in _quantities(spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + amount
    # Each quantity fits int64 (the API refuses larger ones) but a sum of them may not, and
    # the snapshot's arrays are int64: such a pod cannot fit any node, so it stays pending.
    for name, amount in total.items():
        if amount > MAX_INT64:
            raise ConversionError(f"{name}: the pod's total request {amount} is beyond {MAX_INT64}")
    return total


def _container_requests(container: dict[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    # Like Kubernetes: a limit without a request means the request equals the limit.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return _quantities(merged)


def _quantities(amounts: dict[str, Any]) -> dict[str, int]:
    """Only the resources the snapshot tracks; others (ephemeral-storage, GPUs...) are
    not scheduled on yet, so they are ignored rather than making every pod unschedulable."""
    if not isinstance(amounts, dict):
        raise ConversionError(f"resources must be a map of quantities, not {type(amounts).__name__}")
    out: dict[str, int] = {}
    for name, value in amounts.items():
        if name not in TRACKED:
            continue
        if not isinstance(value, str | int | float):
            raise ConversionError(f"{name}: quantity must be a string or a number, not {type(value).__name__}")
        out[name] = _units(name, value)
    return out


@lru_cache(maxsize=4096)
def _units(name: str, value: str | int | float) -> int:
    """Memoised: pods of one Deployment or task repeat the same few quantities, and
    parsing one (Decimal arithmetic) costs more than the rest of a conversion."""
    try:
        units = resource_units(name, value)
    except (QuantityError, TypeError, ValueError, ArithmeticError) as err:
        raise ConversionError(f"{name}: {err}") from err
    if not -MAX_UNITS <= units <= MAX_UNITS:
        raise ConversionError(f"{name}: quantity {value!r} is out of range")
    return units


def _taint(taint: dict[str, Any]) -> Taint:
    return Taint(taint["key"], taint.get("value") or "", TaintEffect(taint.get("effect") or "NoSchedule"))


def _toleration(tol: dict[str, Any]) -> Toleration:
    effect = tol.get("effect")
    return Toleration(tol.get("key") or "", tol.get("operator") or "Equal", tol.get("value") or "",
                      TaintEffect(effect) if effect else None)


def _requirement(expr: dict[str, Any]) -> Requirement:
    return Requirement(expr["key"], Operator(expr["operator"]), tuple(str(v) for v in expr.get("values") or []))


def _required_node_affinity(node_affinity: dict[str, Any]) -> tuple[NodeSelectorTerm, ...] | None:
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return None
    # matchFields (metadata.name only, in Kubernetes) is read as the hostname label.
    terms = []
    for term in required.get("nodeSelectorTerms") or []:
        exprs = [_requirement(e) for e in term.get("matchExpressions") or []]
        exprs += [_requirement({**e, "key": "kubernetes.io/hostname"}) for e in term.get("matchFields") or []]
        terms.append(NodeSelectorTerm(tuple(exprs)))
    return tuple(terms)


def _label_selector(selector: dict[str, Any] | None) -> LabelSelector:
    selector = selector or {}
    return LabelSelector(labels(selector.get("matchLabels") or {}),
                         tuple(_requirement(e) for e in selector.get("matchExpressions") or []))


def _anti_affinity(pod_anti_affinity: dict[str, Any]) -> tuple[AntiAffinityTerm, ...]:
    terms = []
    for term in pod_anti_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        namespaces = term.get("namespaces") or []
        # The core takes one namespace per term: several namespaces become several terms.
        for namespace in namespaces or [None]:
            terms.append(AntiAffinityTerm(_label_selector(term.get("labelSelector")), term["topologyKey"],
                                          namespace))
    return tuple(terms)


def _spread(constraint: dict[str, Any]) -> SpreadConstraint:
    return SpreadConstraint(int(constraint.get("maxSkew") or 1), constraint["topologyKey"],
                            _label_selector(constraint.get("labelSelector")),
                            WhenUnsatisfiable(constraint.get("whenUnsatisfiable") or "DoNotSchedule"))
