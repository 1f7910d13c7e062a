"""Admission: what the API resolves on a write beyond validation.

- Pod priority: spec.priorityClassName names a PriorityClass whose value becomes
  spec.priority (and its preemptionPolicy the pod's); without a class, the global default
  class if one exists, else 0. An unknown class is refused, as Kubernetes does.
- Pod security (sigma.api.podsecurity) and ResourceQuota (sigma.api.quota) on pod creation.
- The built-in objects every cluster has: the namespaces default, kube-system and
  sigma-system, and the priority bands of DESIGN.md as PriorityClasses.
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.watched import WatchedByName

PRIORITY_CLASSES = resource("priorityclasses")
NAMESPACES = resource("namespaces")

BUILTIN_PRIORITY_CLASSES: tuple[tuple[str, int, str], ...] = (
    ("sigma-prod", 9000, "Online services (prod). Band 9000-9999: never preempted by a lower band."),
    ("sigma-mid", 7000, "Important non-prod work. Band 7000-7999."),
    ("sigma-batch", 5000, "Batch jobs (Fuxi). Band 5000-5999: runs on reclaimed capacity, BE QoS."),
    ("sigma-free", 3000, "Best-effort free tier. Band 3000-3999: first to be evicted."),
)
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "sigma-system")


class PriorityClasses(WatchedByName):
    """PriorityClasses by name, kept current from a watch (sigma.api.watched)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry, PRIORITY_CLASSES)


def resolve_pod_priority(classes: PriorityClasses) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = pod["spec"]
        if old is not None:
            return  # priority is fixed at creation
        name = spec.get("priorityClassName")
        known = classes.current()
        pc: dict[str, Any] | None
        if name:
            pc = known.get(name)
            if pc is None:
                raise ApiError(403, "Forbidden", f'pods "{pod["metadata"].get("name", "")}" is forbidden: '
                               f"no PriorityClass with name {name} was found", kind="pods",
                               name=pod["metadata"].get("name", ""))
        else:
            defaults = [p for p in known.values() if p.get("globalDefault")]
            pc = defaults[0] if defaults else None
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        value = int(pc["value"]) if pc is not None else 0
        if "priority" in spec and spec["priority"] != value:
            raise ApiError(403, "Forbidden", f'pods "{pod["metadata"].get("name", "")}" is forbidden: '
                           f"the integer value of priority ({spec['priority']}) must not be "
                           f"provided in pod spec; the priority admission controller computed {value} from the "
                           "given PriorityClass name")
        spec["priority"] = value
        spec.setdefault("preemptionPolicy", (pc or {}).get("preemptionPolicy", "PreemptLowerPriority"))

    return hook


def bootstrap(registry: Registry) -> None:
    """Create the built-in objects that are missing (idempotent, safe on every start)."""
    for ns in BUILTIN_NAMESPACES:
        _ensure(registry, NAMESPACES, {"metadata": {"name": ns}})
    for name, value, description in BUILTIN_PRIORITY_CLASSES:
        _ensure(registry, PRIORITY_CLASSES, {"metadata": {"name": name}, "value": value, "description": description,
                                             "preemptionPolicy": "PreemptLowerPriority"})
    from sigma.api import rbac_kinds

    rbac_kinds.bootstrap(registry)  # the default ClusterRoles and their bindings


def _ensure(registry: Registry, rt: Any, obj: dict[str, Any]) -> None:
    try:
        registry.create(rt, None, obj)
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise


def install(registry: Registry, options: dict[str, Any] | None = None) -> None:
    """Admission and the kinds beside the core ones; `options` are the master's (the service
    network: service_cidr, service_node_port_range)."""
    from sigma.api import (
        apps_kinds,
        batch_kinds,
        colocation_kinds,
        podphase,
        podsecurity,
        predict_kinds,
        quota,
        runtimeclass_kinds,
        service_kinds,
    )
    from sigma.api.configsecret_kinds import install as install_config_and_secrets
    from sigma.api.service_network import ServiceNetwork

    registry.add_admission("Pod", resolve_pod_priority(PriorityClasses(registry)))
    podphase.install(registry)  # Succeeded and Failed are final
    # RuntimeClass before pod security and quota: it sets the class and overhead they judge.
    runtimeclass_kinds.install(registry)
    # Pod security before quota: a refused pod must not be charged to the namespace.
    podsecurity.install(registry)
    quota.install(registry)
    # Sigma's own kinds: their validation and printer columns.
    colocation_kinds.install()
    predict_kinds.install()
    # Service and EndpointSlice, and the ClusterIP / NodePort allocators.
    service_kinds.install(registry, ServiceNetwork.from_options(options or {}))
    apps_kinds.install()  # ReplicaSet and DaemonSet
    from sigma.api import controllerrevision_kinds

    controllerrevision_kinds.install()  # ControllerRevision (DaemonSet history)
    # Job, CronJob, PodDisruptionBudget; budgets guard the eviction subresource.
    batch_kinds.install(registry)
    install_config_and_secrets(registry)  # ConfigMap, Secret, ServiceAccount
    from sigma.api import hpa_kinds

    hpa_kinds.install(registry)  # HorizontalPodAutoscaler; one autoscaler (HPA or PredictiveScaler) per target
    from sigma.api import rbac_kinds

    rbac_kinds.install(registry)  # Role, ClusterRole, RoleBinding, ClusterRoleBinding; escalation checks
