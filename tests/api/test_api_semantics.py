"""API semantics Kubernetes users rely on, against a real master: foreground deletion, the
message of a failed JSON-patch test, a list at a future resourceVersion, and a watch from a
compacted one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

MERGE = {"content-type": "application/merge-patch+json"}


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


# -- resourceVersion too large, and too old -----------------------------------------------------

def test_a_list_at_a_future_resource_version_waits_then_times_out(api: client.ApiClient, http: httpx.Client,
                                                                 ns: str) -> None:
    core = client.CoreV1Api(api)
    current = int(core.list_namespaced_pod(ns).metadata.resource_version)
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_pod(ns, resource_version=str(current + 1000))
    assert exc.value.status == 504
    status = json.loads(exc.value.body)
    assert status["reason"] == "Timeout"
    assert status["message"].startswith(f"Timeout: Too large resource version: {current + 1000}, current: ")
    assert status["details"]["causes"] == [{"reason": "ResourceVersionTooLarge",
                                            "message": "Too large resource version"}]
    assert exc.value.headers["Retry-After"] == "1"


def test_a_list_at_a_resource_version_reached_while_it_waits_answers(api: client.ApiClient, http: httpx.Client,
                                                                    ns: str) -> None:
    core = client.CoreV1Api(api)
    current = int(core.list_namespaced_pod(ns).metadata.resource_version)
    pool = ThreadPoolExecutor(1)
    try:
        pending = pool.submit(core.list_namespaced_pod, ns, resource_version=str(current + 1))
        time.sleep(0.5)  # the list is waiting for the revision
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod).status_code == 201
        listed = pending.result(timeout=30)
    finally:
        pool.shutdown()
    assert int(listed.metadata.resource_version) >= current + 1
    assert [p.metadata.name for p in listed.items] == ["late"]


@pytest.fixture
def short_history_master(tmp_path: Path) -> Iterator[MasterProcess]:
    args = ("--no-controllers", "--watch-history", "5", "--option", "compact_every_s=0.2")
    proc = MasterProcess(tmp_path, extra_args=args).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_a_watch_from_a_compacted_revision_gets_410_and_the_client_relists(
        short_history_master: MasterProcess) -> None:
    cfg = client.Configuration()
    cfg.host = short_history_master.url
    with client.ApiClient(cfg) as api_client, httpx.Client(base_url=short_history_master.url, timeout=10) as http:
        core = client.CoreV1Api(api_client)
        core.create_namespace({"metadata": {"name": "w"}})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        core.create_namespaced_pod("w", pod)
        old_rv = core.list_namespaced_pod("w").metadata.resource_version
        for i in range(20):  # far more revisions than the 5 kept
            core.patch_namespaced_pod("p", "w", {"metadata": {"labels": {"n": str(i)}}})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the compactor has dropped old_rv
            r = http.get("/api/v1/namespaces/w/pods", params={"watch": "true", "resourceVersion": old_rv,
                                                             "timeoutSeconds": "1"})
            if '"code":410' in r.text.replace(" ", ""):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the history was never compacted")

        with pytest.raises(ApiException) as exc:
            for _ in watch.Watch().stream(core.list_namespaced_pod, "w", resource_version=old_rv, timeout_seconds=5):
                pass
        assert exc.value.status == 410

        # What an informer does next: list again, and watch from the list's resourceVersion.
        listed = core.list_namespaced_pod("w")
        assert listed.items[0].metadata.labels == {"n": "19"}
        seen: list[tuple[str, str]] = []
        stream = watch.Watch()

        def consume() -> None:
            for ev in stream.stream(core.list_namespaced_pod, "w", resource_version=listed.metadata.resource_version,
                                    timeout_seconds=10):
                seen.append((ev["type"], ev["object"].metadata.labels.get("n", "")))
                stream.stop()

        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(consume)
            time.sleep(0.5)
            core.patch_namespaced_pod("p", "w", {"metadata": {"labels": {"n": "after"}}})
            done.result(timeout=30)
        assert seen == [("MODIFIED", "after")]
