"""What the agent's QoS loop decides each tick, from readings already taken. Pure.

The shell (qos.py) measures the node and reads the API; this module turns those numbers
into the ladder's inputs (sigma.colocation.ladder) and returns the decision:

    TickInputs ──decide()──► TickDecision(quota for the batch parent, evictions, why)

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

from sigma.agent.podspec import BATCH, BATCH_CPU, BATCH_MEMORY, tier
from sigma.colocation.ladder import CpuQuota, Eviction, NodeState, PodUsage, choose_evictions, suppress_quota
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


@dataclass(frozen=True)
class TickDecision:
    prod_cpu_millis: int
    quota: CpuQuota
    evictions: list[Eviction] = field(default_factory=list)


def prod_cpu_millis(inputs: TickInputs) -> int:
    if inputs.count_system_cpu:
        return max(inputs.node_cpu_millis - inputs.batch_cpu_millis, inputs.prod_pods_cpu_millis, 0)
    return max(inputs.prod_pods_cpu_millis, 0)


def decide(inputs: TickInputs, slo: NodeSLO) -> TickDecision:
    prod = prod_cpu_millis(inputs)
    quota = suppress_quota(inputs.cpu_capacity_millis, slo.thresholds.cpu, prod, slo.batch_cpu_floor_millis)
    node = NodeState(inputs.memory_capacity_bytes, inputs.memory_used_bytes, inputs.batch_cpu_allocatable,
                     inputs.batch_memory_allocatable)
    evictions = choose_evictions(node, inputs.pods, slo.memory_evict_high, slo.memory_evict_low)
    return TickDecision(prod, quota, evictions)


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
    """(sigma.io/batch-cpu milli-cores, sigma.io/batch-memory bytes) summed over containers;
    a missing request defaults to the limit, as Kubernetes does."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        cpu += _amount(req, BATCH_CPU) if BATCH_CPU in req else _amount(lim, BATCH_CPU)
        mem += _amount(req, BATCH_MEMORY) if BATCH_MEMORY in req else _amount(lim, BATCH_MEMORY)
    return cpu, mem


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


def eviction_cause(reason: str) -> str:
    return "memory" if reason.startswith("node memory") else "allocatable"


def render_qos(report: QosReport) -> str:
    lines = [
        "# HELP sigma_agent_batch_cpu_quota_millicores CFS quota of the batch parent (suppress); -1: none.",
        "# TYPE sigma_agent_batch_cpu_quota_millicores gauge",
        f"sigma_agent_batch_cpu_quota_millicores {report.quota_millis if report.quota_millis is not None else -1}",
        "# HELP sigma_agent_prod_cpu_millicores CPU the suppress quota leaves to prod (all but batch).",
        "# TYPE sigma_agent_prod_cpu_millicores gauge",
        f"sigma_agent_prod_cpu_millicores {report.prod_cpu_millis}",
        "# HELP sigma_agent_batch_cpu_millicores CPU used by the batch parent.",
        "# TYPE sigma_agent_batch_cpu_millicores gauge",
        f"sigma_agent_batch_cpu_millicores {report.batch_cpu_millis}",
        "# HELP sigma_agent_evictions_total Batch pods evicted by the agent, by cause.",
        "# TYPE sigma_agent_evictions_total counter",
    ]
    lines += [f'sigma_agent_evictions_total{{cause="{cause}"}} {report.evictions.get(cause, 0)}'
              for cause in ("allocatable", "memory")]
    lines += ["# HELP sigma_agent_resctrl_supported 1 when cache isolation (resctrl) is applied.",
              "# TYPE sigma_agent_resctrl_supported gauge",
              f"sigma_agent_resctrl_supported {1 if report.resctrl == 'applied' else 0}"]
    return "\n".join(lines) + "\n"
