"""Scores: rank the feasible nodes; higher is better, each on a 0-100 scale.

The contract: `add(snapshot, profile, weight, out)` adds weight x score for every node into
`out`. Scores are non-negative on nodes where the pod fits; feasibility is applied
afterwards, so infeasible nodes may get any value. Scores
marked `static` depend only on node labels/taints and the pod's shape; the scheduler
computes those once per shape and starts every cycle from that cached sum.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sigma.scheduling.arrays import FloatArray
from sigma.scheduling.model import TaintEffect
from sigma.scheduling.profile import PodProfile, SpreadCheck
from sigma.scheduling.snapshot import ClusterSnapshot


class Score(Protocol):
    name: str
    static: bool

    def add(self, snapshot: ClusterSnapshot, profile: PodProfile, weight: float, out: FloatArray) -> None: ...


def _add_free_share(
    snapshot: ClusterSnapshot, profile: PodProfile, scale: float, out: FloatArray
) -> None:
    """out += scale x sum over scored dimensions of (free - request) / allocatable.

    One matrix-vector product over the block of rows spanning the scored dimensions
    (snapshot.free_fraction is kept current by assume), instead of one pass per row."""
    rows = profile.scored_rows
    block = slice(rows[0], rows[-1] + 1)
    weights = np.zeros(block.stop - block.start)
    weights[[row - block.start for row in rows]] = scale
    out += weights @ snapshot.free_fraction[block]
    # The request's own share: a constant where allocatable is the same on every node
    # (then it cannot change the ranking and is skipped), per node elsewhere.
    for row in rows:
        amount = profile.request.amounts[row]
        if amount and not snapshot.uniform_allocatable[row]:
            out -= (scale * amount) * snapshot.inverse_allocatable[row]


class LeastAllocated:
    """Prefer emptier nodes (spreads prod load): mean free share after placing, x100."""

    name = "NodeResourcesLeastAllocated"
    static = False

    def add(self, snapshot: ClusterSnapshot, profile: PodProfile, weight: float, out: FloatArray) -> None:
        _add_free_share(snapshot, profile, weight * 100.0 / len(profile.scored_rows), out)


class MostAllocated:
    """Prefer fuller nodes (bin-packing, keeps whole nodes free): mean used share, x100."""

    name = "NodeResourcesMostAllocated"
    static = False

    def add(self, snapshot: ClusterSnapshot, profile: PodProfile, weight: float, out: FloatArray) -> None:
        out += weight * 100.0
        _add_free_share(snapshot, profile, -weight * 100.0 / len(profile.scored_rows), out)


class TopologyBalance:
    """ScheduleAnyway spread constraints: prefer domains with fewer matching pods.
    Nodes without the topology label score 0."""

    name = "PodTopologySpreadScore"
    static = False

    def add(self, snapshot: ClusterSnapshot, profile: PodProfile, weight: float, out: FloatArray) -> None:
        for check in profile.soft_spread:
            # Score the few domains, then one gather to the many nodes.
            out += _balance(check, weight / len(profile.soft_spread))[check.counts.domains.of_node]


def _balance(check: SpreadCheck, scale: float) -> FloatArray:
    """Per domain: scale x 100 x (most - count) / most, counting the pod itself; the
    trailing sentinel slot (nodes without the label) scores 0."""
    per_domain = check.counts.per_domain
    most = int(per_domain.max()) + check.self_match
    if most == 0:
        scores = np.full(per_domain.size, scale * 100.0)
    else:
        scores = (most - check.self_match - per_domain) * (scale * 100.0 / most)
    scores[-1] = 0.0
    return scores


class TaintPreference:
    """Avoid nodes with untolerated PreferNoSchedule taints: 100 for none, down to 0 for
    the node with the most (normalised like kube-scheduler's TaintToleration score)."""

    name = "TaintToleration"
    static = True

    def add(self, snapshot: ClusterSnapshot, profile: PodProfile, weight: float, out: FloatArray) -> None:
        count = np.zeros(snapshot.node_count)
        for taint, carriers in snapshot.taint_masks.items():
            soft = taint.effect is TaintEffect.PREFER_NO_SCHEDULE
            if soft and not any(t.tolerates(taint) for t in profile.tolerations):
                count += carriers
        most = count.max() if count.size else 0.0
        if most > 0:
            out += weight * 100.0 * (1.0 - count / most)
        else:
            out += weight * 100.0
