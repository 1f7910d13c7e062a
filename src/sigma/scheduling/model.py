"""The scheduling core's input types: what it needs to know about nodes and pods.

Plain frozen dataclasses of tuples, so they hash: a pod's scheduling-relevant spec is its
own cache key (the equivalence class). The live scheduler converts Kubernetes objects into
these; the batch scheduler and the simulator build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
BATCH_CPU = "sigma.io/batch-cpu"
BATCH_MEMORY = "sigma.io/batch-memory"

DEFAULT_RESOURCES: tuple[str, ...] = (CPU, MEMORY, PODS, BATCH_CPU, BATCH_MEMORY)
"""Integer units: milli-cores for cpu and batch-cpu, bytes for memories, a count for pods."""

Labels = tuple[tuple[str, str], ...]
Requests = tuple[tuple[str, int], ...]
HostPorts = tuple[tuple[str, str, int], ...]
"""A pod's containers' hostPorts: (protocol, hostIP or "" for every address, port), sorted."""


def labels(mapping: dict[str, str] | None = None, **more: str) -> Labels:
    """Canonical (sorted) label tuple from a dict and/or keyword arguments."""
    merged = {**(mapping or {}), **more}
    return tuple(sorted(merged.items()))


def requests(mapping: dict[str, int] | None = None, **more: int) -> Requests:
    """Canonical (sorted) request tuple; zero amounts are dropped."""
    merged = {**(mapping or {}), **more}
    return tuple(sorted((name, int(amount)) for name, amount in merged.items() if amount))


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"
    GT = "Gt"
    LT = "Lt"


@dataclass(frozen=True)
class Requirement:
    """One matchExpression. Gt/Lt take a single integer value and compare node label values."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSelectorTerm:
    """Requirements ANDed together; an empty term matches no node (as in Kubernetes)."""

    match_expressions: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """Selects pods: matchLabels AND matchExpressions (In/NotIn/Exists/DoesNotExist).
    An empty selector matches every pod."""

    match_labels: Labels = ()
    match_expressions: tuple[Requirement, ...] = ()


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: TaintEffect = TaintEffect.NO_SCHEDULE


@dataclass(frozen=True)
class Toleration:
    """operator "Exists" ignores the value; an empty key with Exists tolerates every taint;
    effect None tolerates every effect."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: TaintEffect | None = None

    def tolerates(self, taint: Taint) -> bool:
        if self.effect is not None and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return self.key in ("", taint.key)
        return self.key == taint.key and self.value == taint.value


UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", TaintEffect.NO_SCHEDULE)
"""A pod tolerating this taint may land on a cordoned (unschedulable) node, as in Kubernetes."""


@dataclass(frozen=True)
class AntiAffinityTerm:
    """Required pod anti-affinity: no pod matching `selector` (in `namespace`, default the
    pod's own) may run in the same `topology_key` domain as this pod."""

    selector: LabelSelector
    topology_key: str
    namespace: str | None = None


class WhenUnsatisfiable(StrEnum):
    DO_NOT_SCHEDULE = "DoNotSchedule"
    SCHEDULE_ANYWAY = "ScheduleAnyway"


@dataclass(frozen=True)
class SpreadConstraint:
    """Topology spread: matching pods per domain may differ by at most `max_skew`."""

    max_skew: int
    topology_key: str
    selector: LabelSelector
    when_unsatisfiable: WhenUnsatisfiable = WhenUnsatisfiable.DO_NOT_SCHEDULE


@dataclass(frozen=True)
class PodSpec:
    """A pod as the scheduler sees it. `requests` uses the snapshot's resource names; the
    pods dimension (one pod) is implied and need not be listed."""

    uid: str
    name: str
    namespace: str = "default"
    priority: int = 0
    requests: Requests = ()
    labels: Labels = ()
    node_selector: Labels = ()
    required_affinity: tuple[NodeSelectorTerm, ...] | None = None
    tolerations: tuple[Toleration, ...] = ()
    anti_affinity: tuple[AntiAffinityTerm, ...] = ()
    spread: tuple[SpreadConstraint, ...] = ()
    host_ports: HostPorts = ()

    @property
    def placement_key(self) -> tuple[object, ...]:
        """Everything that decides which nodes are statically eligible (the equivalence class)."""
        return (self.node_selector, self.required_affinity, self.tolerations)


@dataclass(frozen=True)
class NodeSpec:
    """A node: `allocatable` and measured `usage` by resource name (absent means 0)."""

    name: str
    allocatable: dict[str, int] = field(default_factory=dict, hash=False)
    labels: Labels = ()
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    usage: dict[str, int] = field(default_factory=dict, hash=False)


def host_ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    """Kubernetes' rule: one protocol and port, and one address or either on every address."""
    return a[0] == b[0] and a[2] == b[2] and (not a[1] or not b[1] or a[1] == b[1])
