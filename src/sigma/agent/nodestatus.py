"""The agent's Node object, pure: capacity, allocatable, labels, nodeInfo, conditions.

The agent owns only part of the Node: Level-0 writes the batch extended resources into
status.allocatable and the node lifecycle controller may set Ready=Unknown. So the agent
never PUTs the Node; it sends a strategic merge patch of the keys it owns (maps merge key
by key, conditions merge by type), built here from facts gathered by `host_facts`.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma import __version__
from sigma.agent.probe import Capabilities
from sigma.quantity import cpu_millis, format_bytes, format_cpu, memory_bytes

MAX_PODS = 110


@dataclass(frozen=True)
class NodeFacts:
    """What the Node says about the machine; gathered once at start-up."""

    name: str
    address: str
    port: int
    cpu_millis: int
    memory_bytes: int
    reserved_cpu_millis: int = 0
    reserved_memory_bytes: int = 0
    pods: int = MAX_PODS
    kernel: str = ""
    os_image: str = ""
    arch: str = "amd64"
    runtime_version: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    conditions: list[dict[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # the runtime handlers' (probe_handlers.py)


def rfc3339_micro(t: float) -> str:
    """RFC3339 with microseconds, as Lease renewTime (MicroTime) is written."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_reserved(text: str) -> tuple[int, int]:
    """"cpu=500m,memory=512Mi" -> (500, 536870912). Unknown keys are a mistake, not ignored."""
    cpu = mem = 0
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"reserved resource {part!r} is not NAME=QUANTITY")
        if key == "cpu":
            cpu = cpu_millis(value)
        elif key == "memory":
            mem = memory_bytes(value)
        else:
            raise ValueError(f"reserved resource {key!r} is not supported (use cpu and memory)")
    return cpu, mem


def capacity(f: NodeFacts) -> dict[str, str]:
    return {"cpu": format_cpu(f.cpu_millis), "memory": format_bytes(f.memory_bytes), "pods": str(f.pods)}


def allocatable(f: NodeFacts) -> dict[str, str]:
    return {
        "cpu": format_cpu(max(0, f.cpu_millis - f.reserved_cpu_millis)),
        "memory": format_bytes(max(0, f.memory_bytes - f.reserved_memory_bytes)),
        "pods": str(f.pods),
    }


def ready_condition(now: float, previous: list[dict[str, Any]] | None) -> dict[str, str]:
    """Ready=True; lastTransitionTime only moves when the status actually changes."""
    prior = next((c for c in previous or [] if c.get("type") == "Ready"), None)
    since = prior.get("lastTransitionTime") if prior and prior.get("status") == "True" else None
    return {
        "type": "Ready",
        "status": "True",
        "reason": "SigmaAgentReady",
        "message": "sigma agent is posting ready status",
        "lastHeartbeatTime": rfc3339(now),
        "lastTransitionTime": since or rfc3339(now),
    }


def status_patch(f: NodeFacts, now: float, previous_conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The Node status keys the agent owns, as a strategic merge patch body."""
    stamped = [
        {**c, "lastHeartbeatTime": rfc3339(now), "lastTransitionTime": _since(c, now, previous_conditions)}
        for c in f.conditions
    ]
    return {
        "status": {
            "capacity": capacity(f),
            "allocatable": allocatable(f),
            "conditions": [ready_condition(now, previous_conditions), *stamped],
            "addresses": [{"type": "InternalIP", "address": f.address}, {"type": "Hostname", "address": f.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": f.port}},
            "nodeInfo": {
                "kernelVersion": f.kernel,
                "osImage": f.os_image,
                "operatingSystem": "linux",
                "architecture": f.arch,
                "containerRuntimeVersion": f.runtime_version,
                "kubeletVersion": f"sigma-agent/{__version__}",
                "kubeProxyVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
    }


def _since(cond: dict[str, str], now: float, previous: list[dict[str, Any]] | None) -> str:
    prior = next((c for c in previous or [] if c.get("type") == cond["type"]), None)
    if prior and prior.get("status") == cond["status"] and prior.get("lastTransitionTime"):
        return str(prior["lastTransitionTime"])
    return rfc3339(now)


def metadata_patch(f: NodeFacts) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {
                "kubernetes.io/hostname": f.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": f.arch,
                **f.labels,
            },
            "annotations": dict(f.annotations),
        }
    }


def new_node(f: NodeFacts, now: float) -> dict[str, Any]:
    meta = metadata_patch(f)["metadata"]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f.name, **meta}, "spec": {},
            **status_patch(f, now, None)}


# -- gathering the facts (I/O) -------------------------------------------------------------
def host_cpu_millis() -> int:
    return 1000 * len(os.sched_getaffinity(0))


def host_memory_bytes(meminfo: str = "/proc/meminfo") -> int:
    with open(meminfo) as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no MemTotal in {meminfo}")


def os_image() -> str:
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def runtime_version(caps: Capabilities, runtimes: list[str]) -> str:
    parts = [f"runc {caps.runc}" if name == "runc" and caps.runc else name for name in runtimes]
    return f"sigma-agent/{__version__} ({', '.join(parts)})"
