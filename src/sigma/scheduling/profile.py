"""PodProfile: what the pre-filter step computes once per distinct pod shape.

Pods created by one Deployment or one batch task differ only in uid, name and priority, so
everything the filters and scores need that does not change between placements (the
request vector, the static node mask, eligible spread domains, which domain counters to
read) is computed once per shape and reused; only the counters themselves move.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sigma.scheduling.arrays import BoolArray, FloatArray
from sigma.scheduling.labels import node_affinity_mask, selector_matches
from sigma.scheduling.model import (
    CPU,
    MEMORY,
    PODS,
    UNSCHEDULABLE_TAINT,
    HostPorts,
    PodSpec,
    SpreadConstraint,
    Toleration,
    WhenUnsatisfiable,
)
from sigma.scheduling.snapshot import ClusterSnapshot, RequestVector
from sigma.scheduling.topology import CountKey, DomainCounts


@dataclass(frozen=True)
class SpreadCheck:
    constraint: SpreadConstraint
    counts: DomainCounts
    self_match: int  # 1 if the pod itself matches the selector (it will count once placed)
    eligible_domains: BoolArray  # domains holding a node that passes the pod's node affinity


@dataclass
class PodProfile:
    request: RequestVector
    scored_rows: tuple[int, ...]  # resources the allocation scores look at
    node_affinity: BoolArray
    tolerations: tuple[Toleration, ...]
    tolerates_unschedulable: bool
    hard_spread: tuple[SpreadCheck, ...]
    soft_spread: tuple[SpreadCheck, ...]
    anti_affinity: tuple[DomainCounts, ...]
    host_ports: HostPorts = ()
    # Filled in by the scheduler from its per-equivalence-class cache.
    static_mask: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    static_score: FloatArray = field(default_factory=lambda: np.zeros(0))


def shape_key(pod: PodSpec) -> tuple[object, ...]:
    """Every field of the pod that scheduling depends on, except identity and priority."""
    return (pod.placement_key, pod.requests, pod.namespace, pod.labels, pod.anti_affinity, pod.spread,
            pod.host_ports)


def build_profile(snapshot: ClusterSnapshot, pod: PodSpec) -> PodProfile:
    node_affinity = node_affinity_mask(snapshot.labels, pod.node_selector, pod.required_affinity)
    request = snapshot.request_vector(pod.requests)
    checks = [_spread_check(snapshot, pod, c, node_affinity) for c in pod.spread]
    anti = tuple(
        snapshot.topology.counts(CountKey(term.topology_key, term.namespace or pod.namespace, term.selector))
        for term in pod.anti_affinity
    )
    return PodProfile(
        request=request,
        scored_rows=_scored_rows(snapshot, request),
        node_affinity=node_affinity,
        tolerations=pod.tolerations,
        tolerates_unschedulable=any(t.tolerates(UNSCHEDULABLE_TAINT) for t in pod.tolerations),
        hard_spread=tuple(c for c in checks if _is_hard(c.constraint)),
        soft_spread=tuple(c for c in checks if not _is_hard(c.constraint)),
        anti_affinity=anti,
        host_ports=pod.host_ports,
    )


def _scored_rows(snapshot: ClusterSnapshot, request: RequestVector) -> tuple[int, ...]:
    """The dimensions the pod asks for, except the pod count; cpu and memory if it asks none.
    So a batch pod is scored on batch-cpu/batch-memory and a prod pod on cpu/memory."""
    pods_row = snapshot.resource_row(PODS)
    rows = tuple(row for row in request.asked if row != pods_row)
    return rows or tuple(snapshot.resource_row(r) for r in (CPU, MEMORY) if r in snapshot.resources)


def _is_hard(constraint: SpreadConstraint) -> bool:
    return constraint.when_unsatisfiable is WhenUnsatisfiable.DO_NOT_SCHEDULE


def _spread_check(
    snapshot: ClusterSnapshot, pod: PodSpec, constraint: SpreadConstraint, node_affinity: BoolArray
) -> SpreadCheck:
    key = CountKey(constraint.topology_key, pod.namespace, constraint.selector)
    counts = snapshot.topology.counts(key)
    domains = counts.domains
    eligible = np.zeros(domains.count + 1, dtype=bool)
    eligible[domains.of_node[node_affinity & domains.labelled]] = True
    eligible[domains.count] = False
    return SpreadCheck(constraint, counts, int(selector_matches(constraint.selector, pod.labels)), eligible)
