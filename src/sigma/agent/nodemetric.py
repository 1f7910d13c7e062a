"""The NodeMetric the agent reports every few seconds (sigma.io/v1, cluster-scoped, named
after the node), built purely from the collector's readings. The shape is the one Level-0
reads, documented in sigma.colocation.slo:

    status: {timestamp, window_s,
             node:  {cpu_millis, memory_bytes, capacity_cpu_millis, capacity_memory_bytes},
             prod:  {cpu_millis, memory_bytes, cpu_peak_millis, memory_peak_bytes},
             batch: {cpu_millis, memory_bytes},
             pods:  [{namespace, name, qos, cpu_millis, memory_bytes,
                      containers: [{name, cpu_millis, memory_bytes}]}]}

Level-0 turns it into batch allocatable = capacity x threshold - max(prod peak, predicted
prod) - reserve, so the prod peak matters more than the prod average: the agent keeps the
readings of the last `window_seconds` and reports the highest prod CPU and memory among them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.nodestatus import rfc3339_micro
from sigma.agent.usage_metrics import PodUsage, Usage

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
    _last_build: float | None = None  # the previous report: CPU rates are measured since then

    def build(self, now: float, node: Usage, pods: list[PodUsage]) -> dict[str, Any]:
        prod, batch = tier_totals(pods)
        since = None if self._last_build is None else round(now - self._last_build, 3)
        self._last_build = now
        self._prod.append((now, prod))
        while self._prod and self._prod[0][0] < now - self.window_seconds:
            self._prod.popleft()
        return {
            "apiVersion": "sigma.io/v1",
            "kind": "NodeMetric",
            "metadata": {"name": self.node_name},
            "status": {
                "timestamp": rfc3339_micro(now),
                "window_s": int(self.window_seconds),
                **({"sample_window_s": since} if since is not None and since > 0 else {}),
                "node": {
                    "cpu_millis": round(node.cpu_cores * 1000),
                    "memory_bytes": node.memory_working_set_bytes,
                    "capacity_cpu_millis": self.capacity_cpu_millis,
                    "capacity_memory_bytes": self.capacity_memory_bytes,
                },
                "prod": {
                    "cpu_millis": prod.cpu_millis,
                    "memory_bytes": prod.memory_bytes,
                    "cpu_peak_millis": max(t.cpu_millis for _, t in self._prod),
                    "memory_peak_bytes": max(t.memory_bytes for _, t in self._prod),
                },
                "batch": {"cpu_millis": batch.cpu_millis, "memory_bytes": batch.memory_bytes},
                "pods": [
                    {"namespace": p.namespace, "name": p.pod, "qos": p.qos,
                     "cpu_millis": round(p.usage.cpu_cores * 1000),
                     "memory_bytes": p.usage.memory_working_set_bytes,
                     **({"containers": [{"name": name, "cpu_millis": round(u.cpu_cores * 1000),
                                         "memory_bytes": u.memory_working_set_bytes}
                                        for name, u in p.containers]} if p.containers else {})}
                    for p in sorted(pods, key=lambda p: (p.namespace, p.pod))
                ],
            },
        }
