"""The metrics reader: reads cgroup and /proc files into metrics.Sample and keeps the
previous sample per pod so rates can be computed. All arithmetic lives in metrics.py."""

from __future__ import annotations

import os

from sigma.agent import podspec
from sigma.agent.cgroups import CgroupTree
from sigma.agent.kernelfiles import read_text
from sigma.agent.usage_metrics import (
    RESOURCES,
    PodUsage,
    Pressure,
    Sample,
    Usage,
    node_cpu_ns,
    parse_flat_keyed,
    parse_meminfo,
    parse_psi,
    usage,
)


def _pressure(directory: str, pattern: str) -> dict[str, Pressure]:
    out = {}
    for res in RESOURCES:
        text = read_text(os.path.join(directory, pattern.format(res)))
        if text:
            out[res] = parse_psi(text)
    return out


class Collector:
    def __init__(self, cgroups: CgroupTree | None, proc: str = "/proc") -> None:
        self.cgroups, self.proc = cgroups, proc
        self._previous: dict[str, Sample] = {}

    def node_sample(self, now: float) -> Sample:
        mem = parse_meminfo(read_text(os.path.join(self.proc, "meminfo")) or "")
        used = mem.get("MemTotal", 0) - mem.get("MemFree", 0)
        return Sample(
            now,
            node_cpu_ns(read_text(os.path.join(self.proc, "stat")) or "cpu 0 0 0 0 0 0 0 0"),
            used,
            mem.get("Inactive(file)", 0),
            _pressure(os.path.join(self.proc, "pressure"), "{}"),
        )

    def cgroup_sample(self, rel: str, now: float) -> Sample | None:
        cg = self.cgroups
        if cg is None or not cg.exists(rel):
            return None
        if cg.version == 1:
            cpu_ns = int(cg.read("cpuacct", rel, "cpuacct.usage") or 0)
            mem_usage = int(cg.read("memory", rel, "memory.usage_in_bytes") or 0)
            stat = parse_flat_keyed(cg.read("memory", rel, "memory.stat") or "")
            inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
        else:
            cpu_ns = parse_flat_keyed(cg.read("cpu", rel, "cpu.stat") or "").get("usage_usec", 0) * 1000
            mem_usage = int(cg.read("memory", rel, "memory.current") or 0)
            inactive = parse_flat_keyed(cg.read("memory", rel, "memory.stat") or "").get("inactive_file", 0)
        pdir = cg.pressure_dir(rel)
        return Sample(now, cpu_ns, mem_usage, inactive, _pressure(pdir, "{}.pressure") if pdir else {})

    def collect(self, pods: list[podspec.Pod], now: float) -> tuple[Usage, list[PodUsage]]:
        """Usage of the node and of every pod that has a cgroup, since the previous call."""
        node = self.node_sample(now)
        node_usage = usage(self._previous.get(""), node)
        current = {"": node}
        out = []
        for pod in pods:
            uid = podspec.uid(pod)
            if self.cgroups is None:
                continue
            sample = self.cgroup_sample(self.cgroups.pod_path(podspec.tier(pod), uid), now)
            if sample is None:
                continue
            current[uid] = sample
            containers = []
            for name in _container_names(pod):
                key = f"{uid}/{name}"
                part = self.cgroup_sample(f"{self.cgroups.pod_path(podspec.tier(pod), uid)}/{name}", now)
                if part is not None:
                    current[key] = part
                    containers.append((name, usage(self._previous.get(key), part)))
            meta = pod.get("metadata", {})
            out.append(
                PodUsage(
                    meta.get("namespace", "default"),
                    meta.get("name", ""),
                    uid,
                    podspec.qos_label(pod),
                    usage(self._previous.get(uid), sample),
                    tuple(containers),
                )
            )
        self._previous = current
        return node_usage, out


def _container_names(pod: podspec.Pod) -> list[str]:
    """The pod's (non-init) containers: each has a cgroup under the pod's, named after it."""
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []
            if isinstance(c, dict) and c.get("name")]
