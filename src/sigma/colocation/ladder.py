"""The agent's ladder against batch, mildest first: idle -> suppress -> evict. Pure.

1. Idle. The batch parent cgroup always runs SCHED_IDLE (`cpu.idle=1`): measured on these
   machines, it alone brings a prod service's p99 back from ~5 ms to ~1 ms next to a CPU
   hog. Where cpu.idle is missing (kernels before 5.15), `cpu.shares=2` (v1) or
   `cpu.weight=1` (v2) give nearly the same result.
2. Suppress. A CFS quota on the batch parent caps batch at what prod leaves under the
   node's threshold: quota = capacity x threshold - prod usage, but never below a floor
   (0.1 core), so batch keeps making progress and its heartbeats keep flowing. The quota
   alone did NOT protect prod latency (measured), which is why it sits on top of idle.
   A threshold of 1 or more keeps no headroom back, so there is nothing to suppress: the
   idle class already hands prod every cycle it asks for, and a quota of "whatever prod
   leaves" would only add CFS throttling. Throttling is not free for prod either: each
   throttle/unthrottle of the batch parent shows in prod's tail (measured on these
   machines next to three busy loops: p99 1.37-1.57 ms under idle alone, 1.52-2.84 ms with
   a 1.7-core quota at the 100 ms period, 4.8 ms at a 10 ms period), so such nodes get no
   quota at all.
   The cpuset policy (NodeSLO `cpuSuppressPolicy: cpuset`, Koordinator's other choice)
   confines batch to whole CPUs instead: max(1, floor(room / 1000)) of the highest-numbered
   CPUs no prod pod holds exclusively, and no quota at all. Measured next to three busy
   loops on 2 CPUs, prod's p99 stayed within 1.03-1.1x of running alone where a quota on
   the batch parent cost 1.6-2.1x: batch is never throttled, it just stays off prod's CPUs.
3. Evict. Memory cannot be squeezed like cpu: when the node's memory use passes the high
   watermark, batch pods are evicted until the projected use is under the low watermark.
   Batch pods are also evicted when their requests exceed the node's batch allocatable
   (Level-0 shrank it, e.g. ahead of a predicted rush). Victims: lowest priority first,
   then the highest usage of the resource in trouble (fewest evictions to get under).
   Prod pods are never chosen. Every decision carries its reason for the Event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_QUOTA_FLOOR_MILLIS = 100
DEFAULT_CFS_PERIOD_US = 100_000
DEFAULT_MEMORY_HIGH = 0.90
DEFAULT_MEMORY_LOW = 0.85


@dataclass(frozen=True)
class CgroupSettings:
    """Files to write under the batch parent: `files` first; where a file is missing on this
    kernel, its `fallbacks` entry (if any) instead."""

    files: dict[str, str]
    fallbacks: dict[str, dict[str, str]]


def batch_parent_settings(cgroup_version: int) -> CgroupSettings:
    if cgroup_version == 2:
        return CgroupSettings({"cpu.idle": "1"}, {"cpu.idle": {"cpu.weight": "1"}})
    return CgroupSettings({"cpu.idle": "1"}, {"cpu.idle": {"cpu.shares": "2"}})


@dataclass(frozen=True)
class CpuQuota:
    quota_us: int | None  # None: no cap (cgroup v1 -1, v2 "max")
    period_us: int
    reason: str

    @property
    def millis(self) -> int | None:
        return None if self.quota_us is None else self.quota_us * 1000 // self.period_us

    def cgroup_v1(self) -> dict[str, str]:
        quota = -1 if self.quota_us is None else self.quota_us
        return {"cpu.cfs_period_us": str(self.period_us), "cpu.cfs_quota_us": str(quota)}

    def cgroup_v2(self) -> dict[str, str]:
        return {"cpu.max": f"{'max' if self.quota_us is None else self.quota_us} {self.period_us}"}


def suppress_quota(capacity_millis: int, threshold: float, prod_usage_millis: int,
                   floor_millis: int = DEFAULT_QUOTA_FLOOR_MILLIS,
                   period_us: int = DEFAULT_CFS_PERIOD_US) -> CpuQuota:
    if threshold >= 1.0:
        return CpuQuota(None, period_us, f"threshold {threshold:g} keeps no headroom back: batch runs idle-class "
                                         "only, without a quota")
    room = int(capacity_millis * threshold) - prod_usage_millis
    millis = max(room, floor_millis)
    if room < floor_millis:
        reason = (f"prod uses {prod_usage_millis}m of the {int(capacity_millis * threshold)}m allowed "
                  f"({threshold:g} x {capacity_millis}m): batch held at the floor of {floor_millis}m")
    else:
        reason = (f"batch capped at {millis}m = {capacity_millis}m x {threshold:g} - {prod_usage_millis}m "
                  "used by prod")
    return CpuQuota(millis * period_us // 1000, period_us, reason)


@dataclass(frozen=True)
class PodUsage:
    """A pod on the node as the ladder sees it; `batch` False means prod (never a victim)."""

    namespace: str
    name: str
    priority: int
    batch: bool
    cpu_millis: int = 0
    memory_bytes: int = 0
    batch_cpu_request: int = 0  # sigma.io/batch-cpu, milli-cores
    batch_memory_request: int = 0  # sigma.io/batch-memory, bytes


@dataclass(frozen=True)
class NodeState:
    memory_capacity_bytes: int
    memory_used_bytes: int
    batch_cpu_allocatable: int
    batch_memory_allocatable: int


@dataclass(frozen=True)
class Eviction:
    namespace: str
    name: str
    reason: str


def _victim_order(pods: Iterable[PodUsage], usage: str) -> list[PodUsage]:
    batch = [p for p in pods if p.batch]
    return sorted(batch, key=lambda p: (p.priority, -getattr(p, usage), p.namespace, p.name))


def choose_evictions(node: NodeState, pods: Sequence[PodUsage], high: float = DEFAULT_MEMORY_HIGH,
                     low: float = DEFAULT_MEMORY_LOW) -> list[Eviction]:
    """Batch pods to evict now, in order, each with its reason."""
    chosen: dict[tuple[str, str], Eviction] = {}
    capacity = max(node.memory_capacity_bytes, 1)
    used = node.memory_used_bytes
    if used > high * capacity:
        target = int(low * capacity)
        for pod in _victim_order(pods, "memory_bytes"):
            if used <= target:
                break
            chosen[(pod.namespace, pod.name)] = Eviction(pod.namespace, pod.name, (
                f"node memory {used / capacity:.0%} is above the high watermark {high:.0%}: evicting batch pod "
                f"(priority {pod.priority}, {pod.memory_bytes} bytes used) to get under {low:.0%}"))
            used -= pod.memory_bytes
    remaining = [p for p in pods if (p.namespace, p.name) not in chosen]
    for resource, allocatable, request in (("sigma.io/batch-memory", node.batch_memory_allocatable,
                                            "batch_memory_request"),
                                           ("sigma.io/batch-cpu", node.batch_cpu_allocatable,
                                            "batch_cpu_request")):
        total = sum(getattr(p, request) for p in remaining if p.batch)
        usage = "memory_bytes" if resource.endswith("memory") else "cpu_millis"
        for pod in _victim_order(remaining, usage):
            if total <= allocatable:
                break
            chosen[(pod.namespace, pod.name)] = Eviction(pod.namespace, pod.name, (
                f"batch pods request {total} {resource} but the node's batch allocatable shrank to "
                f"{allocatable}: evicting batch pod (priority {pod.priority})"))
            total -= getattr(pod, request)
        remaining = [p for p in remaining if (p.namespace, p.name) not in chosen]
    return list(chosen.values())


# -- the cpuset suppress policy ------------------------------------------------------------
CFS_QUOTA = "cfsQuota"
CPUSET = "cpuset"
SUPPRESS_POLICIES = (CFS_QUOTA, CPUSET)


def parse_cpus(text: str) -> tuple[int, ...]:
    """A kernel cpu list ("0-2,5") as sorted CPU numbers."""
    out: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(out))


def format_cpus(cpus: Iterable[int]) -> str:
    """CPU numbers as a kernel cpu list, ranges folded: (1, 2, 3, 5) -> "1-3,5"."""
    parts: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class BatchCpuset:
    cpus: tuple[int, ...]  # sorted
    reason: str

    @property
    def text(self) -> str:
        return format_cpus(self.cpus)


def shared_cpus(node_cpus: Iterable[int], prod_exclusive: Iterable[int]) -> tuple[int, ...]:
    """The node's CPUs no prod pod holds exclusively; never empty while the node has CPUs
    (should prod hold them all, batch keeps the highest one rather than stopping)."""
    cpus = sorted(set(node_cpus))
    exclusive = set(prod_exclusive)
    shared = [c for c in cpus if c not in exclusive]
    return tuple(shared or cpus[-1:])


def suppress_cpuset(node_cpus: Iterable[int], prod_exclusive: Iterable[int], capacity_millis: int,
                    threshold: float, prod_usage_millis: int, current: Iterable[int] = ()) -> BatchCpuset:
    """The cpuset suppress policy: batch runs on N = max(1, floor(room / 1000)) whole CPUs,
    room = capacity x threshold - prod usage, never on a CPU a prod pod holds exclusively.

    Batch takes the highest-numbered CPUs (prod's exclusive cores, and so the busiest part of
    its shared pool, fill from the low end). The choice is sticky: the CPUs batch has now
    (`current`) are kept while still allowed; growing adds the highest free ones, shrinking
    drops the lowest, so an unchanged N never moves batch around.
    """
    shared = shared_cpus(node_cpus, prod_exclusive)
    if threshold >= 1.0:
        return BatchCpuset(shared, f"threshold {threshold:g} keeps no headroom back: batch may use every "
                                   f"CPU not held by prod ({format_cpus(shared)})")
    allowed = int(capacity_millis * threshold)
    room = allowed - prod_usage_millis
    wanted = min(max(1, room // 1000), len(shared))
    kept = sorted(set(current) & set(shared))
    if len(kept) >= wanted:
        chosen = kept[len(kept) - wanted:]
    else:
        others = [c for c in shared if c not in kept]
        chosen = sorted(kept + others[len(others) - (wanted - len(kept)):])
    if room < 1000:
        reason = (f"prod uses {prod_usage_millis}m of the {allowed}m allowed ({threshold:g} x {capacity_millis}m): "
                  f"batch held at the floor of one CPU ({format_cpus(chosen)})")
    else:
        reason = (f"batch confined to {wanted} CPU(s) ({format_cpus(chosen)}): {room}m = {capacity_millis}m x "
                  f"{threshold:g} - {prod_usage_millis}m used by prod")
    return BatchCpuset(tuple(chosen), reason)
