"""Pure readings of a Kubernetes pod dict that the agent needs: its tier, QoS label,
resources in Sigma's integer units, and the cgroup numbers derived from them.

Tier ("prod" or "batch") decides which cgroup parent a pod lives under. It is derived from
priority bands first (sigma-batch 5000-5999 and sigma-free 3000-3999 are batch) and the
`sigma.io/qos: BE` label second, so a mislabelled batch job still lands in the batch tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sigma.colocation.ladder import parse_cpus
from sigma.quantity import cpu_millis, memory_bytes

PROD = "prod"
BATCH = "batch"
QOS_LABEL = "sigma.io/qos"
BATCH_CPU = "sigma.io/batch-cpu"
BATCH_MEMORY = "sigma.io/batch-memory"
BATCH_BANDS = ((5000, 5999), (3000, 3999))
CFS_PERIOD_US = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144
# oom_score_adj: batch dies first. Guaranteed prod asks for the kubelet's -997; the caller
# falls back to 0 where negative values are refused (EIO in some sandboxes).
BATCH_OOM_SCORE_ADJ = 1000
GUARANTEED_OOM_SCORE_ADJ = -997
DEFAULT_GRACE_SECONDS = 30.0

Pod = dict[str, Any]


@dataclass(frozen=True)
class Resources:
    cpu_request_millis: int = 0
    cpu_limit_millis: int | None = None
    memory_request_bytes: int = 0
    memory_limit_bytes: int | None = None

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_request_millis + other.cpu_request_millis,
            _add_limit(self.cpu_limit_millis, other.cpu_limit_millis),
            self.memory_request_bytes + other.memory_request_bytes,
            _add_limit(self.memory_limit_bytes, other.memory_limit_bytes),
        )


def _add_limit(a: int | None, b: int | None) -> int | None:
    # A pod is only limited when every container is: one unlimited container unlimits the pod.
    return None if a is None or b is None else a + b


def uid(pod: Pod) -> str:
    return str(pod.get("metadata", {}).get("uid", ""))


def labels(pod: Pod) -> dict[str, str]:
    return dict(pod.get("metadata", {}).get("labels") or {})


def qos_label(pod: Pod) -> str:
    """LSE | LSR | LS | BE; pods without the label are LS unless their tier is batch."""
    value = labels(pod).get(QOS_LABEL, "")
    if value in ("LSE", "LSR", "LS", "BE"):
        return value
    return "BE" if tier(pod) == BATCH else "LS"


def tier(pod: Pod) -> str:
    priority = pod.get("spec", {}).get("priority")
    if isinstance(priority, int) and any(lo <= priority <= hi for lo, hi in BATCH_BANDS):
        return BATCH
    return BATCH if labels(pod).get(QOS_LABEL) == "BE" else PROD


def runtime_class(pod: Pod) -> str:
    """`process` unless the pod names a runtime class or a container has an image.

    A pod without image runs a host command: the process runtime is the only one that can.
    """
    name = pod.get("spec", {}).get("runtimeClassName")
    if name:
        return str(name)
    containers = pod.get("spec", {}).get("containers") or []
    return "runc" if any(c.get("image") for c in containers) else "process"


def container_resources(container: dict[str, Any], pod_tier: str) -> Resources:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_key, mem_key = ("cpu", "memory")
    if pod_tier == BATCH and (BATCH_CPU in req or BATCH_CPU in lim or BATCH_MEMORY in lim):
        cpu_key, mem_key = BATCH_CPU, BATCH_MEMORY

    def cpu(d: dict[str, Any]) -> int | None:
        if cpu_key not in d:
            return None
        # sigma.io/batch-cpu quantities are milli-cores already ("2000" = 2 cores).
        return memory_bytes(d[cpu_key]) if cpu_key == BATCH_CPU else cpu_millis(d[cpu_key])

    def mem(d: dict[str, Any]) -> int | None:
        return memory_bytes(d[mem_key]) if mem_key in d else None

    cpu_lim, mem_lim = cpu(lim), mem(lim)
    # Kubernetes defaults a missing request to the limit.
    cpu_req = cpu(req) if cpu(req) is not None else cpu_lim
    mem_req = mem(req) if mem(req) is not None else mem_lim
    return Resources(cpu_req or 0, cpu_lim, mem_req or 0, mem_lim)


def pod_resources(pod: Pod) -> Resources:
    total = Resources(0, 0, 0, 0)
    t = tier(pod)
    for c in pod.get("spec", {}).get("containers") or []:
        total = total + container_resources(c, t)
    return total


def is_guaranteed(pod: Pod) -> bool:
    t = tier(pod)
    for c in pod.get("spec", {}).get("containers") or []:
        r = container_resources(c, t)
        if r.cpu_limit_millis is None or r.memory_limit_bytes is None:
            return False
        if r.cpu_request_millis != r.cpu_limit_millis or r.memory_request_bytes != r.memory_limit_bytes:
            return False
    return True


def cpu_shares(millis: int) -> int:
    """The kubelet's MilliCPUToShares: 1 core = 1024 shares, never below 2."""
    if millis <= 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, millis * 1024 // 1000))


def shares_to_weight(shares: int) -> int:
    """cgroup v2 cpu.weight (1-10000) for a v1 cpu.shares value, as runc/crun convert it."""
    return 1 + ((max(MIN_SHARES, shares) - 2) * 9999) // 262142


def cpu_quota_us(millis: int, period_us: int = CFS_PERIOD_US) -> int:
    # 1ms is the kernel's minimum quota.
    return max(1000, millis * period_us // 1000)


def oom_score_adj(pod: Pod) -> int:
    if tier(pod) == BATCH:
        return BATCH_OOM_SCORE_ADJ
    return GUARANTEED_OOM_SCORE_ADJ if is_guaranteed(pod) else 0


def exclusive_cpu_count(pod: Pod) -> int:
    """Whole cores an LSR/LSE pod gets to itself (its CPU limit, else request, rounded up)."""
    if qos_label(pod) not in ("LSR", "LSE"):
        return 0
    r = pod_resources(pod)
    millis = r.cpu_limit_millis or r.cpu_request_millis
    return -(-millis // 1000) if millis else 0


def pick_exclusive_cpus(all_cpus: list[int], taken: set[int], count: int, keep_shared: int = 1) -> list[int]:
    """Lowest free cores for an exclusive pod, or [] when that would leave fewer than
    `keep_shared` cores for everyone else (the pod then shares the pool, it is not refused)."""
    free = [c for c in sorted(all_cpus) if c not in taken]
    if count <= 0 or len(free) - count < keep_shared:
        return []
    return free[:count]


def grace_seconds(pod: Pod) -> float:
    meta = pod.get("metadata", {})
    for value in (
        meta.get("deletionGracePeriodSeconds"),
        pod.get("spec", {}).get("terminationGracePeriodSeconds"),
    ):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return DEFAULT_GRACE_SECONDS


def format_cpuset(cpus: list[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def parse_cpuset(text: str) -> list[int]:
    return list(parse_cpus(text))
