"""Builders for nodes and pods in scheduling tests (a small cluster in a few lines)."""

from __future__ import annotations

from typing import Any

from sigma.scheduling import (
    CPU,
    MEMORY,
    PODS,
    ClusterSnapshot,
    NodeSpec,
    PodSpec,
    Scheduler,
    labels,
    requests,
)

GIB = 2**30


def node(name: str, cpu: int = 4000, memory: int = 8 * GIB, pods: int = 110, **fields: Any) -> NodeSpec:
    extra = fields.pop("allocatable", {})
    node_labels = labels(fields.pop("labels", {}))
    return NodeSpec(name, {CPU: cpu, MEMORY: memory, PODS: pods, **extra}, node_labels, **fields)


def pod(name: str, cpu: int = 100, memory: int = GIB // 8, priority: int = 0, **fields: Any) -> PodSpec:
    extra = fields.pop("requests", {})
    pod_labels = labels(fields.pop("labels", {}))
    selector = labels(fields.pop("node_selector", {}))
    return PodSpec(
        name,
        name,
        priority=priority,
        requests=requests({CPU: cpu, MEMORY: memory, **extra}),
        labels=pod_labels,
        node_selector=selector,
        **fields,
    )


def scheduler(nodes: list[NodeSpec], placed: list[tuple[PodSpec, str]] | None = None, **kw: Any) -> Scheduler:
    return Scheduler(ClusterSnapshot(nodes, placed or []), **kw)
