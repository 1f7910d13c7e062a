"""The HorizontalPodAutoscaler controller against the in-process API (a registry with admission,
through LocalClient): NodeMetric reports as the agents write them, a Deployment's pods, a
clock the test moves. What it writes: the Deployment's replicas, the HPA's status and Events."""

from __future__ import annotations

from typing import Any

from sigma.api.objects import now_rfc3339
from sigma.client.local import LocalClient
from sigma.master.controllers.hpa import HpaController, pod_of, spec_of

NOW = 1_800_000_000.0
NS = "default"


def deployment(client: LocalClient, name: str, replicas: int) -> None:
    client.create("deployments", {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}, NS)


def running_pod(client: LocalClient, name: str, app: str, cpu_request: str | None) -> None:
    resources = {"requests": {"cpu": cpu_request}} if cpu_request else {}
    client.create("pods", {"metadata": {"name": name, "labels": {"app": app}}, "spec": {
        "nodeName": "n1", "containers": [{"name": "main", "image": "busybox", "resources": resources}]}}, NS)
    client.patch("pods", name, {"status": {
        "phase": "Running", "startTime": now_rfc3339(NOW - 3600),
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339(NOW - 3500)}]}},
        NS, subresource="status")


def report(client: LocalClient, usage: dict[str, int]) -> None:
    pods = [{"namespace": NS, "name": n, "qos": "LS", "cpu_millis": m, "memory_bytes": 2**20,
             "containers": [{"name": "main", "cpu_millis": m, "memory_bytes": 2**20}]} for n, m in usage.items()]
    status = {"timestamp": now_rfc3339(NOW - 2), "window_s": 60, "sample_window_s": 1.0,
              "node": {"cpu_millis": sum(usage.values()), "memory_bytes": 2**30}, "pods": pods}
    try:
        client.patch("nodemetrics", "n1", {"status": status}, subresource="status")
    except Exception:
        client.create("nodemetrics", {"metadata": {"name": "n1"}, "status": status})


def autoscaler(client: LocalClient, name: str, target: str, high: int = 5) -> dict[str, Any]:
    return client.create("horizontalpodautoscalers", {"metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": 1, "maxReplicas": high,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 50}}}]}}, NS)


def conditions(client: LocalClient, name: str) -> dict[str, tuple[str, str]]:
    status = client.get("horizontalpodautoscalers", name, NS)["status"]
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def events(client: LocalClient, name: str) -> list[tuple[str, str]]:
    listed = client.list("events", NS, field_selector=f"involvedObject.name={name}")["items"]
    return sorted((e["reason"], e["message"]) for e in listed)


def test_busy_pods_scale_their_deployment_up_and_the_status_says_why(client: LocalClient) -> None:
    deployment(client, "web", 2)
    running_pod(client, "web-1", "web", "100m")
    running_pod(client, "web-2", "web", "100m")
    report(client, {"web-1": 150, "web-2": 150})  # 150% of the request against a 50% target
    autoscaler(client, "web", "web")
    controller = HpaController(client, clock=lambda: NOW)
    controller.sync_all()
    assert client.get("deployments", "web", NS)["spec"]["replicas"] == 5  # wants 6, maxReplicas 5
    status = client.get("horizontalpodautoscalers", "web", NS)["status"]
    assert status["desiredReplicas"] == 5 and status["lastScaleTime"] == now_rfc3339(NOW)
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "150m", "averageUtilization": 150}}}]
    assert conditions(client, "web") == {"AbleToScale": ("True", "SucceededRescale"),
                                         "ScalingActive": ("True", "ValidMetricFound"),
                                         "ScalingLimited": ("True", "TooManyReplicas")}
    assert events(client, "web") == [("SuccessfulRescale", "New size: 5; reason: cpu resource utilization "
                                      "(percentage of request) above target")]


def test_pods_without_a_cpu_request_make_scaling_inactive(client: LocalClient) -> None:
    deployment(client, "noreq", 1)
    running_pod(client, "noreq-1", "noreq", None)
    report(client, {"noreq-1": 500})
    autoscaler(client, "noreq", "noreq")
    HpaController(client, clock=lambda: NOW).sync_all()
    assert client.get("deployments", "noreq", NS)["spec"]["replicas"] == 1
    assert conditions(client, "noreq")["ScalingActive"] == ("False", "FailedGetResourceMetric")
    message = next(c["message"] for c in client.get("horizontalpodautoscalers", "noreq", NS)["status"]["conditions"]
                   if c["type"] == "ScalingActive")
    assert message.endswith("missing request for cpu in container main of Pod noreq-1")


def test_a_missing_target_is_reported_on_its_autoscaler_and_the_others_go_on(client: LocalClient) -> None:
    autoscaler(client, "ghost", "nothing-here")
    deployment(client, "web", 1)
    running_pod(client, "web-1", "web", "100m")
    report(client, {"web-1": 100})
    autoscaler(client, "web", "web")
    HpaController(client, clock=lambda: NOW).sync_all()
    assert conditions(client, "ghost")["AbleToScale"] == ("False", "FailedGetScale")
    assert client.get("deployments", "web", NS)["spec"]["replicas"] == 2


def test_idle_pods_scale_down_only_after_the_stabilisation_window(client: LocalClient) -> None:
    deployment(client, "web", 2)
    running_pod(client, "web-1", "web", "100m")
    running_pod(client, "web-2", "web", "100m")
    report(client, {"web-1": 5, "web-2": 5})
    autoscaler(client, "web", "web")
    clock = [NOW]
    controller = HpaController(client, clock=lambda: clock[0])
    controller.sync_all()
    assert client.get("deployments", "web", NS)["spec"]["replicas"] == 2
    assert conditions(client, "web")["AbleToScale"] == ("True", "ScaleDownStabilized")
    clock[0] = NOW + 301  # the reports age too: keep them fresh
    report(client, {"web-1": 5, "web-2": 5})
    client.patch("nodemetrics", "n1", {"status": {"timestamp": now_rfc3339(clock[0] - 1)}}, subresource="status")
    controller.sync_all()
    assert client.get("deployments", "web", NS)["spec"]["replicas"] == 1


def test_api_objects_become_the_decisions_inputs() -> None:
    spec = spec_of({"spec": {"minReplicas": 2, "maxReplicas": 7, "metrics": [
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                       "averageValue": "64Mi"}}}],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30, "policies": [
            {"type": "Pods", "value": 1, "periodSeconds": 60}], "tolerance": "0.05"}}}})
    assert (spec.min_replicas, spec.max_replicas) == (2, 7)
    assert spec.metrics[0].average_value == 64 * 2**20
    assert (spec.scale_down.stabilization_s, spec.scale_down.tolerance) == (30, 0.05)
    assert spec.scale_up.stabilization_s == 0  # not given: the default
    pod = pod_of({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                  "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "0.25"}}}, {"name": "b"}]},
                  "status": {"phase": "Running"}})
    assert pod.deleted and pod.ready is None
    assert [dict(c.requests) for c in pod.containers] == [{"cpu": 250}, {}]
