"""The scheduler loop's pure parts: object conversion and the scheduling queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import WatchEvent
from sigma.master.scheduler.convert import NOT_READY_TAINT, node_spec, pod_requests, pod_spec
from sigma.master.scheduler.informer import Delta, Reflector, SharedInformer
from sigma.master.scheduler.queue import SchedulingQueue
from sigma.scheduling import Operator, TaintEffect

GIB = 2**30


def test_requests_are_the_containers_sum_or_the_largest_init_container_plus_overhead() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                       {"resources": {"limits": {"cpu": "1"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}],
        "overhead": {"cpu": "100m"},
    }
    assert pod_requests(spec) == {"cpu": 2100, "memory": GIB}


def test_batch_resources_are_read_as_milli_cores_and_bytes() -> None:
    spec = {"containers": [{"resources": {"requests": {"sigma.io/batch-cpu": "2000",
                                                       "sigma.io/batch-memory": "1Gi"}}}]}
    assert pod_requests(spec) == {"sigma.io/batch-cpu": 2000, "sigma.io/batch-memory": GIB}


def test_a_pod_converts_with_its_placement_constraints() -> None:
    pod = {"metadata": {"uid": "u1", "name": "web", "namespace": "shop", "labels": {"app": "web"}},
           "spec": {"priority": 9000, "nodeSelector": {"pool": "a"},
                    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {
                        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}},
                        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": {"app": "web"}},
                             "topologyKey": "kubernetes.io/hostname"}]}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": {"app": "web"}}}],
                    "containers": [{"resources": {"requests": {"cpu": "1"}}}]}}
    spec = pod_spec(pod)
    assert (spec.uid, spec.namespace, spec.priority, spec.requests) == ("u1", "shop", 9000, (("cpu", 1000),))
    assert spec.node_selector == (("pool", "a"),)
    assert spec.required_affinity is not None
    assert spec.required_affinity[0].match_expressions[0].operator is Operator.IN
    assert spec.tolerations[0].effect is TaintEffect.NO_SCHEDULE
    assert spec.anti_affinity[0].topology_key == "kubernetes.io/hostname"
    assert spec.spread[0].max_skew == 1


def test_a_node_that_is_not_ready_carries_the_not_ready_taint() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "1Ti"},
                       "conditions": [{"type": "Ready", "status": "Unknown"}]}}
    spec = node_spec(node)
    assert spec.allocatable == {"cpu": 4000, "memory": 8 * GIB, "pods": 110}
    assert spec.unschedulable and NOT_READY_TAINT in spec.taints


def test_the_queue_pops_higher_priority_first_and_fifo_within_a_priority() -> None:
    q = SchedulingQueue()
    for key, priority in (("batch-1", 5000), ("prod-1", 9000), ("batch-2", 5000), ("prod-2", 9000)):
        q.add(key, priority)
    assert [q.pop() for _ in range(5)] == ["prod-1", "prod-2", "batch-1", "batch-2", None]


def test_a_parked_pod_waits_for_a_cluster_change_then_for_its_doubling_backoff() -> None:
    q = SchedulingQueue(initial_backoff_s=1.0, max_backoff_s=60.0, park_timeout_s=60.0)
    q.add("p", 0)
    assert q.pop() == "p"
    q.park("p", now=0.0)
    q.flush(now=5.0)
    assert q.pop() is None  # the cluster has not changed
    q.cluster_changed()
    q.flush(now=5.0)
    assert q.pop() == "p"
    q.park("p", now=10.0)  # second failure: 2s back-off
    q.cluster_changed()
    q.flush(now=11.0)
    assert q.pop() is None
    q.flush(now=12.0)
    assert q.pop() == "p"


def test_a_parked_pod_is_retried_after_the_park_timeout_even_without_a_change() -> None:
    q = SchedulingQueue(park_timeout_s=60.0)
    q.add("p", 0)
    q.pop()
    q.park("p", now=0.0)
    assert q.next_wakeup(now=0.0) == 60.0
    q.flush(now=60.0)
    assert q.pop() == "p"


class GoneOnceClient:
    """Lists two versions of the world; the first watch answers 410 Gone (compacted)."""

    def __init__(self) -> None:
        self.lists = 0

    def list(self, resource: str, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "") -> dict[str, Any]:
        self.lists += 1
        return {"items": [{"metadata": {"name": f"n{self.lists}"}}], "metadata": {"resourceVersion": "7"}}

    def watch(self, resource: str, **kwargs: Any) -> Iterator[WatchEvent]:
        if self.lists == 1:
            raise ApiError(410, "Expired", "too old resource version")
        yield WatchEvent("ADDED", {"metadata": {"name": "n3", "resourceVersion": "8"}})
        threading.Event().wait(0.05)


def test_a_reflector_relists_when_its_watch_is_gone() -> None:
    out: queue.Queue[Delta] = queue.Queue()
    stop = threading.Event()
    thread = Reflector(GoneOnceClient(), "nodes", out).start(stop)  # type: ignore[arg-type]
    try:
        got = [out.get(timeout=5) for _ in range(3)]
    finally:
        stop.set()
        thread.join(timeout=5)
    assert [(d.type, [i["metadata"]["name"] for i in d.items] or d.object["metadata"]["name"]) for d in got] == [
        ("SYNC", ["n1"]), ("SYNC", ["n2"]), ("ADDED", "n3")]


def test_a_shared_informer_lists_once_and_gives_a_late_subscriber_what_it_knows() -> None:
    client = GoneOnceClient()
    client.lists = 1  # its watches now work
    informer = SharedInformer(client, "nodes")  # type: ignore[arg-type]
    early: queue.Queue[Delta] = queue.Queue()
    late: queue.Queue[Delta] = queue.Queue()
    informer.subscribe(early)
    try:
        assert [early.get(timeout=5).type for _ in range(2)] == ["SYNC", "ADDED"]
        informer.subscribe(late)
        sync = late.get(timeout=5)
        assert sync.type == "SYNC" and sorted(i["metadata"]["name"] for i in sync.items) == ["n2", "n3"]
    finally:
        informer.unsubscribe(early)
        informer.unsubscribe(late)
    assert client.lists == 2  # one listing, shared


def _node(name: str, batch_cpu: str = "4000", zone: str = "a") -> dict[str, Any]:
    amounts = {"cpu": "8", "memory": "16Gi", "pods": "110", "sigma.io/batch-cpu": batch_cpu}
    return {"metadata": {"name": name, "labels": {"zone": zone}},
            "status": {"allocatable": amounts, "conditions": [{"type": "Ready", "status": "True"}]}}


def test_the_cache_takes_a_new_batch_allocatable_in_place_without_rebuilding() -> None:
    from sigma.master.scheduler.cache import ClusterCache
    from sigma.scheduling import BATCH_CPU

    cache = ClusterCache(rebuild_interval_s=60.0)
    cache.sync("nodes", (_node("n0"), _node("n1")))
    cache.ensure_fresh(now=0.0)
    snapshot = cache.snapshot
    assert snapshot is not None
    assert cache.set_node(_node("n1", batch_cpu="1500")) is True
    cache.ensure_fresh(now=1.0)  # well inside the rebuild interval: applied anyway, in place
    assert cache.snapshot is snapshot
    assert snapshot.allocatable[snapshot.resource_row(BATCH_CPU)].tolist() == [4000, 1500]


def test_the_cache_rebuilds_for_a_label_change_once_the_interval_has_passed() -> None:
    from sigma.master.scheduler.cache import ClusterCache

    cache = ClusterCache(rebuild_interval_s=60.0)
    cache.sync("nodes", (_node("n0"), _node("n1")))
    cache.ensure_fresh(now=0.0)
    first = cache.snapshot
    cache.set_node(_node("n1", zone="b"))
    cache.ensure_fresh(now=1.0)
    assert cache.snapshot is first  # rebuilds are rate-limited
    cache.ensure_fresh(now=61.0)
    assert cache.snapshot is not first and cache.snapshot is not None
    assert dict(cache.snapshot.nodes[1].labels)["zone"] == "b"


def test_host_ports_come_from_the_containers_with_the_wildcard_address_as_every_address() -> None:
    spec = pod_spec({"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080},
                                {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "0.0.0.0"},
                                {"containerPort": 90}]},
        {"name": "b", "ports": [{"containerPort": 81, "hostPort": 8081, "hostIP": "10.0.0.1"}]}]}})
    assert spec.host_ports == (("TCP", "", 8080), ("TCP", "10.0.0.1", 8081), ("UDP", "", 53))
