"""The scheduler: filters, scores and preemption wired into one visible pipeline.

`Scheduler.schedule(pod)` is one scheduling cycle: pre-filter (the pod's cached profile),
filter, score, select, reserve (assume). On failure it explains why per node and, if asked
to, proposes a preemption. It never binds and never evicts: the caller does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np

from sigma.scheduling.arrays import BoolArray, FloatArray
from sigma.scheduling.filters import (
    Filter,
    NodeAffinity,
    NodePorts,
    NodeUnschedulable,
    PodAntiAffinity,
    ResourcesFit,
    TaintToleration,
    TopologySpread,
)
from sigma.scheduling.model import PodSpec
from sigma.scheduling.preemption import (
    Preemption,
    fits_everywhere,
    free_after_preemption,
    pick_preemption,
)
from sigma.scheduling.profile import PodProfile, build_profile, shape_key
from sigma.scheduling.scores import LeastAllocated, Score, TaintPreference, TopologyBalance
from sigma.scheduling.snapshot import ClusterSnapshot, UnknownResource
from sigma.scheduling.status import SUCCESS, Code, Diagnosis, Status


class Stage(Enum):
    STATIC = "static"
    """Depends only on node labels/taints and the pod's placement key: evaluated once per
    equivalence class and cached (Scheduler._class_state)."""
    LIVE = "live"
    """Depends on what is placed now: evaluated every cycle, after the cached mask."""


def _always(_profile: PodProfile) -> bool:
    return True


@dataclass(frozen=True)
class FilterEntry:
    filter: Filter
    stage: Stage
    applies: Callable[[PodProfile], bool] = _always
    """Whether the pod declares what the filter checks: a pod without topology constraints
    never pays for their gathers."""
    freed_by_preemption: bool = False
    """Evicting lower-priority pods can turn this filter's rejection into a fit."""


FILTERS: tuple[FilterEntry, ...] = (
    FilterEntry(NodeUnschedulable(), Stage.STATIC),
    FilterEntry(NodeAffinity(), Stage.STATIC),
    FilterEntry(TaintToleration(), Stage.STATIC),
    # Resources before topology: one comparison per requested dimension, no gathers.
    FilterEntry(ResourcesFit(), Stage.LIVE, freed_by_preemption=True),
    FilterEntry(TopologySpread(), Stage.LIVE, applies=lambda profile: bool(profile.hard_spread)),
    FilterEntry(PodAntiAffinity(), Stage.LIVE, applies=lambda profile: bool(profile.anti_affinity)),
    FilterEntry(NodePorts(), Stage.LIVE, applies=lambda profile: bool(profile.host_ports)),
)
"""Every filter of the core, in one table that every path reads: the feasibility mask, the
cached static mask, the diagnosis (in this order: the first failing filter names a node's
reason) and preemption's candidates. A new filter is one line here."""

DEFAULT_SCORES: tuple[tuple[Score, float], ...] = (
    (LeastAllocated(), 1.0),
    (TopologyBalance(), 2.0),
    (TaintPreference(), 1.0),
)

TIE_BREAK_SCALE = 1e-6
"""Seeded per-node jitter below any meaningful score difference: breaks exact ties only."""

FEASIBLE_FLOOR = 1.0
"""Added to every node's score; scores are non-negative on feasible nodes (the Score
contract), so a feasible node never scores 0."""


def _and_live(snapshot: ClusterSnapshot, profile: PodProfile, mask: BoolArray, *, freed: bool) -> BoolArray:
    """``mask`` narrowed by the live filters that apply, those preemption can free or the others."""
    for entry in FILTERS:
        if entry.stage is Stage.LIVE and entry.freed_by_preemption == freed and entry.applies(profile):
            mask &= entry.filter.feasible(snapshot, profile)
    return mask


def feasible_nodes(snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
    """The filter pipeline: the class's cached static mask, then the live filters in table
    order (cheapest and most selective first)."""
    mask = _and_live(snapshot, profile, profile.static_mask.copy(), freed=True)
    return _and_live(snapshot, profile, mask, freed=False)


def static_mask(snapshot: ClusterSnapshot, profile: PodProfile) -> BoolArray:
    """The filters that depend only on node labels/taints and the pod's placement key."""
    mask = np.ones(snapshot.node_count, dtype=bool)
    for entry in FILTERS:
        if entry.stage is Stage.STATIC and entry.applies(profile):
            mask &= entry.filter.feasible(snapshot, profile)
    return mask


def diagnose(snapshot: ClusterSnapshot, profile: PodProfile) -> Diagnosis:
    """The slow path: each rejected node's status from the first filter that rejects it."""
    undecided = np.ones(snapshot.node_count, dtype=bool)
    groups = []
    for entry in FILTERS:
        for rejected, status in entry.filter.rejections(snapshot, profile):
            newly = rejected & undecided
            if newly.any():
                groups.append((np.flatnonzero(newly), status))
                undecided &= ~newly
    return Diagnosis(snapshot.node_count, tuple(groups))


class ScheduleResult(NamedTuple):
    """The outcome of one cycle (a NamedTuple: immutable and cheap on the hot path)."""

    pod: PodSpec
    status: Status
    node: int | None = None
    node_name: str | None = None
    diagnosis: Diagnosis | None = None
    preemption: Preemption | None = None

    @property
    def message(self) -> str:
        if self.status.is_success or self.diagnosis is None:
            return "; ".join(self.status.reasons)
        return self.diagnosis.message()


class Scheduler:
    """Places pods one at a time on a snapshot it owns, reserving each placement in place.

    `scores` pairs each score with its weight; `seed` fixes tie-breaking between equal
    scores (a post-mortem replays a run from the same snapshot and seed)."""

    def __init__(
        self,
        snapshot: ClusterSnapshot,
        scores: tuple[tuple[Score, float], ...] = DEFAULT_SCORES,
        seed: int = 0,
        preemption: bool = True,
        preemption_candidates: int = 100,
    ) -> None:
        self.snapshot = snapshot
        self.static_scores = tuple((s, w) for s, w in scores if s.static)
        self.dynamic_scores = tuple((s, w) for s, w in scores if not s.static)
        self.preemption = preemption
        self.preemption_candidates = preemption_candidates
        self._jitter: FloatArray = np.random.default_rng(seed).random(snapshot.node_count) * TIE_BREAK_SCALE
        self._profiles: dict[tuple[object, ...], PodProfile] = {}
        self._by_class: dict[tuple[object, ...], tuple[BoolArray, FloatArray]] = {}
        self._scores: FloatArray = np.zeros(snapshot.node_count)

    def profile(self, pod: PodSpec) -> PodProfile:
        """Pre-filter: the pod's shape, computed once and shared by identical pods."""
        key = shape_key(pod)
        found = self._profiles.get(key)
        if found is None:
            found = build_profile(self.snapshot, pod)
            found.static_mask, found.static_score = self._class_state(pod, found)
            self._profiles[key] = found
        return found

    def _class_state(self, pod: PodSpec, profile: PodProfile) -> tuple[BoolArray, FloatArray]:
        cached = self._by_class.get(pod.placement_key)
        if cached is None:
            score = self._jitter + FEASIBLE_FLOOR
            for static_score, weight in self.static_scores:
                static_score.add(self.snapshot, profile, weight, score)
            cached = self._by_class[pod.placement_key] = (static_mask(self.snapshot, profile), score)
        return cached

    def score_nodes(self, profile: PodProfile) -> FloatArray:
        """The score pipeline: cached static part (with tie-break jitter), then live scores."""
        scores = self._scores
        np.copyto(scores, profile.static_score)
        for score, weight in self.dynamic_scores:  # least/most allocated first: cheapest
            score.add(self.snapshot, profile, weight, scores)
        return scores

    def schedule(self, pod: PodSpec, *, assume: bool = True) -> ScheduleResult:
        """One scheduling cycle. On success the pod is reserved on its node unless
        `assume=False`; the caller undoes a failed bind with `snapshot.forget(pod.uid)`."""
        try:
            profile = self.profile(pod)
        except UnknownResource as err:
            return ScheduleResult(pod, Status(Code.ERROR, (str(err),)))
        if not self.snapshot.nodes:
            return ScheduleResult(pod, Status(Code.UNSCHEDULABLE, ("0/0 nodes are available.",)))
        feasible = feasible_nodes(self.snapshot, profile)
        scores = self.score_nodes(profile)
        # Every feasible node scores at least FEASIBLE_FLOOR, so zeroing the infeasible
        # ones is enough for argmax (cheaper than writing -inf through a mask).
        np.multiply(scores, feasible, out=scores)
        best = int(scores.argmax())
        if not feasible[best]:
            return self._unschedulable(pod, profile)
        if assume:
            self.snapshot.assume(pod, best)
        return ScheduleResult(pod, SUCCESS, best, self.snapshot.nodes[best].name)

    def _unschedulable(self, pod: PodSpec, profile: PodProfile) -> ScheduleResult:
        diagnosis = diagnose(self.snapshot, profile)
        codes = {status.code for _, status in diagnosis.groups}
        code = Code.UNSCHEDULABLE if Code.UNSCHEDULABLE in codes else Code.UNRESOLVABLE
        preemption = self.find_preemption(pod, profile) if self.preemption else None
        status = Status(code, (diagnosis.message(),))
        return ScheduleResult(pod, status, diagnosis=diagnosis, preemption=preemption)

    def find_preemption(self, pod: PodSpec, profile: PodProfile) -> Preemption | None:
        """Candidates: nodes that pass every filter except resources, and where evicting
        every preemptible pod would make room. Like kube-scheduler, only the first
        `preemption_candidates` of them (in node order) are evaluated pod by pod."""
        freed = _and_live(self.snapshot, profile, np.ones(self.snapshot.node_count, dtype=bool), freed=True)
        candidates = _and_live(self.snapshot, profile, profile.static_mask & ~freed, freed=False)
        candidates &= fits_everywhere(free_after_preemption(self.snapshot, pod), profile.request)
        nodes = np.flatnonzero(candidates)[: self.preemption_candidates]
        return pick_preemption(self.snapshot, pod, nodes)

    def preempt(self, pod: PodSpec, preemption: Preemption) -> ScheduleResult:
        """Apply a preemption in the snapshot: forget the victims, reserve the pod there.
        (The caller evicts the victims for real and binds the pod.)"""
        for victim in preemption.victims:
            self.snapshot.forget(victim.uid)
        self.snapshot.assume(pod, preemption.node)
        return ScheduleResult(pod, SUCCESS, preemption.node, preemption.node_name, preemption=preemption)
