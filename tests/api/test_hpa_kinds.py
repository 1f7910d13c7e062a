"""autoscaling/v2 HorizontalPodAutoscaler in an in-process registry: Kubernetes' defaults, 422
causes naming the field, the `kubectl get hpa` row, and one autoscaler per target (an HPA and
a PredictiveScaler on one Deployment are refused both ways)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.errors import ApiError
from sigma.api.hpa_kinds import hpa_row
from sigma.api.registry import Registry
from sigma.api.resources import resolve_name, resource
from sigma.api.tables import to_table
from sigma.store.sqlite import SqliteStore

HPAS = resource("horizontalpodautoscalers")
SCALERS = resource("predictivescalers")


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    reg = Registry(store)
    admission.install(reg)
    admission.bootstrap(reg)
    yield reg
    store.close()


def hpa(name: str = "web", target: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "maxReplicas": 5, **spec}}


def scaler(name: str, target: str) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "metric": {"type": "cpu"}, "targetPerReplica": 200, "minReplicas": 1, "maxReplicas": 4}}


def refused(registry: Registry, body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ApiError) as caught:
        registry.create(HPAS, "default", body)
    assert caught.value.code == 422
    return {c.field: c.message for c in caught.value.causes}


def test_defaults_are_kubernetes_v2_defaults(registry: Registry) -> None:
    spec = registry.create(HPAS, "default", hpa())["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert spec["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert spec["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                                             "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def test_a_partial_behavior_keeps_what_it_sets(registry: Registry) -> None:
    body = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    down = registry.create(HPAS, "default", body)["spec"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 60 and down["policies"][0]["type"] == "Percent"


def test_replica_bounds_are_checked_as_kubernetes_does(registry: Registry) -> None:
    assert refused(registry, hpa(minReplicas=0)) == {
        "spec.minReplicas": "Invalid value: 0: must be greater than or equal to 1"}
    assert refused(registry, hpa(minReplicas=6)) == {
        "spec.maxReplicas": "Invalid value: 5: must be greater than or equal to `minReplicas`"}
    assert refused(registry, hpa(maxReplicas=0))["spec.maxReplicas"] == "Invalid value: 0: must be greater than 0"


def test_metrics_are_resource_metrics_with_one_valid_target(registry: Registry) -> None:
    assert refused(registry, hpa(metrics=[{"type": "Pods"}])) == {
        "spec.metrics[0].type": 'Unsupported value: "Pods": supported values: "Resource"'}
    both = {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 50, "averageValue": "100m"}}}
    assert "spec.metrics[0].resource.target.averageValue" in refused(registry, hpa(metrics=[both]))
    none = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}
    assert refused(registry, hpa(metrics=[none]))["spec.metrics[0].resource.target.averageUtilization"] == (
        "Required value: must set either a target raw value or a target utilization")
    zero = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": 0}}}
    assert refused(registry, hpa(metrics=[zero]))["spec.metrics[0].resource.target.averageUtilization"] == (
        "Invalid value: 0: must be greater than 0")
    gpu = {"type": "Resource", "resource": {"name": "nvidia.com/gpu", "target": {
        "type": "AverageValue", "averageValue": "1"}}}
    assert refused(registry, hpa(metrics=[gpu]))["spec.metrics[0].resource.name"].startswith("Unsupported value")


def test_the_target_must_have_a_scale_subresource(registry: Registry) -> None:
    body = hpa()
    body["spec"]["scaleTargetRef"] = {"apiVersion": "v1", "kind": "Pod", "name": "web"}
    assert refused(registry, body)["spec.scaleTargetRef.kind"] == (
        'Unsupported value: "Pod": supported values: "Deployment", "ReplicaSet"')
    body["spec"]["scaleTargetRef"] = {"kind": "Deployment"}
    assert refused(registry, body)["spec.scaleTargetRef.name"] == "Required value"


def test_behavior_rules_are_bounded(registry: Registry) -> None:
    body = hpa(behavior={"scaleUp": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Sometimes",
                                     "policies": [{"type": "Pods", "value": 0, "periodSeconds": 1801}]}})
    causes = refused(registry, body)
    assert causes["spec.behavior.scaleUp.stabilizationWindowSeconds"] == (
        "Invalid value: 4000: must be less than or equal to 3600")
    assert causes["spec.behavior.scaleUp.policies[0].value"] == "Invalid value: 0: must be greater than zero"
    assert causes["spec.behavior.scaleUp.policies[0].periodSeconds"] == (
        "Invalid value: 1801: must be less than or equal to 1800")
    assert "spec.behavior.scaleUp.selectPolicy" in causes


def test_an_hpa_on_a_predictive_scalers_target_is_refused_and_vice_versa(registry: Registry) -> None:
    registry.create(SCALERS, "default", scaler("forecast", "web"))
    causes = refused(registry, hpa("web-hpa", "web"))
    assert causes == {"spec.scaleTargetRef": 'Invalid value: "Deployment/web": Deployment "web" is already scaled '
                      'by PredictiveScaler "forecast": one autoscaler per target (delete the PredictiveScaler first)'}
    registry.create(HPAS, "default", hpa("api-hpa", "api"))
    with pytest.raises(ApiError) as caught:
        registry.create(SCALERS, "default", scaler("api-forecast", "api"))
    assert caught.value.code == 422
    assert 'already scaled by HorizontalPodAutoscaler "api-hpa"' in caught.value.message
    # Another namespace, another Deployment "web": no conflict.
    registry.create(admission.NAMESPACES, None, {"metadata": {"name": "other"}})
    assert registry.create(HPAS, "other", hpa("web", "web"))["metadata"]["name"] == "web"
    # Retargeting an HPA onto a scaled Deployment is refused too; its status writes are not.
    moved = registry.get(HPAS, "default", "api-hpa")
    moved["spec"]["scaleTargetRef"]["name"] = "web"
    with pytest.raises(ApiError):
        registry.update(HPAS, "default", "api-hpa", moved)


def test_kubectl_get_hpa_columns(registry: Registry) -> None:
    obj = registry.create(HPAS, "default", hpa(metrics=[
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                       "averageValue": "100Mi"}}}]))
    table = to_table("HorizontalPodAutoscaler", [obj], "1", time.time())
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert table["rows"][0]["cells"][:6] == ["web", "Deployment/web", "cpu: <unknown>/50%, memory: <unknown>/100Mi",
                                             1, 5, 0]
    obj["status"] = {"currentReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40,
                                                                     "averageValue": "40m"}}},
        {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}}]}
    assert hpa_row(obj, time.time())[2:6] == ["cpu: 40%/50%, memory: 50Mi/100Mi", 1, 5, 3]
    assert resolve_name("hpa") is HPAS
