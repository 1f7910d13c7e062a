"""The kinds the API serves, in one table.

The server routes, discovery, the OpenAPI document, the CLI's short names and the store keys
are all derived from this table, so adding a kind is one entry here plus its validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update",
                              "watch")
    # True when spec and status are written separately (status through /status only).
    has_status: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    def key_prefix(self, namespace: str | None = None) -> str:
        """The store prefix of every object of this kind (in one namespace if given)."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.key_prefix()}{namespace}/{name}"
        return f"{self.key_prefix()}{name}"


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), ("status",)),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), ("status",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",),
                 ("binding", "status", "log", "eviction", "exec", "attach", "portforward"), ("all",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",), (), has_status=False),
    ResourceType("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), ("status",)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("status",), ("all",)),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, (), has_status=False),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"),
                 ("all",)),
    ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",),
                 has_status=False),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, (), has_status=False),
    ResourceType("sigma.io", "v1", "NodeMetric", "nodemetrics", False, ("nm",), ("status",)),
    ResourceType("sigma.io", "v1", "NodeSLO", "nodeslos", False, ("slo",), ("status",)),
    ResourceType("sigma.io", "v1", "BatchJob", "batchjobs", True, ("bj",), ("status",), ("all",)),
    ResourceType("sigma.io", "v1", "PredictiveScaler", "predictivescalers", True, ("ps",), ("status",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"), ("all",)),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True, has_status=False),
    ResourceType("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), ("all",)),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",), has_status=False),
    ResourceType("", "v1", "Secret", "secrets", True, (), has_status=False),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",), has_status=False),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 ("status",), ("all",)),
    ResourceType("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False, (), has_status=False),
    # RBAC (sigma.api.rbac_kinds) and the access reviews, answered and never stored (sigma.api.auth.access_review).
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True, has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False,
                 has_status=False),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
                 verbs=("create",), has_status=False),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False,
                 verbs=("create",), has_status=False),
    ResourceType("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
                 verbs=("create",), has_status=False),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
                 verbs=("create",), has_status=False),
)

# metrics.k8s.io (what `kubectl top` reads): computed from the agents' NodeMetric reports by
# sigma.api.resource_metrics, never stored. Apart from RESOURCES because their plurals repeat
# the core group's: routing, discovery and authorisation see them, what iterates the stored
# kinds (garbage collection, cascades, OpenAPI, short names) does not.
METRICS_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list"), has_status=False),
    ResourceType("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=("get", "list"), has_status=False),
)

# Other versions of stored kinds, served by converting to the stored version (sigma.api.hpa_v1).
CONVERTED_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 (), ("all",), verbs=("create", "delete", "get", "list", "patch", "update")),
)
SERVED_ELSEWHERE = (*METRICS_RESOURCES, *CONVERTED_RESOURCES)

_BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in (*RESOURCES, *SERVED_ELSEWHERE)
}
_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def resolve_name(name: str) -> ResourceType | None:
    """What a person types: "pods", "pod", "po", "deploy", "deployments.apps", "Pod"."""
    text = name.lower()
    group = None
    if "." in text:
        text, group = text.split(".", 1)
    for r in RESOURCES:
        if group is not None and r.group != group:
            continue
        if text in (r.plural, r.singular, *r.short_names):
            return r
    return None


def group_versions() -> dict[str, list[str]]:
    """Every API group (the core group as "") and its versions, in a stable order."""
    out: dict[str, list[str]] = {}
    for r in (*RESOURCES, *SERVED_ELSEWHERE):
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def resource(plural: str) -> ResourceType:
    """The served resource with this plural name (plurals are unique across groups)."""
    for r in RESOURCES:
        if r.plural == plural:
            return r
    raise KeyError(plural)
