"""Usage metrics, pure: parse what the kernel reports, turn two samples into rates, and
render the Prometheus text exposition (through prometheus-client's metric families). The
reader (collector.py) only gathers text.

Memory is reported as the working set, usage minus inactive file cache, as kubelet and
cAdvisor do: cache the kernel can drop at once is not pressure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

RESOURCES = ("cpu", "memory", "io")


@dataclass(frozen=True)
class Pressure:
    some_avg10: float = 0.0
    full_avg10: float = 0.0
    some_total_us: int = 0
    full_total_us: int = 0


@dataclass(frozen=True)
class Sample:
    """One reading of a cgroup (or of the whole node) at `time` seconds."""

    time: float
    cpu_usage_ns: int
    memory_usage_bytes: int
    inactive_file_bytes: int
    pressure: dict[str, Pressure] = field(default_factory=dict)  # "cpu" | "memory" | "io"


@dataclass(frozen=True)
class Usage:
    cpu_cores: float
    memory_working_set_bytes: int
    pressure: dict[str, Pressure] = field(default_factory=dict)
    cpu_seconds_total: float = 0.0  # the cumulative counter the rate comes from


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    pod: str
    uid: str
    qos: str
    usage: Usage
    # Each container's usage, by name, from its own cgroup under the pod's (metrics.k8s.io
    # PodMetrics lists them; `kubectl top pods --containers` prints them).
    containers: tuple[tuple[str, Usage], ...] = ()


def parse_psi(text: str) -> Pressure:
    """Parse /proc/pressure/<res> or <cgroup>/<res>.pressure."""
    values: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        kind, *pairs = line.split()
        values[kind] = dict(p.split("=", 1) for p in pairs)
    some, full = values.get("some", {}), values.get("full", {})
    return Pressure(
        float(some.get("avg10", 0)),
        float(full.get("avg10", 0)),
        int(some.get("total", 0)),
        int(full.get("total", 0)),
    )


def parse_flat_keyed(text: str) -> dict[str, int]:
    """memory.stat, cpu.stat, memory.events: "key value" lines."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def node_cpu_ns(proc_stat: str, hz: int = 100) -> int:
    """Busy CPU time of the node from the first line of /proc/stat (user..steal, no idle/iowait)."""
    fields = proc_stat.splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // hz


def working_set(usage: int, inactive_file: int) -> int:
    return max(0, usage - inactive_file)


def cpu_rate(prev: Sample, cur: Sample) -> float:
    """Cores used between two samples. A counter that went back (cgroup recreated) gives 0."""
    elapsed = cur.time - prev.time
    delta = cur.cpu_usage_ns - prev.cpu_usage_ns
    if elapsed <= 0 or delta < 0:
        return 0.0
    return delta / 1e9 / elapsed


def usage(prev: Sample | None, cur: Sample) -> Usage:
    return Usage(
        cpu_rate(prev, cur) if prev else 0.0,
        working_set(cur.memory_usage_bytes, cur.inactive_file_bytes),
        dict(cur.pressure),
        cur.cpu_usage_ns / 1e9,
    )


class Families:
    """Metric families already filled: a registry for `generate_latest` of one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)

    def render(self) -> str:
        return generate_latest(self).decode()


def _pressure(family: CounterMetricFamily, u: Usage, *base: str) -> None:
    for resource, p in sorted(u.pressure.items()):
        for kind in ("some", "full"):
            family.add_metric((*base, resource, kind), getattr(p, f"{kind}_total_us") / 1e6)


def usage_families(node: Usage, pods: list[PodUsage]) -> list[Metric]:
    """Kubelet's resource metrics, named as it names them (CPU as a seconds counter, memory
    as the working set), with the pod's QoS beside its name; and PSI stall time."""
    pod_labels = ("namespace", "pod", "qos")
    node_cpu = CounterMetricFamily("sigma_agent_node_cpu_usage_seconds", "CPU time used by the node.")
    node_cpu.add_metric((), node.cpu_seconds_total)
    node_mem = GaugeMetricFamily("sigma_agent_node_memory_working_set_bytes",
                                 "Memory used by the node, without inactive page cache.")
    node_mem.add_metric((), node.memory_working_set_bytes)
    node_psi = CounterMetricFamily("sigma_agent_node_pressure_stalled_seconds",
                                   "Time tasks stalled on a resource (PSI).", labels=("resource", "kind"))
    _pressure(node_psi, node)
    pod_cpu = CounterMetricFamily("sigma_agent_pod_cpu_usage_seconds", "CPU time used by the pod.",
                                  labels=pod_labels)
    pod_mem = GaugeMetricFamily("sigma_agent_pod_memory_working_set_bytes",
                                "Memory used by the pod, without inactive page cache.", labels=pod_labels)
    pod_psi = CounterMetricFamily("sigma_agent_pod_pressure_stalled_seconds",
                                  "Time the pod's tasks stalled on a resource (PSI).",
                                  labels=(*pod_labels, "resource", "kind"))
    for p in pods:
        ids = (p.namespace, p.pod, p.qos)
        pod_cpu.add_metric(ids, p.usage.cpu_seconds_total)
        pod_mem.add_metric(ids, p.usage.memory_working_set_bytes)
        _pressure(pod_psi, p.usage, *ids)
    return [node_cpu, node_mem, node_psi, pod_cpu, pod_mem, pod_psi]


def render_prometheus(node: Usage, pods: list[PodUsage]) -> str:
    """The usage families in the Prometheus text exposition format."""
    return Families(usage_families(node, pods)).render()
