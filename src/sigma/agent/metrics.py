"""Usage metrics, pure: parse what the kernel reports, turn two samples into rates, and
render the Prometheus text exposition. The reader (collector.py) only gathers text.

Memory is reported as the working set, usage minus inactive file cache, as kubelet and
cAdvisor do: cache the kernel can drop at once is not pressure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    pod: str
    uid: str
    qos: str
    usage: Usage


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
    )


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}" if labels else ""


def render_prometheus(node: Usage, pods: list[PodUsage]) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, rows: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value:g}" for labels, value in rows)

    def pressure_rows(u: Usage, **base: str) -> list[tuple[str, float]]:
        return [
            (_labels(**base, resource=r, kind=k), getattr(p, f"{k}_total_us") / 1e6)
            for r, p in sorted(u.pressure.items())
            for k in ("some", "full")
        ]

    family("sigma_agent_node_cpu_usage_cores", "gauge", "CPU cores used by the node.", [("", node.cpu_cores)])
    family(
        "sigma_agent_node_memory_working_set_bytes",
        "gauge",
        "Memory used by the node, without inactive page cache.",
        [("", node.memory_working_set_bytes)],
    )
    family(
        "sigma_agent_node_pressure_stalled_seconds_total",
        "counter",
        "Time tasks stalled on a resource (PSI).",
        pressure_rows(node),
    )
    ids = [(p, {"namespace": p.namespace, "pod": p.pod, "qos": p.qos}) for p in pods]
    family(
        "sigma_agent_pod_cpu_usage_cores",
        "gauge",
        "CPU cores used by the pod.",
        [(_labels(**lab), p.usage.cpu_cores) for p, lab in ids],
    )
    family(
        "sigma_agent_pod_memory_working_set_bytes",
        "gauge",
        "Memory used by the pod, without inactive page cache.",
        [(_labels(**lab), p.usage.memory_working_set_bytes) for p, lab in ids],
    )
    family(
        "sigma_agent_pod_pressure_stalled_seconds_total",
        "counter",
        "Time the pod's tasks stalled on a resource (PSI).",
        [row for p, lab in ids for row in pressure_rows(p.usage, **lab)],
    )
    return "\n".join(lines) + "\n"
