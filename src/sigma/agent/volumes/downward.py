"""The downward API (pure): the value of a fieldRef or resourceFieldRef of a pod, for env
vars and downwardAPI volume files alike, in kubelet's spelling."""

from __future__ import annotations

import math
import re
from typing import Any

from sigma.agent.volumes.sources import Sources
from sigma.quantity import cpu_millis, memory_bytes

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


class DownwardError(ValueError):
    """A fieldPath or resource the downward API does not support."""


def field_value(pod: dict[str, Any], path: str, sources: Sources) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        # A whole map is a file of key="value" lines, sorted (volumes only).
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{_quote(str(v))}"' for k, v in sorted(values.items()))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": sources.pod_ip, "status.hostIP": sources.host_ip,
        "status.podIPs": sources.pod_ip, "status.hostIPs": sources.host_ip,
    }
    if path not in simple:
        raise DownwardError(f'unsupported fieldPath: "{path}"')
    return str(simple[path] or "")


def _quote(value: str) -> str:
    # Go's strconv.Quote without the outer quotes, for what labels and annotations hold.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_value(pod: dict[str, Any], container_name: str, ref: dict[str, Any], sources: Sources) -> str:
    """limits.cpu, limits.memory, requests.cpu, requests.memory of a container divided by
    ``divisor`` (default 1) and rounded up; an unset limit is the node's allocatable."""
    resource = str(ref.get("resource") or "")
    name = ref.get("containerName") or container_name
    container = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), None)
    if container is None:
        raise DownwardError(f'container "{name}" not found in the pod')
    kind, _, what = resource.partition(".")
    if kind not in ("limits", "requests") or what not in ("cpu", "memory"):
        raise DownwardError(f'unsupported container resource: "{resource}"')
    values = ((container.get("resources") or {}).get(kind) or {})
    divisor = ref.get("divisor") or "1"
    if what == "cpu":
        millis = cpu_millis(values["cpu"]) if "cpu" in values else (
            sources.node_cpu_millis if kind == "limits" else 0)
        return str(math.ceil(millis / max(1, cpu_millis(divisor))))
    size = memory_bytes(values["memory"]) if "memory" in values else (
        sources.node_memory_bytes if kind == "limits" else 0)
    return str(math.ceil(size / max(1, memory_bytes(divisor))))
