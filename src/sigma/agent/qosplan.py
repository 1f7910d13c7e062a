"""What the agent's QoS loop decides each tick, from readings already taken. Pure.

The shell (qos.py) measures the node and reads the API; this module turns those numbers
into the ladder's inputs (sigma.colocation.ladder) and returns the decision:

    TickInputs ──decide()──► TickDecision(quota and cpuset for the batch parent, evictions, why)

The NodeSLO's cpuSuppressPolicy picks the suppress knob: `cfsQuota` (default) caps the batch
parent with a CFS quota and lets it run on every CPU no prod pod holds exclusively; `cpuset`
sets no quota and confines batch to whole CPUs instead (ladder.suppress_cpuset).
`cpuset_writes` orders the cgroup v1 writes that move a cpuset tree without ever leaving
a child wider than its parent.

Prod CPU, the figure the suppress quota subtracts, is everything on the node that is not
batch (`node busy - batch`) unless the agent is told to count its prod pods only. That is
Koordinator's choice too: system daemons, the agent itself and anything else outside the
agent's pods compete with prod for the same cores, so batch must leave room for them.

Also here: reading the shapes the loop needs out of API objects (a pod's batch requests,
the Node's published batch allocatable, the status an eviction writes), and the Prometheus
text for what the loop did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sigma.agent.podspec import BATCH, BATCH_CPU, BATCH_MEMORY, tier
from sigma.agent.usage_metrics import Families
from sigma.colocation.ladder import (
    CFS_QUOTA,
    CPUSET,
    DEFAULT_CFS_PERIOD_US,
    BatchCpuset,
    CpuQuota,
    Eviction,
    NodeState,
    PodUsage,
    choose_evictions,
    format_cpus,
    shared_cpus,
    suppress_cpuset,
    suppress_quota,
)
from sigma.colocation.slo import NodeSLO
from sigma.quantity import QuantityError, memory_bytes

TERMINAL_PHASES = ("Succeeded", "Failed")
EVICTED = "Evicted"
UNLIMITED = 2**62  # batch allocatable when Level-0 has not published one: nothing to enforce


@dataclass(frozen=True)
class TickInputs:
    cpu_capacity_millis: int
    node_cpu_millis: int  # busy CPU of the whole node over the last interval
    batch_cpu_millis: int  # CPU of the batch parent over the same interval
    prod_pods_cpu_millis: int  # CPU of the prod parent (used when system CPU is not counted)
    memory_capacity_bytes: int
    memory_used_bytes: int
    batch_cpu_allocatable: int = UNLIMITED
    batch_memory_allocatable: int = UNLIMITED
    pods: Sequence[PodUsage] = ()
    count_system_cpu: bool = True
    node_cpus: tuple[int, ...] = ()  # the agent's root cpuset; empty: no cpuset controller
    prod_exclusive_cpus: frozenset[int] = frozenset()  # held by LSR/LSE prod pods
    batch_cpus: tuple[int, ...] = ()  # the batch parent's cpuset now


@dataclass(frozen=True)
class TickDecision:
    prod_cpu_millis: int
    quota: CpuQuota
    evictions: list[Eviction] = field(default_factory=list)
    cpuset: BatchCpuset | None = None  # None: leave the batch parent's cpuset alone
    policy: str = CFS_QUOTA  # the suppress policy in force


def prod_cpu_millis(inputs: TickInputs) -> int:
    if inputs.count_system_cpu:
        return max(inputs.node_cpu_millis - inputs.batch_cpu_millis, inputs.prod_pods_cpu_millis, 0)
    return max(inputs.prod_pods_cpu_millis, 0)


def decide(inputs: TickInputs, slo: NodeSLO) -> TickDecision:
    prod = prod_cpu_millis(inputs)
    node = NodeState(inputs.memory_capacity_bytes, inputs.memory_used_bytes, inputs.batch_cpu_allocatable,
                     inputs.batch_memory_allocatable)
    evictions = choose_evictions(node, inputs.pods, slo.memory_evict_high, slo.memory_evict_low)
    if not inputs.node_cpus:  # no cpuset controller: the quota is the only knob there is
        quota = suppress_quota(inputs.cpu_capacity_millis, slo.thresholds.cpu, prod, slo.batch_cpu_floor_millis)
        return TickDecision(prod, quota, evictions, None, CFS_QUOTA)
    if slo.cpu_suppress_policy == CPUSET:
        cpuset = suppress_cpuset(inputs.node_cpus, inputs.prod_exclusive_cpus, inputs.cpu_capacity_millis,
                                 slo.thresholds.cpu, prod, inputs.batch_cpus)
        quota = CpuQuota(None, DEFAULT_CFS_PERIOD_US, "cpuset suppress policy: batch is confined to CPUs, "
                                                      "not capped by a quota")
        return TickDecision(prod, quota, evictions, cpuset, CPUSET)
    shared = shared_cpus(inputs.node_cpus, inputs.prod_exclusive_cpus)
    cpuset = BatchCpuset(shared, f"cfsQuota suppress policy: batch may use every CPU not held by prod "
                                 f"({format_cpus(shared)})")
    quota = suppress_quota(inputs.cpu_capacity_millis, slo.thresholds.cpu, prod, slo.batch_cpu_floor_millis)
    return TickDecision(prod, quota, evictions, cpuset, CFS_QUOTA)


def cpuset_writes(current: Mapping[str, Sequence[int]], top: str, target: Sequence[int]) -> list[tuple[str, str]]:
    """The (cgroup, cpus) writes, in order, that give the tree under `top` the cpuset
    `target` on cgroup v1, where a child's cpuset.cpus must always be within its parent's.

    `current` holds every cgroup of the tree (`top` included, paths below it as "top/a/b")
    with its CPUs now. A child that had its parent's CPUs (inherited) follows the parent;
    one with a cpuset of its own keeps what of it stays within the parent, or the parent's
    CPUs when nothing does. The writes first widen every group with children that gains
    CPUs to old | new, parents before children, then set every group to its final CPUs,
    deepest first, so neither step ever leaves a child outside its parent.
    """
    def parent_of(rel: str) -> str:
        return rel.rsplit("/", 1)[0]

    rels = sorted((r for r in current if r == top or r.startswith(top + "/")), key=lambda r: (r.count("/"), r))
    final: dict[str, set[int]] = {}
    for rel in rels:  # parents first
        if rel == top:
            final[rel] = set(target)
            continue
        parent = parent_of(rel)
        own, inherited = set(current[rel]), set(current[rel]) == set(current.get(parent, ()))
        final[rel] = set(final[parent]) if inherited else (own & final[parent]) or set(final[parent])
    parents = {parent_of(rel) for rel in rels if rel != top}
    writes: list[tuple[str, str]] = []
    holds = {rel: set(current[rel]) for rel in rels}
    for rel in rels:  # widen, parents first (a leaf has no child to make room for)
        if rel in parents and not final[rel] <= holds[rel]:
            holds[rel] |= final[rel]
            writes.append((rel, format_cpus(holds[rel])))
    for rel in reversed(rels):  # narrow, deepest first
        if holds[rel] != final[rel]:
            writes.append((rel, format_cpus(final[rel])))
    return writes


# -- reading API objects -------------------------------------------------------------------
def active(pod: Mapping[str, Any]) -> bool:
    """Still holding node resources by intent: not finished and not being deleted."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES


def _amount(values: Mapping[str, Any], key: str) -> int:
    if key not in values:
        return 0
    try:
        # sigma.io/batch-cpu is in milli-cores already: both parse as plain numbers.
        return memory_bytes(values[key])
    except QuantityError:
        return 0


def batch_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(sigma.io/batch-cpu milli-cores, sigma.io/batch-memory bytes) summed over containers
    plus the pod's overhead; a missing request defaults to the limit, as Kubernetes does."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        cpu += _amount(req, BATCH_CPU) if BATCH_CPU in req else _amount(lim, BATCH_CPU)
        mem += _amount(req, BATCH_MEMORY) if BATCH_MEMORY in req else _amount(lim, BATCH_MEMORY)
    # A RuntimeClass's overhead in batch units (a sandbox for batch pods) counts with them.
    overhead = (pod.get("spec") or {}).get("overhead") or {}
    return cpu + _amount(overhead, BATCH_CPU), mem + _amount(overhead, BATCH_MEMORY)


def ladder_pod(pod: Mapping[str, Any], cpu_millis: int, memory: int) -> PodUsage:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    priority = spec.get("priority")
    cpu_req, mem_req = batch_requests(pod)
    return PodUsage(str(meta.get("namespace", "default")), str(meta.get("name", "")),
                    priority if isinstance(priority, int) else 0, tier(dict(pod)) == BATCH,
                    cpu_millis, memory, cpu_req, mem_req)


def published_allocatable(node: Mapping[str, Any] | None) -> tuple[int, int]:
    """The batch allocatable Level-0 wrote into the Node, UNLIMITED where there is none."""
    allocatable = ((node or {}).get("status") or {}).get("allocatable") or {}
    out = []
    for key in (BATCH_CPU, BATCH_MEMORY):
        out.append(_amount(allocatable, key) if key in allocatable else UNLIMITED)
    return out[0], out[1]


def eviction_status(reason: str) -> dict[str, Any]:
    """What kubelet's eviction manager writes: the pod failed, and why."""
    return {"phase": "Failed", "reason": EVICTED, "message": f"The node was low on resources: {reason}"}


# -- Prometheus ----------------------------------------------------------------------------
@dataclass(frozen=True)
class QosReport:
    quota_millis: int | None
    prod_cpu_millis: int
    batch_cpu_millis: int
    evictions: Mapping[str, int]  # cause ("memory" | "allocatable") -> count since start
    resctrl: str  # "applied" | "unsupported" | "error"
    policy: str = CFS_QUOTA  # the cpu suppress policy in force
    batch_cpus: int | None = None  # CPUs in the batch parent's cpuset; None: no cpuset controller
    burst_cgroups: int = 0  # prod cgroups with a CPU burst now


def eviction_cause(reason: str) -> str:
    return "memory" if reason.startswith("node memory") else "allocatable"


def qos_families(report: QosReport) -> list[Metric]:
    """The ladder's state as metric families: the suppress quota and cpuset, CPU per tier,
    evictions by cause, whether cache isolation applies."""
    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, help_text, value=value)

    evictions = CounterMetricFamily("sigma_agent_evictions", "Batch pods evicted by the agent, by cause.",
                                    labels=("cause",))
    for cause in ("allocatable", "memory"):
        evictions.add_metric((cause,), report.evictions.get(cause, 0))
    policy = GaugeMetricFamily("sigma_agent_cpu_suppress_policy",
                               "1 for the NodeSLO's cpuSuppressPolicy in force.", labels=("policy",))
    for name in (CFS_QUOTA, CPUSET):
        policy.add_metric((name,), 1 if report.policy == name else 0)
    confined = report.policy == CPUSET and report.batch_cpus is not None
    return [
        gauge("sigma_agent_batch_cpu_quota_millicores", "CFS quota of the batch parent (suppress); -1: none.",
              report.quota_millis if report.quota_millis is not None else -1),
        gauge("sigma_agent_prod_cpu_millicores", "CPU the suppress quota leaves to prod (all but batch).",
              report.prod_cpu_millis),
        gauge("sigma_agent_batch_cpu_millicores", "CPU used by the batch parent.", report.batch_cpu_millis),
        evictions,
        gauge("sigma_agent_resctrl_supported", "1 when cache isolation (resctrl) is applied.",
              1 if report.resctrl == "applied" else 0),
        policy,
        gauge("sigma_agent_batch_cpuset_cpus", "CPUs batch is confined to under the cpuset suppress policy; "
              "-1: not confined (cfsQuota policy, or no cpuset controller).",
              report.batch_cpus if confined and report.batch_cpus is not None else -1),
        gauge("sigma_agent_prod_cpu_burst_cgroups", "Prod cgroups (pods and containers) with a CPU burst "
              "(NodeSLO cpuBurstStrategy).", report.burst_cgroups),
    ]


def render_qos(report: QosReport) -> str:
    """The ladder's families in the Prometheus text exposition format."""
    return Families(qos_families(report)).render()
