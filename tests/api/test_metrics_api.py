"""metrics.k8s.io/v1beta1 through the master's ASGI app in this process: discovery, NodeMetrics
and PodMetrics from stored NodeMetric reports (selectors, 404, staleness, 405), and who may
read them (Kubernetes' view and edit roles include the aggregated metrics reader)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api.auth.attributes import attributes_of
from sigma.api.auth.identity import User
from sigma.api.auth.rbac import Binding, authorize
from sigma.api.objects import now_rfc3339
from sigma.api.server import create_app
from tests.api.inprocess import Api
from tests.registry_client import admitted_registry

MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture
def api() -> Iterator[Api]:
    with admitted_registry() as registry:
        yield Api(create_app(registry))


def pod(api: Api, name: str, node: str, labels: dict[str, str], containers: tuple[str, ...] = ("main",)) -> None:
    api.post("/api/v1/namespaces/default/pods", {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": c, "image": "busybox"} for c in containers]}})


def report(api: Api, node: str, pods: list[dict[str, Any]], age_s: float = 1.0) -> None:
    api.post("/api/v1/nodes", {"metadata": {"name": node, "labels": {"zone": node}}})
    api.post("/apis/sigma.io/v1/nodemetrics", {
        "apiVersion": "sigma.io/v1", "kind": "NodeMetric", "metadata": {"name": node},
        "status": {"timestamp": now_rfc3339(time.time() - age_s), "window_s": 60, "sample_window_s": 2.5,
                   "node": {"cpu_millis": 1500, "memory_bytes": 2 * 2**30, "capacity_cpu_millis": 4000,
                            "capacity_memory_bytes": 8 * 2**30},
                   "pods": pods}})


@pytest.fixture
def cluster(api: Api) -> Api:
    pod(api, "web-1", "n1", {"app": "web"}, ("main", "sidecar"))
    pod(api, "web-2", "n1", {"app": "web"})
    pod(api, "db-1", "n2", {"app": "db"})
    report(api, "n1", [
        {"namespace": "default", "name": "web-1", "qos": "LS", "cpu_millis": 300, "memory_bytes": 3 * 2**20,
         "containers": [{"name": "main", "cpu_millis": 250, "memory_bytes": 2 * 2**20},
                        {"name": "sidecar", "cpu_millis": 50, "memory_bytes": 2**20}]},
        {"namespace": "default", "name": "web-2", "qos": "LS", "cpu_millis": 120, "memory_bytes": 2**20}])
    report(api, "n2", [{"namespace": "default", "name": "db-1", "qos": "LS", "cpu_millis": 5, "memory_bytes": 2048}],
           age_s=600)  # n2's agent stopped reporting ten minutes ago
    return api


def test_discovery_lists_the_group_and_its_two_read_only_resources(api: Api) -> None:
    groups = {g["name"]: g for g in api.get("/apis").json()["groups"]}
    assert groups["metrics.k8s.io"]["preferredVersion"]["groupVersion"] == "metrics.k8s.io/v1beta1"
    listed = api.get("/apis/metrics.k8s.io/v1beta1").json()
    assert {(r["name"], r["kind"], r["namespaced"], tuple(r["verbs"])) for r in listed["resources"]} == {
        ("nodes", "NodeMetrics", False, ("get", "list")), ("pods", "PodMetrics", True, ("get", "list"))}
    assert api.get("/api/v1").json()["resources"][0]["kind"] == "Namespace"  # the core group is unchanged


def test_node_metrics_are_served_from_fresh_reports_only(cluster: Api) -> None:
    items = cluster.get("/apis/metrics.k8s.io/v1beta1/nodes").json()["items"]
    assert [(i["metadata"]["name"], i["usage"], i["window"]) for i in items] == [
        ("n1", {"cpu": "1500m", "memory": "2097152Ki"}, "2.5s")]
    assert items[0]["metadata"]["labels"] == {"zone": "n1"}
    missing = cluster.get("/apis/metrics.k8s.io/v1beta1/nodes/n2")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'nodemetrics.metrics.k8s.io "n2" not found'


def test_pod_metrics_list_each_container(cluster: Api) -> None:
    one = cluster.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1").json()
    assert one["kind"] == "PodMetrics" and one["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert one["containers"] == [{"name": "main", "usage": {"cpu": "250m", "memory": "2048Ki"}},
                                 {"name": "sidecar", "usage": {"cpu": "50m", "memory": "1024Ki"}}]
    # An agent that reports only pod totals: a pod of one container gets them.
    two = cluster.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-2").json()
    assert two["containers"] == [{"name": "main", "usage": {"cpu": "120m", "memory": "1024Ki"}}]


def test_pod_metrics_follow_label_selectors_and_namespaces(cluster: Api) -> None:
    listed = cluster.get("/apis/metrics.k8s.io/v1beta1/pods", params={"labelSelector": "app=web"}).json()
    assert listed["kind"] == "PodMetricsList"
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["web-1", "web-2"]
    assert cluster.get("/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods").json()["items"] == []
    stale = cluster.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/db-1")
    assert stale.status_code == 404


def test_metrics_cannot_be_written_or_watched(cluster: Api) -> None:
    r = cluster.request("POST", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", json={})
    assert r.status_code == 405
    assert cluster.get("/apis/metrics.k8s.io/v1beta1/pods", params={"watch": "true"}).status_code == 405


def test_a_namespace_viewer_reads_its_pods_metrics_but_not_the_nodes() -> None:
    viewer = User("ann", groups=("system:authenticated",))
    bindings = [Binding("view", "team-a", users=("ann",)), Binding("view", None, users=("cluster-viewer",))]

    def allowed(user: User, path: str) -> bool:
        return authorize(user, attributes_of("GET", path, {}), bindings, lambda ns, n: None).allowed

    assert allowed(viewer, "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods")
    assert allowed(viewer, "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods/web-1")
    assert not allowed(viewer, "/apis/metrics.k8s.io/v1beta1/namespaces/team-b/pods")
    assert not allowed(viewer, "/apis/metrics.k8s.io/v1beta1/nodes")
    assert allowed(User("cluster-viewer"), "/apis/metrics.k8s.io/v1beta1/nodes")
    attrs = attributes_of("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods", {})
    assert (attrs.group, attrs.resource, attrs.verb) == ("metrics.k8s.io", "pods", "list")
