"""autoscaling/v1 HorizontalPodAutoscaler as a view of the stored v2 objects, through the
master's ASGI app in this process: conversion both ways, what v1 cannot say kept (behavior,
other metrics) or carried in Kubernetes' annotations, and the same refusals as v2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api.hpa_v1 import BEHAVIOR, CONDITIONS, to_v1, to_v2
from sigma.api.server import create_app
from tests.api.inprocess import Api
from tests.registry_client import admitted_registry

V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


@pytest.fixture
def api() -> Iterator[Api]:
    with admitted_registry() as registry:
        yield Api(create_app(registry))


def v1_body(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "maxReplicas": 4, **spec}}


def test_discovery_prefers_v2_and_lists_v1(api: Api) -> None:
    group = api.get("/apis/autoscaling").json()
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    names = [r["name"] for r in api.get("/apis/autoscaling/v1").json()["resources"]]
    assert "horizontalpodautoscalers" in names


def test_a_v1_autoscaler_is_stored_as_v2_and_read_back_in_either(api: Api) -> None:
    created = api.post(V1, v1_body(targetCPUUtilizationPercentage=60))
    assert created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["targetCPUUtilizationPercentage"] == 60 and created["spec"]["minReplicas"] == 1
    assert BEHAVIOR in created["metadata"]["annotations"]  # the defaulted v2 behavior, as Kubernetes carries it
    stored = api.get(f"{V2}/web").json()
    assert stored["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]
    listed = api.get(V1).json()
    assert listed["kind"] == "HorizontalPodAutoscalerList" and listed["items"][0]["apiVersion"] == "autoscaling/v1"


def test_a_v1_patch_keeps_what_only_v2_can_say(api: Api) -> None:
    v2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "maxReplicas": 4, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
                   "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                       "type": "Utilization", "averageUtilization": 50}}},
                       {"type": "Resource", "resource": {"name": "memory", "target": {
                           "type": "AverageValue", "averageValue": "100Mi"}}}]}}
    api.post(V2, v2)
    r = api.request("PATCH", f"{V1}/web", json={"spec": {"targetCPUUtilizationPercentage": 70, "maxReplicas": 6}},
                    headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    spec = api.get(f"{V2}/web").json()["spec"]
    assert spec["maxReplicas"] == 6 and spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu", "memory"]
    assert spec["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_v1_writes_are_refused_as_v2_writes_are(api: Api) -> None:
    r = api.request("POST", V1, json=v1_body(minReplicas=5))
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.maxReplicas"
    assert api.request("GET", V1, params={"watch": "true"}).status_code == 405
    api.post(V1, v1_body("gone"))
    assert api.request("DELETE", f"{V1}/gone").status_code == 200
    assert api.get(f"{V2}/gone").status_code == 404


def test_status_and_conditions_convert_as_kubernetes_annotates_them() -> None:
    stored = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
              "spec": {"maxReplicas": 3, "metrics": []},
              "status": {"currentReplicas": 2, "desiredReplicas": 3, "conditions": [
                  {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}],
                  "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                      "averageUtilization": 90, "averageValue": "90m"}}}]}}
    v1 = to_v1(stored)
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 90}
    assert "SucceededRescale" in v1["metadata"]["annotations"][CONDITIONS]
    back = to_v2(v1, stored)
    assert back["status"] == stored["status"] and CONDITIONS not in back["metadata"].get("annotations", {})
