"""The scheduler's cache: nodes and pods from the watch, and the snapshot kept in step.

The snapshot is changed incrementally: a pod bound, assumed or deleted is one
`assume`/`forget` of one column. Only a change to the node set or to a node's
scheduling-relevant fields (allocatable, labels, taints, cordon, readiness) rebuilds it,
lazily, before the next scheduling pass: node changes are rare, pod changes are the flood.

Node content changes (Level-0 republishing batch allocatable as prod pods land, cordons,
labels) rebuild at most once per `rebuild_interval_s`; a node added or removed rebuilds at
once. Until then pods keep being charged to the current snapshot, and the rebuild replays
the ledger, so nothing is counted twice or lost.

`placed` is the ledger of what the snapshot charges, by pod uid: pods bound to a node,
pods assumed by this scheduler whose binding has not come back through the watch yet, and
preemptors holding the room their victims are freeing. Victims of a preemption are in
`evicting`: no longer charged, and ignored until their DELETED event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sigma.master.scheduler.convert import ConversionError, node_spec, pod_spec
from sigma.scheduling import ClusterSnapshot, NodeSpec, PodSpec, Preemption, Scheduler, labels

log = logging.getLogger("sigma.scheduler.cache")


def pod_uid(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


class ClusterCache:
    def __init__(self, seed: int = 0, rebuild_interval_s: float = 1.0) -> None:
        self.seed = seed
        self.rebuild_interval_s = rebuild_interval_s
        self._membership_changed = True
        self._changed_nodes: set[str] = set()  # changed since the snapshot last took them
        self._rebuilt_at = float("-inf")
        self.nodes: dict[str, NodeSpec] = {}
        self.pods: dict[str, dict[str, Any]] = {}  # every non-terminal pod, by uid
        self.specs: dict[str, PodSpec] = {}
        self.placed: dict[str, str] = {}
        self.evicting: set[str] = set()
        # The core needs at least one node (ClusterSnapshot([]) fails), so with no nodes
        # yet there is no snapshot: every pod is unschedulable, no core cycle is run.
        self.snapshot: ClusterSnapshot | None = None
        self.scheduler: Scheduler | None = None
        self._stale = True

    # -- nodes ------------------------------------------------------------------------------
    def set_node(self, node: dict[str, Any]) -> bool:
        """True if the change matters to scheduling (heartbeats alone do not). A node that
        cannot be read as written leaves the cache (no pod is placed on what cannot be
        accounted for) and ConversionError is raised for the caller to report."""
        try:
            spec = node_spec(node)
        except (ConversionError, KeyError, TypeError, ValueError, AttributeError) as err:
            name = (node.get("metadata") or {}).get("name")
            if isinstance(name, str):
                self.remove_node(name)
            raise ConversionError(f"node {name}: {err}") from err
        old = self.nodes.get(spec.name)
        if old == spec:
            return False
        self._membership_changed |= old is None
        self.nodes[spec.name] = spec
        self._changed_nodes.add(spec.name)
        self._stale = True
        return True

    def remove_node(self, name: str) -> bool:
        if self.nodes.pop(name, None) is None:
            return False
        self._stale = self._membership_changed = True
        return True

    def rebuild_now(self) -> None:
        """The next ensure_fresh rebuilds whatever its rate limit says (a node became
        schedulable: the pods retried at once must see it)."""
        self._rebuilt_at = float("-inf")

    def ensure_fresh(self, now: float) -> None:
        """Rebuild the snapshot (and the scheduler's per-shape caches) if the nodes changed."""
        if not self._stale:
            return
        if not self._membership_changed and self.snapshot is not None:
            # Level-0 republishes batch allocatable as pods come and go: amounts alone are
            # written into the arrays in place, which costs nothing per bound pod, where a
            # rebuild re-charges every pod in the cluster.
            changed = [self.nodes[name] for name in sorted(self._changed_nodes)]
            if self.snapshot.update_nodes(changed):
                self._changed_nodes.clear()
                self._stale = False
                return
            if now - self._rebuilt_at < self.rebuild_interval_s:
                return
        self._stale = self._membership_changed = False
        self._changed_nodes.clear()
        self._rebuilt_at = now
        nodes = [self.nodes[name] for name in sorted(self.nodes)]
        if not nodes:
            self.snapshot = self.scheduler = None
            return
        charged = [(self.specs[uid], node) for uid, node in self.placed.items() if node in self.nodes]
        self.snapshot = ClusterSnapshot(nodes, charged)
        self.scheduler = Scheduler(self.snapshot, seed=self.seed)
        log.debug("snapshot rebuilt: %d nodes, %d pods", len(nodes), len(charged))

    # -- pods -------------------------------------------------------------------------------
    def spec_of(self, pod: dict[str, Any]) -> PodSpec:
        """The pod's PodSpec, converted once per uid (and again if its labels change,
        since labels feed spread and anti-affinity counts). Raises ConversionError."""
        uid = pod_uid(pod)
        spec = self.specs.get(uid)
        if spec is None or spec.labels != labels((pod.get("metadata") or {}).get("labels") or {}):
            spec = self.specs[uid] = pod_spec(pod)
        return spec

    def set_pod(self, pod: dict[str, Any]) -> None:
        """An ADDED/MODIFIED pod: record it, and charge it to its node once it is bound."""
        uid = pod_uid(pod)
        self.pods[uid] = pod
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or uid in self.evicting:
            return
        try:
            old_spec = self.specs.get(uid)
            spec = self.spec_of(pod)
        except (ConversionError, TypeError, AttributeError) as err:
            log.warning("pod %s cannot be accounted for: %s", uid, err)
            return
        if self.placed.get(uid) == node and spec is old_spec:
            return  # our own binding (or a status update) coming back: already charged
        self.uncharge(uid)
        self.charge(spec, node)

    def remove_pod(self, uid: str) -> None:
        self.pods.pop(uid, None)
        self.specs.pop(uid, None)
        self.evicting.discard(uid)
        self.uncharge(uid)

    def charge(self, spec: PodSpec, node: str) -> None:
        self.placed[spec.uid] = node
        if self.snapshot is None:
            return  # charged when the snapshot is built
        index = self.snapshot.node_index.get(node)
        if index is not None:
            self.snapshot.assume(spec, index)

    def uncharge(self, uid: str) -> None:
        self.placed.pop(uid, None)
        if self.snapshot is not None and self.snapshot.node_of(uid) is not None:
            self.snapshot.forget(uid)

    # -- preemption -------------------------------------------------------------------------
    def reserve_for_preemptor(self, spec: PodSpec, preemption: Preemption) -> None:
        """The victims stop counting and the preemptor holds their room on the node now, so
        no other pod is handed the capacity they free while they terminate."""
        for victim in preemption.victims:
            self.evicting.add(victim.uid)
        assert self.scheduler is not None  # a preemption came from it
        self.scheduler.preempt(spec, preemption)
        for victim in preemption.victims:
            self.placed.pop(victim.uid, None)
        self.placed[spec.uid] = preemption.node_name

    def sync(self, resource: str, items: tuple[dict[str, Any], ...],
             on_error: Callable[[dict[str, Any], Exception], None] | None = None) -> None:
        """A relist: forget what vanished meanwhile, then take every listed object. An
        object that cannot be taken is handed to ``on_error`` (raised without one) and the
        others are still taken."""
        def take(item: dict[str, Any], step: Callable[[dict[str, Any]], object]) -> None:
            try:
                step(item)
            except Exception as err:
                if on_error is None:
                    raise
                on_error(item, err)

        if resource == "nodes":
            listed = {str((item.get("metadata") or {}).get("name")) for item in items}
            for name in [n for n in self.nodes if n not in listed]:
                self.remove_node(name)
            for item in items:
                take(item, self.set_node)
            return
        listed_uids = {pod_uid(item) for item in items}
        for uid in [u for u in self.pods if u not in listed_uids]:
            self.remove_pod(uid)
        for item in items:
            take(item, self.set_pod)
