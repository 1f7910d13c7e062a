"""The Level-0 controller: publishes each node's batch allocatable from prod's real usage.

Every `period_s` it reads Nodes, NodeMetrics (the agents' reports), NodeSLOs (thresholds)
and the pods bound to each node, asks `sigma.colocation.level0.batch_allocatable` for the
node's sigma.io/batch-cpu (milli-cores) and sigma.io/batch-memory (bytes), and writes them
into the Node's status.capacity and status.allocatable with a merge patch through the status
subresource, so the keys the agent owns (cpu, memory, pods, conditions) are left alone.

- The system reserve is what the agent already keeps out of allocatable:
  capacity - allocatable for cpu and memory.
- Prod requests (the fallback when a node's metrics are stale or missing) are the summed
  requests of the non-terminal pods bound to the node that are not batch pods
  (schedulerName fuxi-scheduler).
- A value is rewritten only when it moved by more than `update_fraction`
  (`level0.should_update`), so noise does not rewrite every Node every few seconds.

Shapes of NodeMetric and NodeSLO: sigma.colocation.slo. Nodes, metrics and SLOs (one each
per node) are re-read each period. Pods are the flood, so while running, the prod requests
per node are kept incrementally from the master's shared pod informer (`ProdRequests`)
instead of listing every pod each period; a restart rebuilds them from its first listing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from sigma.api.errors import ApiError
from sigma.api.podview import PodView
from sigma.client.base import ApiClient
from sigma.colocation.level0 import (
    DEFAULT_STALENESS_S,
    DEFAULT_UPDATE_FRACTION,
    BatchAllocatable,
    NodeInput,
    Resources,
    batch_allocatable,
    should_update,
)
from sigma.colocation.prereserve import raise_predicted, reserved_by_node
from sigma.colocation.slo import CLUSTER_DEFAULT, node_slo, predicted_usage, prod_usage
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded
from sigma.master.scheduler.convert import pod_requests
from sigma.master.scheduler.informer import Delta, drain, shared_informer
from sigma.quantity import QuantityError, cpu_millis, memory_bytes

log = logging.getLogger("sigma.level0")

BATCH_CPU = "sigma.io/batch-cpu"
BATCH_MEMORY = "sigma.io/batch-memory"
FUXI_SCHEDULER = "fuxi-scheduler"
PERIOD_S = 5.0
COMPONENT = "level0"


class _Inputs(NamedTuple):
    """What one pass reads once for every node."""
    metrics: dict[str, Any]
    slos: dict[str, Any]
    prod: dict[str, Resources]
    reserved: dict[str, Any]
    now: float


class Level0Controller:
    name = "level0"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, period_s: float = PERIOD_S,
                 staleness_s: float = DEFAULT_STALENESS_S, update_fraction: float = DEFAULT_UPDATE_FRACTION) -> None:
        self.client = client
        self.clock = clock
        self.period_s = period_s
        self.staleness_s = staleness_s
        self.update_fraction = update_fraction
        self.prod: ProdRequests | None = None  # fed by the pod informer while running

    def run(self, stop: threading.Event) -> None:
        deltas: queue.Queue[Delta] = queue.Queue()
        informer = shared_informer(self.client, "pods")
        self.prod = ProdRequests()
        informer.subscribe(deltas)
        try:
            run_periodic(stop, partial(self._pass, deltas), self.period_s, "level0 pass", log)
        finally:
            informer.unsubscribe(deltas)
            self.prod = None

    def _pass(self, deltas: queue.Queue[Delta]) -> None:
        """The pod deltas since the last pass, then the pass (a node's failure is caught per node)."""
        assert self.prod is not None
        for delta in drain(deltas, 0):
            self.prod.apply(delta)
        self.reconcile()

    def reconcile(self) -> dict[str, BatchAllocatable]:
        """One pass over every node; returns what was computed per node (for tests and logs)."""
        now = self.clock()
        metrics = {m["metadata"]["name"]: m.get("status") or {} for m in self.client.list("nodemetrics")["items"]}
        slos = {s["metadata"]["name"]: s.get("spec") or {} for s in self.client.list("nodeslos")["items"]}
        if self.prod is not None and self.prod.synced:
            prod = self.prod.by_node
        else:  # used alone (tests), or before the informer's first listing arrived
            prod = _prod_requests(self.client.list("pods")["items"])
        # Pre-reservation (sigma.colocation.prereserve): PredictiveScalers' predicted extra prod
        # usage per node, from their status.reservation, raises the predicted prod term below.
        reserved = reserved_by_node(self.client.list("predictivescalers")["items"], now)
        out: dict[str, BatchAllocatable] = {}
        inputs = _Inputs(metrics, slos, prod, reserved, now)
        for node in self.client.list("nodes")["items"]:
            # A node (or its NodeMetric, NodeSLO) that cannot be computed is reported on the
            # node; the other nodes still get their batch allocatable.
            result = guarded(self.client, {"kind": "Node", "apiVersion": "v1", **node}, COMPONENT,
                             "FailedBatchAllocatable", partial(self._reconcile_node, node, inputs), "computing")
            if result is not None:
                out[node["metadata"]["name"]] = result
        return out

    def _reconcile_node(self, node: dict[str, Any], inputs: _Inputs) -> BatchAllocatable | None:
        metrics, slos, prod, reserved, now = inputs
        name = node["metadata"]["name"]
        status = node.get("status") or {}
        capacity = _resources(status.get("capacity") or {})
        if capacity is None or capacity == Resources():
            return None  # the agent has not reported the machine yet
        allocatable = _resources(status.get("allocatable") or {}) or capacity
        reserve = Resources(max(capacity.cpu_millis - allocatable.cpu_millis, 0),
                            max(capacity.memory_bytes - allocatable.memory_bytes, 0))
        slo = node_slo(slos.get(name, slos.get(CLUSTER_DEFAULT)))
        metric = metrics.get(name)
        usage, requests = prod_usage(metric), prod.get(name, Resources())
        predicted = raise_predicted(predicted_usage(metric), usage, requests, reserved.get(name), now,
                                    self.staleness_s)
        result = batch_allocatable(NodeInput(capacity, requests, usage, predicted, reserve, slo.thresholds),
                                   now, self.staleness_s)
        if should_update(_published(status), result.resources, self.update_fraction):
            self._publish(name, result)
        return result

    def _publish(self, node: str, result: BatchAllocatable) -> None:
        amounts = {BATCH_CPU: str(result.cpu_millis), BATCH_MEMORY: str(result.memory_bytes)}
        try:
            self.client.patch("nodes", node, {"status": {"capacity": amounts, "allocatable": amounts}},
                              subresource="status")
            log.info("node %s: %s", node, result.reason)
        except ApiError as err:
            if err.code != 404:
                raise


def _resources(amounts: dict[str, Any]) -> Resources | None:
    try:
        return Resources(cpu_millis(amounts.get("cpu", 0)), memory_bytes(amounts.get("memory", 0)))
    except QuantityError:
        return None


def _published(status: dict[str, Any]) -> Resources | None:
    allocatable = status.get("allocatable") or {}
    if BATCH_CPU not in allocatable or BATCH_MEMORY not in allocatable:
        return None
    try:
        # sigma.io/batch-cpu quantities are milli-cores already, so both parse as plain numbers.
        return Resources(memory_bytes(allocatable[BATCH_CPU]), memory_bytes(allocatable[BATCH_MEMORY]))
    except QuantityError:
        return None


def _prod_requests(pods: list[dict[str, Any]]) -> dict[str, Resources]:
    tally = ProdRequests()
    tally.apply(Delta("pods", "SYNC", items=tuple(pods)))
    return tally.by_node


def _prod_request(pod: dict[str, Any]) -> tuple[str, Resources] | None:
    """(node, requests) of a non-terminal prod pod bound to a node; None for any other pod."""
    view = PodView.of(pod)
    if not view.node_name or view.scheduler_name == FUXI_SCHEDULER or view.terminal:
        return None
    try:
        req = pod_requests(pod.get("spec") or {})
    except ValueError:
        return None
    return view.node_name, Resources(req.get("cpu", 0), req.get("memory", 0))


class ProdRequests:
    """Summed requests of the prod pods bound to each node, kept from pod deltas."""

    def __init__(self) -> None:
        self.synced = False
        self.by_node: dict[str, Resources] = {}
        self._by_pod: dict[tuple[str, str], tuple[str, Resources]] = {}

    def apply(self, delta: Delta) -> None:
        if delta.type == "SYNC":
            self.synced = True
            self.by_node, self._by_pod = {}, {}
            for pod in delta.items:
                self._set_guarded(pod)
        elif delta.type == "DELETED":
            self._drop(PodView.of(delta.object).key)
        else:
            self._set_guarded(delta.object)

    def _set_guarded(self, pod: dict[str, Any]) -> None:
        try:
            self._set(pod)
        except Exception:  # a pod that cannot be read holds nothing; the others are tallied
            log.exception("level0: pod %s/%s not counted", *PodView.of(pod).key)

    def _set(self, pod: dict[str, Any]) -> None:
        view = PodView.of(pod)
        held = self._by_pod.get(view.key)
        # A bound pod's requests do not change: only binding, finishing or deletion matter.
        if held is not None and held[0] == view.node_name and not view.terminal:
            return
        self._drop(view.key)
        counted = _prod_request(pod)
        if counted is not None:
            self._by_pod[view.key] = counted
            self._add(*counted, 1)

    def _drop(self, key: tuple[str, str]) -> None:
        held = self._by_pod.pop(key, None)
        if held is not None:
            self._add(*held, -1)

    def _add(self, node: str, req: Resources, sign: int) -> None:
        have = self.by_node.get(node, Resources())
        self.by_node[node] = Resources(have.cpu_millis + sign * req.cpu_millis,
                                       have.memory_bytes + sign * req.memory_bytes)
