"""Server-side dry run (dryRun=All) on every verb, against a real master with its controllers.

Each dry-run request gets the full admission and validation of the real one and the object as
it would be, and writes nothing: the stored object keeps its resourceVersion, and a watch
from before the request sees no event."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources:
          requests: {{cpu: 10m, memory: 16Mi}}
"""

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def master(controlled_master: MasterProcess) -> MasterProcess:
    # With its controllers: a dry run must not set the deployment controller or the
    # registry's cascade in motion either.
    return controlled_master


def kubectl(master: MasterProcess, *args: str, ok: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                            input=stdin, timeout=60)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def events_since(http: httpx.Client, path: str, rv: str, **params: str) -> list[dict[str, Any]]:
    """Every watch event on `path` after resourceVersion `rv` (a watch opened back then)."""
    r = http.get(path, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2", **params},
                 timeout=15)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def settled(http: httpx.Client, path: str, ready: Any = lambda obj: True) -> dict[str, Any]:
    """The object at `path` once `ready(obj)` holds and nothing has written it for a second."""
    deadline = time.monotonic() + 60
    last_rv, since = "", time.monotonic()
    while time.monotonic() < deadline:
        obj = http.get(path).json()
        rv = obj["metadata"]["resourceVersion"]
        if rv != last_rv or not ready(obj):
            last_rv, since = rv, time.monotonic()
        elif time.monotonic() - since > 1.0:
            return dict(obj)
        time.sleep(0.1)
    raise AssertionError(f"{path} never settled")


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = f"dry-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


@pytest.fixture
def http(master: MasterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=master.url, timeout=10) as c:
        yield c


def web_with_pods(master: MasterProcess, http: httpx.Client, ns: str, tmp_path: Path) -> dict[str, Any]:
    """Deployment web (3 replicas, created by kubectl apply) and its 3 pods, settled."""
    manifest = tmp_path / "web3.yaml"
    manifest.write_text(DEPLOYMENT.format(ns=ns, replicas=3))
    kubectl(master, "apply", "-f", str(manifest))
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    return settled(http, path, lambda d: (d.get("status") or {}).get("replicas") == 3)


def pod_uids(http: httpx.Client, ns: str) -> set[tuple[str, bool]]:
    items = http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
    return {(p["metadata"]["uid"], bool(p["metadata"].get("deletionTimestamp"))) for p in items}


@needs_kubectl
def test_kubectl_dry_runs_leave_the_deployment_and_its_pods_alone(master: MasterProcess, http: httpx.Client,
                                                                  ns: str, tmp_path: Path) -> None:
    before = web_with_pods(master, http, ns, tmp_path)
    pods_before = pod_uids(http, ns)
    assert len(pods_before) == 3
    rv = before["metadata"]["resourceVersion"]
    four = tmp_path / "web4.yaml"
    four.write_text(DEPLOYMENT.format(ns=ns, replicas=4))

    diff = kubectl(master, "diff", "-f", str(four), ok=False)
    assert diff.returncode == 1, diff.stderr  # 1: there are differences
    assert "replicas: 4" in diff.stdout
    out = kubectl(master, "apply", "--dry-run=server", "-f", str(four)).stdout
    assert "(server dry run)" in out
    kubectl(master, "apply", "--server-side", "--dry-run=server", "-f", str(four))
    kubectl(master, "scale", "deployment/web", "-n", ns, "--replicas=7", "--dry-run=server")
    kubectl(master, "patch", "deployment/web", "-n", ns, "--dry-run=server", "-p", '{"spec":{"replicas":9}}')
    kubectl(master, "label", "deployment/web", "-n", ns, "colour=red", "--dry-run=server")
    replaced = kubectl(master, "replace", "--dry-run=server", "-o", "json", "-f", str(four)).stdout
    assert json.loads(replaced)["spec"]["replicas"] == 4  # the object as it would be
    out = kubectl(master, "delete", "deployment/web", "-n", ns, "--dry-run=server").stdout
    # kubectl 1.32 prints 'deleted (server dry run)', 1.37 'deleted from NS namespace (server dry run)'.
    assert "deleted" in out and out.rstrip().endswith("(server dry run)")
    kubectl(master, "delete", "pods", "--all", "-n", ns, "--dry-run=server")
    other = tmp_path / "other.yaml"
    other.write_text(DEPLOYMENT.format(ns=ns, replicas=1).replace("name: web\n", "name: other\n", 1))
    out = kubectl(master, "create", "--dry-run=server", "-f", str(other)).stdout
    assert "created (server dry run)" in out

    after = http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json()
    assert after["metadata"]["resourceVersion"] == rv
    assert after["spec"]["replicas"] == 3
    assert "colour" not in (after["metadata"].get("labels") or {})
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/other").status_code == 404
    assert events_since(http, f"/apis/apps/v1/namespaces/{ns}/deployments", rv) == []
    # Neither the registry's cascade nor the deployment controller touched the pods.
    assert pod_uids(http, ns) == pods_before


def test_client_dry_runs_write_nothing_on_any_verb(api: client.ApiClient, http: httpx.Client, ns: str) -> None:
    core = client.CoreV1Api(api)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}]}}
    core.create_namespaced_pod(ns, pod)
    stored = settled(http, f"/api/v1/namespaces/{ns}/pods/p")
    rv = stored["metadata"]["resourceVersion"]

    created = core.create_namespaced_pod(ns, {**pod, "metadata": {"name": "q"}}, dry_run="All")
    assert created.metadata.uid and created.metadata.name == "q"
    replaced = dict(stored, metadata={**stored["metadata"], "labels": {"x": "y"}})
    assert core.replace_namespaced_pod("p", ns, replaced, dry_run="All").metadata.labels == {"x": "y"}
    patched = core.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"a": "b"}}}, dry_run="All")
    assert patched.metadata.labels == {"a": "b"}
    status = core.patch_namespaced_pod_status("p", ns, {"status": {"phase": "Failed"}}, dry_run="All")
    assert status.status.phase == "Failed"
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-x"}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods/p/binding", params={"dryRun": "All"}, json=binding)
    assert r.status_code == 201, r.text
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p", "namespace": ns},
                "deleteOptions": {"dryRun": ["All"]}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods/p/eviction", json=eviction)
    assert r.status_code == 201, r.text
    core.delete_namespaced_pod("p", ns, dry_run="All")
    core.delete_collection_namespaced_pod(ns, dry_run="All")

    after = http.get(f"/api/v1/namespaces/{ns}/pods/p").json()
    assert after["metadata"]["resourceVersion"] == rv
    assert not after["spec"].get("nodeName") and not after["metadata"].get("deletionTimestamp")
    assert http.get(f"/api/v1/namespaces/{ns}/pods/q").status_code == 404
    assert events_since(http, f"/api/v1/namespaces/{ns}/pods", rv) == []


def test_a_dry_run_is_refused_where_the_real_request_would_be(api: client.ApiClient, http: httpx.Client,
                                                             ns: str) -> None:
    core = client.CoreV1Api(api)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core.create_namespaced_pod(ns, pod)
    # Conflict checks: the name is taken; a stale resourceVersion.
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, pod, dry_run="All")
    assert exc.value.status == 409
    stale = {**pod, "metadata": {"name": "p", "resourceVersion": "1"}}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_pod("p", ns, stale, dry_run="All")
    assert exc.value.status == 409
    # Validation.
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, {**pod, "metadata": {"name": "Bad_Name"}}, dry_run="All")
    assert exc.value.status == 422
    # Pod security: a privileged pod in a restricted namespace.
    http.patch(f"/api/v1/namespaces/{ns}", headers={"content-type": "application/merge-patch+json"},
               json={"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    time.sleep(1.2)  # the admission cache's age for namespaces
    privileged = {**pod, "metadata": {"name": "priv"},
                  "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, privileged, dry_run="All")
    assert exc.value.status == 403


def test_a_dry_run_is_checked_against_quota_and_charges_nothing(api: client.ApiClient, http: httpx.Client,
                                                               ns: str) -> None:
    core = client.CoreV1Api(api)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}}
    assert http.post(f"/api/v1/namespaces/{ns}/resourcequotas", json=quota).status_code == 201
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    quota_path = f"/api/v1/namespaces/{ns}/resourcequotas/q"
    quota_rv = settled(http, quota_path)["metadata"]["resourceVersion"]
    for _ in range(3):  # a charge per dry run would exhaust pods: 1
        core.create_namespaced_pod(ns, pod, dry_run="All")
    assert http.get(quota_path).json()["metadata"]["resourceVersion"] == quota_rv
    core.create_namespaced_pod(ns, pod)
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, {**pod, "metadata": {"name": "p2"}}, dry_run="All")
    assert exc.value.status == 403 and "exceeded quota" in json.loads(exc.value.body)["message"]


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("POST", "/api/v1/namespaces/{ns}/pods", "CreateOptions"),
    ("PUT", "/api/v1/namespaces/{ns}/pods/p", "UpdateOptions"),
    ("PATCH", "/api/v1/namespaces/{ns}/pods/p", "PatchOptions"),
    ("DELETE", "/api/v1/namespaces/{ns}/pods/p", "DeleteOptions"),
])
def test_an_unknown_dry_run_value_is_refused(http: httpx.Client, ns: str, method: str, path: str, kind: str) -> None:
    # No scheduler takes it: the master's scheduler would otherwise write its status meanwhile.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox"}]}}
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod).status_code == 201
    rv = http.get(f"/api/v1/namespaces/{ns}/pods/p").json()["metadata"]["resourceVersion"]
    body = {"metadata": {"labels": {"a": "b"}}} if method == "PATCH" else (pod if method == "PUT" else None)
    headers = {"content-type": "application/merge-patch+json"} if method == "PATCH" else {}
    r = http.request(method, path.format(ns=ns), params={"dryRun": "Yes"}, json=body, headers=headers)
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == kind
    assert status["details"]["causes"][0]["field"] == "dryRun"
    assert 'supported values: "All"' in status["message"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods/p").json()["metadata"]["resourceVersion"] == rv
