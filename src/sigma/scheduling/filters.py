"""Filters: each decides, for every node at once, whether a pod may go there.

The contract (one per filter class, like a Kubernetes Filter plugin or a Nomad checker):

- `feasible(snapshot, profile)` returns a boolean mask over nodes. It reads the snapshot
  and the pod's profile and never mutates them. It is on the hot path: vectorised only.
- `rejections(snapshot, profile)` is the slow path, run only when a pod fits nowhere. It
  returns disjoint groups (node mask, Status) saying WHY each rejected node failed, worded
  like kube-scheduler, with the right code: Unschedulable if evicting pods could help,
  UnschedulableAndUnresolvable if not.

Static filters depend only on node labels/taints and the pod's placement key, so the
scheduler caches their combined mask per equivalence class.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sigma.scheduling.arrays import BoolArray
from sigma.scheduling.model import PODS, Taint, TaintEffect, Toleration, host_ports_conflict
from sigma.scheduling.profile import PodProfile
from sigma.scheduling.snapshot import ClusterSnapshot
from sigma.scheduling.status import (
    REASON_ANTI_AFFINITY,
    REASON_HOST_PORTS,
    REASON_NODE_AFFINITY,
    REASON_SPREAD,
    REASON_SPREAD_MISSING_LABEL,
    REASON_TOO_MANY_PODS,
    REASON_UNSCHEDULABLE_NODE,
    Code,
    Status,
    insufficient,
    untolerated_taint,
)

Rejections = list[tuple[BoolArray, Status]]


class Filter(Protocol):
    name: str

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray: ...

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections: ...


class NodeUnschedulable:
    """Cordoned nodes take no new pods, unless the pod tolerates the unschedulable taint."""

    name = "NodeUnschedulable"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        if profile.tolerates_unschedulable:
            return np.ones(snapshot.node_count, dtype=bool)
        return ~snapshot.unschedulable

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        status = Status(Code.UNRESOLVABLE, (REASON_UNSCHEDULABLE_NODE,))
        return [(~self.feasible(snapshot, profile), status)]


class NodeAffinity:
    """nodeSelector and required node affinity (precomputed in the profile from label masks)."""

    name = "NodeAffinity"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        return profile.node_affinity

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        return [(~profile.node_affinity, Status(Code.UNRESOLVABLE, (REASON_NODE_AFFINITY,)))]


class TaintToleration:
    """NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule only scores."""

    name = "TaintToleration"


    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        mask = np.ones(snapshot.node_count, dtype=bool)
        for taint, carriers in snapshot.taint_masks.items():
            if _untolerated(taint, profile.tolerations):
                mask &= ~carriers
        return mask

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        # Like kube-scheduler, report only the first untolerated taint in each node's list.
        groups: dict[Taint, BoolArray] = {}
        for node in np.flatnonzero(~self.feasible(snapshot, profile)):
            first = next(t for t in snapshot.nodes[node].taints if _untolerated(t, profile.tolerations))
            groups.setdefault(first, np.zeros(snapshot.node_count, dtype=bool))[node] = True
        return [
            (mask, Status(Code.UNRESOLVABLE, (untolerated_taint(taint.key, taint.value),)))
            for taint, mask in groups.items()
        ]


def _untolerated(taint: Taint, tolerations: tuple[Toleration, ...]) -> bool:
    hard = taint.effect in (TaintEffect.NO_SCHEDULE, TaintEffect.NO_EXECUTE)
    return hard and not any(t.tolerates(taint) for t in tolerations)


class ResourcesFit:
    """Free capacity covers the request in every dimension the pod asks for."""

    name = "NodeResourcesFit"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        free, amounts = snapshot.free, profile.request.amounts
        rows = profile.request.asked
        mask: BoolArray = free[rows[0]] >= amounts[rows[0]]
        for row in rows[1:]:
            mask &= free[row] >= amounts[row]
        return mask

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        # Group nodes by the exact set of short dimensions (a node may lack cpu AND memory).
        short = {row: snapshot.free[row] < profile.request.amounts[row] for row in profile.request.asked}
        pattern = np.zeros(snapshot.node_count, dtype=np.int64)
        for bit, mask in enumerate(short.values()):
            pattern |= mask.astype(np.int64) << bit
        groups: Rejections = []
        for value in np.unique(pattern[pattern > 0]):
            rows = [row for bit, row in enumerate(short) if value >> bit & 1]
            reasons = tuple(_shortage_reason(snapshot.resources[row]) for row in rows)
            groups.append((pattern == value, Status(Code.UNSCHEDULABLE, reasons)))
        return groups


def _shortage_reason(resource: str) -> str:
    return REASON_TOO_MANY_PODS if resource == PODS else insufficient(resource)


class TopologySpread:
    """DoNotSchedule constraints: placing here keeps (matching pods in this domain + self)
    - (fewest in any eligible domain) within maxSkew. Nodes without the key are rejected."""

    name = "PodTopologySpread"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        mask = np.ones(snapshot.node_count, dtype=bool)
        for check in profile.hard_spread:
            per_domain = check.counts.per_domain
            eligible = per_domain[check.eligible_domains]
            fewest = int(eligible.min()) if eligible.size else 0
            allowed = per_domain + check.self_match - fewest <= check.constraint.max_skew
            allowed[-1] = False  # the sentinel slot: node lacks the topology label
            mask &= allowed[check.counts.domains.of_node]
        return mask

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        unlabelled = np.zeros(snapshot.node_count, dtype=bool)
        for check in profile.hard_spread:
            unlabelled |= ~check.counts.domains.labelled
        skewed = ~self.feasible(snapshot, profile) & ~unlabelled
        return [
            (unlabelled, Status(Code.UNRESOLVABLE, (REASON_SPREAD_MISSING_LABEL,))),
            (skewed, Status(Code.UNSCHEDULABLE, (REASON_SPREAD,))),
        ]


class PodAntiAffinity:
    """Required anti-affinity: no matching pod already in this node's domain. Nodes without
    the topology label form no domain and pass, as in Kubernetes."""

    name = "InterPodAffinity"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        mask = np.ones(snapshot.node_count, dtype=bool)
        for counts in profile.anti_affinity:
            mask &= counts.per_domain[counts.domains.of_node] == 0
        return mask

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        status = Status(Code.UNSCHEDULABLE, (REASON_ANTI_AFFINITY,))
        return [(~self.feasible(snapshot, profile), status)]


class NodePorts:
    """Kubernetes' NodePorts: no two pods of a node take one hostPort for one protocol on
    one address (an empty hostIP takes every address). Reads only the nodes that hold one of
    the pod's ports."""

    name = "NodePorts"

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
        mask = np.ones(snapshot.node_count, dtype=bool)
        for wanted in profile.host_ports:
            protocol, _, port = wanted
            for node, ips in snapshot.host_ports.get((protocol, port), {}).items():
                if any(host_ports_conflict(wanted, (protocol, ip, port)) for ip in ips):
                    mask[node] = False
        return mask

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        return [(~self.feasible(snapshot, profile), Status(Code.UNSCHEDULABLE, (REASON_HOST_PORTS,)))]
