"""API semantics Kubernetes users rely on, against a real master: foreground deletion, the
message of a failed JSON-patch test, a list at a future resourceVersion, and a watch from a
compacted one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

MERGE = {"content-type": "application/merge-patch+json"}


@pytest.fixture
def api(master: MasterProcess) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    cfg.host = master.url
    with client.ApiClient(cfg) as api_client:
        yield api_client


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def owned_pod(name: str, owner: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "ownerReferences": [ref], **metadata},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


# -- foreground deletion ----------------------------------------------------------------------

def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone(api: client.ApiClient,
                                                                          http: httpx.Client, ns: str) -> None:
    apps = client.AppsV1Api(api)
    owner = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("web")).json()
    # A dependent held by a finalizer of its own, and one on a node, which ends gracefully.
    held = owned_pod("held", owner, finalizers=["example.com/hold"])
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=held).status_code == 201
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=owned_pod("running", owner)).status_code == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "running"},
               "target": {"kind": "Node", "name": "node-1"}}
    assert http.post(f"/api/v1/namespaces/{ns}/pods/running/binding", json=binding).status_code == 201

    apps.delete_namespaced_deployment("web", ns, propagation_policy="Foreground")

    kept = http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert kept.status_code == 200, "the owner went before its dependents"
    assert kept.json()["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in kept.json()["metadata"]["finalizers"]
    for name in ("held", "running"):
        assert http.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()["metadata"]["deletionTimestamp"]

    # The finalizer of one dependent goes: the other still holds the owner.
    http.patch(f"/api/v1/namespaces/{ns}/pods/held", headers=MERGE, json={"metadata": {"finalizers": None}})
    assert http.get(f"/api/v1/namespaces/{ns}/pods/held").status_code == 404
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").status_code == 200
    # The node's agent finishes the graceful deletion of the last one: the owner goes with it.
    r = http.request("DELETE", f"/api/v1/namespaces/{ns}/pods/running", json={"gracePeriodSeconds": 0})
    assert r.status_code == 200, r.text
    assert http.get(f"/api/v1/namespaces/{ns}/pods/running").status_code == 404
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").status_code == 404


def test_foreground_deletion_without_dependents_deletes_at_once(http: httpx.Client, ns: str) -> None:
    http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("lonely"))
    r = http.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/lonely",
                     json={"propagationPolicy": "Foreground"})
    assert r.status_code == 200, r.text
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/lonely").status_code == 404


def test_a_dependent_that_does_not_block_does_not_hold_the_owner(http: httpx.Client, ns: str) -> None:
    owner = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment("loose")).json()
    pod = owned_pod("p", owner, finalizers=["example.com/hold"])
    pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = False
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    http.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/loose", json={"propagationPolicy": "Foreground"})
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/loose").status_code == 404
    assert http.get(f"/api/v1/namespaces/{ns}/pods/p").json()["metadata"]["deletionTimestamp"]


# -- JSON patch test operations -------------------------------------------------------------

def test_a_failed_json_patch_test_names_its_path_and_expected_value(api: client.ApiClient,
                                                                    http: httpx.Client, ns: str) -> None:
    core = client.CoreV1Api(api)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "blue"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    rv = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod).json()["metadata"]["resourceVersion"]
    ops = [{"op": "test", "path": "/metadata/labels/app", "value": "green"},
           {"op": "replace", "path": "/metadata/labels/app", "value": "red"}]
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_pod("p", ns, ops)  # a list body: sent as application/json-patch+json
    assert exc.value.status == 422
    status = json.loads(exc.value.body)
    assert status["reason"] == "Invalid"
    assert "testing value /metadata/labels/app failed" in status["message"]
    assert '"green"' in status["message"] and '"blue"' in status["message"]
    assert status["details"]["causes"][0]["field"] == "/metadata/labels/app"
    # A test of a path that does not exist fails the same way.
    missing = [{"op": "test", "path": "/metadata/labels/tier", "value": "web"}]
    r = http.patch(f"/api/v1/namespaces/{ns}/pods/p", headers={"content-type": "application/json-patch+json"},
                   content=json.dumps(missing))
    assert r.status_code == 422 and "testing value /metadata/labels/tier failed" in r.json()["message"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods/p").json()["metadata"]["resourceVersion"] == rv
