"""Level-0: how much of a node batch may have, from what prod really uses. Pure.

Per node and per resource (cpu in milli-cores, memory in bytes):

    batch allocatable = capacity x threshold
                        - max(prod usage peak over the window, predicted prod usage)
                        - system reserve,                               floored at 0

Why the peak and not the current usage: batch placed now must still fit when prod swings
back up within the window, or the agent has to evict it minutes later. Why the prediction:
before a known rush (a shopping festival at midnight) the predictive scaler says how much
prod will use; reserving it ahead drains batch before the rush instead of after the first
latency violations.

Stale metrics. If the node's last report is older than `staleness_s` (the agent died, the
network split), its usage cannot be trusted to be low; Level-0 falls back to what prod
*requested* (max with the prediction), which is what a cluster without co-location would
reserve. Never to 0: an absent report must shrink batch, not grow it.

Defaults (documented in the README), in the spirit of Koordinator's reclaim thresholds:
- threshold: cpu 0.65, memory 0.70 of capacity. The remaining 35% of cpu is head-room for
  prod bursts inside a reporting window (cpu is reclaimed at once by cpu.idle and the
  suppress quota); memory cannot be taken back without killing, so its backstop is the
  agent's eviction watermark (0.90, sigma.colocation.ladder), well above 0.70.
- staleness: 60 s (agents report every few seconds).
- update fraction: 0.05; a node's published value changes only when the new one differs by
  more than 5%, so the Node object (and everything watching it) is not rewritten on every
  report for noise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    cpu_millis: int = 0
    memory_bytes: int = 0


ZERO = Resources()


@dataclass(frozen=True)
class Thresholds:
    """Fractions of capacity that prod + batch together may use on a node (NodeSLO)."""

    cpu: float = 0.65
    memory: float = 0.70


DEFAULT_THRESHOLDS = Thresholds()
DEFAULT_STALENESS_S = 60.0
DEFAULT_UPDATE_FRACTION = 0.05


@dataclass(frozen=True)
class ProdUsage:
    """What prod used on the node, as of `timestamp` (seconds since the epoch)."""

    timestamp: float
    cpu_millis: int
    memory_bytes: int
    cpu_peak_millis: int = 0  # peak over the reporting window; 0 when unknown
    memory_peak_bytes: int = 0


@dataclass(frozen=True)
class NodeInput:
    capacity: Resources
    prod_requests: Resources  # sum of the requests of prod pods bound to the node
    usage: ProdUsage | None = None  # None when the node never reported
    predicted: Resources | None = None  # predicted prod usage for the coming lead time
    reserve: Resources = ZERO  # the system's share (agent, kernel, daemons)
    thresholds: Thresholds = DEFAULT_THRESHOLDS


@dataclass(frozen=True)
class BatchAllocatable:
    cpu_millis: int
    memory_bytes: int
    basis: str  # "usage" or "requests": what the prod term was computed from
    reason: str  # one line a person can read in an Event

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_millis, self.memory_bytes)


def batch_allocatable(node: NodeInput, now: float, staleness_s: float = DEFAULT_STALENESS_S) -> BatchAllocatable:
    usage = node.usage
    fresh = usage is not None and now - usage.timestamp <= staleness_s
    if usage is not None and fresh:
        prod = Resources(max(usage.cpu_millis, usage.cpu_peak_millis),
                         max(usage.memory_bytes, usage.memory_peak_bytes))
        basis = "usage"
        why = "prod usage peak"
    else:
        prod = node.prod_requests
        basis = "requests"
        why = ("prod requests (no metrics reported)" if usage is None else
               f"prod requests (metrics {now - usage.timestamp:.0f}s old > {staleness_s:.0f}s)")
    if node.predicted is not None:
        if node.predicted.cpu_millis > prod.cpu_millis or node.predicted.memory_bytes > prod.memory_bytes:
            why += " raised to the predicted prod usage"
        prod = Resources(max(prod.cpu_millis, node.predicted.cpu_millis),
                         max(prod.memory_bytes, node.predicted.memory_bytes))
    cpu = _one(node.capacity.cpu_millis, node.thresholds.cpu, prod.cpu_millis, node.reserve.cpu_millis)
    memory = _one(node.capacity.memory_bytes, node.thresholds.memory, prod.memory_bytes, node.reserve.memory_bytes)
    reason = (f"batch cpu {cpu}m = {node.capacity.cpu_millis}m x {node.thresholds.cpu:g} - {prod.cpu_millis}m "
              f"({why}) - {node.reserve.cpu_millis}m reserved; batch memory {memory} bytes")
    return BatchAllocatable(cpu, memory, basis, reason)


def _one(capacity: int, threshold: float, prod: int, reserve: int) -> int:
    # int() of the product truncates toward zero: never offer a fraction of a unit extra.
    return max(int(capacity * threshold) - prod - reserve, 0)


def should_update(current: Resources | None, new: Resources,
                  fraction: float = DEFAULT_UPDATE_FRACTION) -> bool:
    """True when the published value is missing or either resource moved by more than
    `fraction` of its current value. Reaching 0 from anything positive always counts:
    a node with no room left must say so at once."""
    if current is None:
        return True
    return any(_moved(old, value, fraction) for old, value in
               ((current.cpu_millis, new.cpu_millis), (current.memory_bytes, new.memory_bytes)))


def _moved(old: int, new: int, fraction: float) -> bool:
    if old == new:
        return False
    if old <= 0 or new <= 0:
        return True
    return abs(new - old) > fraction * old
