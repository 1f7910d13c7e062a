"""The NodeMetric the agent reports every few seconds (sigma.io/v1, cluster-scoped, named
after the node), built purely from the collector's readings.

Level-0 turns it into batch allocatable = capacity x threshold - max(prod peak, predicted
prod) - reserve, so the prod peak matters more than the prod average: the agent keeps the
readings of the last `window_seconds` and reports the highest prod CPU and memory among them.

    status: {timestamp, windowSeconds,
             node:  {cpuMillis, memoryBytes, capacityCpuMillis, capacityMemoryBytes},
             prod:  {cpuMillis, memoryBytes, cpuPeakMillis, memoryPeakBytes},
             batch: {cpuMillis, memoryBytes},
             pods:  [{namespace, name, qos, cpuMillis, memoryBytes}]}
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.metrics import PodUsage, Usage
from sigma.agent.nodestatus import rfc3339

BATCH_QOS = "BE"


@dataclass(frozen=True)
class TierTotals:
    cpu_millis: int
    memory_bytes: int


def tier_totals(pods: list[PodUsage]) -> tuple[TierTotals, TierTotals]:
    """(prod, batch) sums; the QoS label says which side a pod is on (BE is batch)."""
    prod = [p.usage for p in pods if p.qos != BATCH_QOS]
    batch = [p.usage for p in pods if p.qos == BATCH_QOS]

    def total(usages: list[Usage]) -> TierTotals:
        return TierTotals(round(sum(u.cpu_cores for u in usages) * 1000),
                          sum(u.memory_working_set_bytes for u in usages))

    return total(prod), total(batch)


@dataclass
class NodeMetricBuilder:
    node_name: str
    capacity_cpu_millis: int
    capacity_memory_bytes: int
    window_seconds: float = 60.0
    _prod: deque[tuple[float, TierTotals]] = field(default_factory=deque)

    def build(self, now: float, node: Usage, pods: list[PodUsage]) -> dict[str, Any]:
        prod, batch = tier_totals(pods)
        self._prod.append((now, prod))
        while self._prod and self._prod[0][0] < now - self.window_seconds:
            self._prod.popleft()
        return {
            "apiVersion": "sigma.io/v1",
            "kind": "NodeMetric",
            "metadata": {"name": self.node_name},
            "status": {
                "timestamp": rfc3339(now),
                "windowSeconds": int(self.window_seconds),
                "node": {
                    "cpuMillis": round(node.cpu_cores * 1000),
                    "memoryBytes": node.memory_working_set_bytes,
                    "capacityCpuMillis": self.capacity_cpu_millis,
                    "capacityMemoryBytes": self.capacity_memory_bytes,
                },
                "prod": {
                    "cpuMillis": prod.cpu_millis,
                    "memoryBytes": prod.memory_bytes,
                    "cpuPeakMillis": max(t.cpu_millis for _, t in self._prod),
                    "memoryPeakBytes": max(t.memory_bytes for _, t in self._prod),
                },
                "batch": {"cpuMillis": batch.cpu_millis, "memoryBytes": batch.memory_bytes},
                "pods": [
                    {"namespace": p.namespace, "name": p.pod, "qos": p.qos,
                     "cpuMillis": round(p.usage.cpu_cores * 1000),
                     "memoryBytes": p.usage.memory_working_set_bytes}
                    for p in sorted(pods, key=lambda p: (p.namespace, p.pod))
                ],
            },
        }
