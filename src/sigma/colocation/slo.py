"""NodeSLO and NodeMetric: the co-location objects' shapes, read into plain values. Pure.

NodeSLO (sigma.io/v1, cluster-scoped). The object named after a node applies to that node;
the one named `cluster-default` to every node without its own; missing fields take the
defaults below. Level-0 reads the thresholds, the agent the ladder's settings.

    spec:
      cpuThreshold: 0.65            # Level-0 and suppress: prod + batch <= this x capacity
      memoryThreshold: 0.70
      memoryEvictHigh: 0.90         # agent: evict batch above this share of node memory...
      memoryEvictLow: 0.85          # ...until under this one
      batchCpuFloorMillis: 100      # agent: the suppress quota never goes below this
      l3BatchWayShare: 0.3          # agent: share of L3 ways for batch (resctrl)
      batchMemoryBandwidthPercent: 30
      cpuSuppressPolicy: cfsQuota   # agent: cfsQuota (a CFS quota on the batch parent) or
                                    # cpuset (batch confined to whole CPUs, no quota)
      network: {linkMbps: 1000, threshold: 0.9, batchEgressMbps: 500, ...}
                                    # agent: batch pods' bandwidth (sigma.colocation.netladder)
      cpuBurstStrategy: {policy: cpuBurstOnly, cpuBurstPercent: 1000}
                                    # agent: prod's CFS burst (sigma.colocation.cpuburst)

NodeMetric (sigma.io/v1, cluster-scoped, name = node name), written by the agent every few
seconds; cpu in milli-cores, memory in bytes (working set), peaks over `window_s`:

    status:
      timestamp: 1764000000.0       # seconds since the epoch (an RFC 3339 string also works)
      window_s: 60
      node:  {cpu_millis, memory_bytes}                          # whole machine
      prod:  {cpu_millis, memory_bytes, cpu_peak_millis, memory_peak_bytes}
      batch: {cpu_millis, memory_bytes}
      predicted: {cpu_millis, memory_bytes}  # optional: prod usage expected within the lead
                                             # time (written by the predictive scaler)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.colocation.cpuburst import DEFAULT_CPU_BURST, CpuBurst, cpu_burst, validate_cpu_burst
from sigma.colocation.ladder import (
    CFS_QUOTA,
    DEFAULT_MEMORY_HIGH,
    DEFAULT_MEMORY_LOW,
    DEFAULT_QUOTA_FLOOR_MILLIS,
    SUPPRESS_POLICIES,
)
from sigma.colocation.level0 import DEFAULT_THRESHOLDS, ProdUsage, Resources, Thresholds
from sigma.colocation.netladder import DEFAULT_NETWORK_SLO, NetworkSLO, network_slo, validate_network_spec

CLUSTER_DEFAULT = "cluster-default"


@dataclass(frozen=True)
class NodeSLO:
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    memory_evict_high: float = DEFAULT_MEMORY_HIGH
    memory_evict_low: float = DEFAULT_MEMORY_LOW
    batch_cpu_floor_millis: int = DEFAULT_QUOTA_FLOOR_MILLIS
    l3_batch_way_share: float = 0.3
    batch_memory_bandwidth_percent: int = 30
    cpu_suppress_policy: str = CFS_QUOTA
    network: NetworkSLO = DEFAULT_NETWORK_SLO
    cpu_burst: CpuBurst = DEFAULT_CPU_BURST


def _fraction(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
    return float(value) if ok else default


def node_slo(spec: Mapping[str, Any] | None) -> NodeSLO:
    """Tolerant: a field out of range takes its default rather than stopping Level-0."""
    spec = spec or {}
    d = NodeSLO()
    floor = spec.get("batchCpuFloorMillis", d.batch_cpu_floor_millis)
    bandwidth = spec.get("batchMemoryBandwidthPercent", d.batch_memory_bandwidth_percent)
    policy = spec.get("cpuSuppressPolicy", d.cpu_suppress_policy)
    return NodeSLO(
        Thresholds(_fraction(spec, "cpuThreshold", d.thresholds.cpu),
                   _fraction(spec, "memoryThreshold", d.thresholds.memory)),
        _fraction(spec, "memoryEvictHigh", d.memory_evict_high),
        _fraction(spec, "memoryEvictLow", d.memory_evict_low),
        floor if isinstance(floor, int) and floor >= 0 else d.batch_cpu_floor_millis,
        _fraction(spec, "l3BatchWayShare", d.l3_batch_way_share),
        bandwidth if isinstance(bandwidth, int) and 0 < bandwidth <= 100 else d.batch_memory_bandwidth_percent,
        policy if policy in SUPPRESS_POLICIES else d.cpu_suppress_policy,
        network_slo(spec.get("network")),
        cpu_burst(spec.get("cpuBurstStrategy")),
    )


def validate_slo_spec(spec: object) -> list[tuple[str, str, str]]:
    """(field path, message, reason) for what the API refuses in a NodeSLO's spec beyond its
    schema: the orders between thresholds, and the enums (an enum has no nearby value to
    fall back on, and a typo there would silently keep what the node's owner meant to change)."""
    if not isinstance(spec, Mapping):
        return []
    return (_validate_thresholds(spec) + validate_network_spec(spec.get("network"))
            + validate_cpu_burst(spec.get("cpuBurstStrategy")))


def _validate_thresholds(spec: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    low, high = spec.get("memoryEvictLow", DEFAULT_MEMORY_LOW), spec.get("memoryEvictHigh", DEFAULT_MEMORY_HIGH)
    if _is_number(low) and _is_number(high) and low > high:
        return [("spec.memoryEvictLow", f"Invalid value: {low}: must be less than or equal to memoryEvictHigh "
                 f"({high})", "FieldValueInvalid")]
    level0 = spec.get("memoryThreshold", DEFAULT_THRESHOLDS.memory)
    if _is_number(level0) and _is_number(low) and level0 > low:
        # Level-0 would offer batch memory that the ladder evicts at once: every node
        # emptied down to memoryEvictLow is refilled on the next round (eviction churn).
        return [("spec.memoryThreshold", f"Invalid value: {level0}: must be less than or equal to memoryEvictLow "
                 f"({low}): batch given memory above it would be evicted at once", "FieldValueInvalid")]
    policy = spec.get("cpuSuppressPolicy")
    if policy is not None and policy not in SUPPRESS_POLICIES:
        allowed = ", ".join(json.dumps(p) for p in SUPPRESS_POLICIES)
        return [("spec.cpuSuppressPolicy", f"Unsupported value: {json.dumps(policy)}: supported values: {allowed}",
                 "FieldValueNotSupported")]
    return []


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(values: Mapping[str, Any], key: str) -> int:
    value = values.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def metric_timestamp(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
    return None


def prod_usage(status: Mapping[str, Any] | None) -> ProdUsage | None:
    """The prod part of a NodeMetric's status; None when it has no usable timestamp."""
    status = status or {}
    stamp = metric_timestamp(status.get("timestamp"))
    prod = status.get("prod")
    if stamp is None or not isinstance(prod, Mapping):
        return None
    return ProdUsage(stamp, _int(prod, "cpu_millis"), _int(prod, "memory_bytes"), _int(prod, "cpu_peak_millis"),
                     _int(prod, "memory_peak_bytes"))


def predicted_usage(status: Mapping[str, Any] | None) -> Resources | None:
    predicted = (status or {}).get("predicted")
    if not isinstance(predicted, Mapping):
        return None
    return Resources(_int(predicted, "cpu_millis"), _int(predicted, "memory_bytes"))
