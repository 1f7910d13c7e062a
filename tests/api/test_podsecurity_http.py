"""Pod security through a real master: the kubernetes client and kubectl get Kubernetes' 403
with a cause per field, and pods made from templates by the controllers are held to the same
levels, the refusal showing on their owner as a FailedCreate Event."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

LABEL = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def master(controlled_master: MasterProcess) -> MasterProcess:
    # Controllers on (they make the templates' pods); no node, so nothing is scheduled.
    return controlled_master


@pytest.fixture(scope="module")
def http(master: MasterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=master.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def core(master: MasterProcess) -> Iterator[client.CoreV1Api]:
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api:
        yield client.CoreV1Api(api)


def namespace(http: httpx.Client, level: str | None) -> str:
    name = f"ps-{uuid.uuid4().hex[:8]}"
    labels = {LABEL: level} if level else {}
    r = http.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels}})
    assert r.status_code == 201, r.text
    return name


def attack(name: str) -> dict[str, Any]:
    """What got past restricted: a non-root user with group 0 and privileged: true on the pod."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": True,
                                         "privileged": True},
                     "containers": [{"name": "c", "command": ["sleep", "60"]}]}}


def refusal(err: ApiException) -> dict[str, Any]:
    assert err.status == 403
    body: dict[str, Any] = json.loads(err.body)
    assert body["reason"] == "Forbidden" and body["code"] == 403
    return body


def test_the_reported_attack_is_refused_at_restricted_and_baseline(http: httpx.Client) -> None:
    # Sent as raw JSON: the kubernetes client would not even send a pod-level privileged.
    for level in ("restricted", None):  # None: the default, baseline
        ns = namespace(http, level)
        r = http.post(f"/api/v1/namespaces/{ns}/pods", json=attack("escape"))
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["reason"] == "Forbidden"
        fields = [c["field"] for c in body["details"]["causes"]]
        assert "spec.securityContext.privileged" in fields
        assert f'violates PodSecurity "{level or "baseline"}:latest"' in body["message"]
        assert "privileged (pod must not set securityContext.privileged=true)" in body["message"]
        assert f"{LABEL}=privileged to allow this" in body["message"]
        if level == "restricted":
            assert {"spec.securityContext.runAsGroup", "spec.containers[0].securityContext.allowPrivilegeEscalation",
                    "spec.containers[0].securityContext.seccompProfile.type",
                    "spec.containers[0].securityContext.capabilities.drop"} <= set(fields)
        assert http.get(f"/api/v1/namespaces/{ns}/pods/escape").status_code == 404
    open_ns = namespace(http, "privileged")
    assert http.post(f"/api/v1/namespaces/{open_ns}/pods", json=attack("escape")).status_code == 201


def test_a_pod_written_to_the_restricted_standard_is_admitted(http: httpx.Client, core: client.CoreV1Api) -> None:
    ns = namespace(http, "restricted")
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="hardened"),
        spec=client.V1PodSpec(
            security_context=client.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000,
                                                         seccomp_profile=client.V1SeccompProfile(
                                                             type="RuntimeDefault")),
            containers=[client.V1Container(name="c", image="busybox", command=["sleep", "60"],
                                           ports=[client.V1ContainerPort(container_port=8080)],
                                           security_context=client.V1SecurityContext(
                                               allow_privilege_escalation=False,
                                               capabilities=client.V1Capabilities(drop=["ALL"],
                                                                                  add=["NET_BIND_SERVICE"])))],
            volumes=[client.V1Volume(name="scratch", empty_dir=client.V1EmptyDirVolumeSource())]))
    assert core.create_namespaced_pod(ns, pod).metadata.name == "hardened"
    # The same pod with one field more is refused, naming that field.
    pod.metadata.name = "hardened-host-port"
    pod.spec.containers[0].ports[0].host_port = 8080
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, pod)
    body = refusal(refused.value)
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.containers[0].ports[0].hostPort"]
    assert 'hostPort (container "c" uses hostPort 8080)' in body["message"]


@pytest.mark.parametrize(("change", "field"), [
    ({"hostPID": True}, "spec.hostPID"),
    ({"securityContext": {"sysctls": [{"name": "kernel.core_pattern", "value": "|/tmp/x"}]}},
     "spec.securityContext.sysctls[0].name"),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "spec.securityContext.seccompProfile.type"),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "spec.volumes[0].hostPath"),
])
def test_baseline_fields_through_the_client(http: httpx.Client, core: client.CoreV1Api, change: dict[str, Any],
                                            field: str) -> None:
    ns = namespace(http, "baseline")
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **change}}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, body)
    assert [c["field"] for c in refusal(refused.value)["details"]["causes"]] == [field]


def kubectl(master: MasterProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--server", master.url, *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_kubectl_shows_the_refusal_and_a_label_that_names_no_level_is_invalid(master: MasterProcess,
                                                                                http: httpx.Client) -> None:
    ns = namespace(http, None)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "k", "namespace": ns},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                                         "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}}
    result = kubectl(master, "apply", "-f", "-", stdin=json.dumps(manifest))
    assert result.returncode != 0
    assert ('violates PodSecurity "baseline:latest": non-default capabilities (container "c" must not include '
            '"SYS_ADMIN" in securityContext.capabilities.add)') in result.stderr
    result = kubectl(master, "label", "namespace", ns, f"{LABEL}=priviledged")
    assert result.returncode != 0 and "must be one of privileged, baseline, restricted" in result.stderr
    assert kubectl(master, "label", "namespace", ns, f"{LABEL}=privileged").returncode == 0
    assert kubectl(master, "apply", "-f", "-", stdin=json.dumps(manifest)).returncode == 0


def failed_create_events(http: httpx.Client, ns: str, owner: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = [e for e in http.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
                  if e["involvedObject"]["name"] == owner and e["reason"] == "FailedCreate"]
        if events:
            return events
        time.sleep(0.2)
    return []


def replica_failure(http: httpx.Client, ns: str, name: str, timeout_s: float = 30) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}").json().get("status") or {}
        found = next((c for c in status.get("conditions") or [] if c["type"] == "ReplicaFailure"), None)
        if found:
            return dict(found)
        time.sleep(0.2)
    return None


def test_a_deployment_whose_template_is_refused_says_so_on_its_replica_set_and_itself(http: httpx.Client) -> None:
    ns = namespace(http, None)
    template = {"metadata": {"labels": {"app": "priv"}},
                "spec": {"securityContext": {"privileged": True},
                         "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}}
    r = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json={
        "metadata": {"name": "priv"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "priv"}},
                                               "template": template}})
    assert r.status_code == 201, r.text
    # As in Kubernetes: the ReplicaSet says FailedCreate, the Deployment carries ReplicaFailure.
    deadline = time.monotonic() + 30
    while not (replica_sets := http.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").json()["items"]):
        assert time.monotonic() < deadline, "the Deployment made no ReplicaSet"
        time.sleep(0.2)
    (rs,) = replica_sets
    events = failed_create_events(http, ns, rs["metadata"]["name"])
    assert events, "the refused template left no trace on its ReplicaSet"
    assert events[0]["type"] == "Warning" and events[0]["involvedObject"]["kind"] == "ReplicaSet"
    assert 'violates PodSecurity "baseline:latest": privileged (pod must not set' in events[0]["message"]
    failure = replica_failure(http, ns, "priv")
    assert failure is not None and failure["status"] == "True" and failure["reason"] == "FailedCreate"
    assert 'violates PodSecurity "baseline:latest"' in failure["message"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"] == []


def test_a_batch_job_whose_template_is_refused_says_so_on_the_job(http: httpx.Client) -> None:
    ns = namespace(http, "restricted")
    r = http.post(f"/apis/sigma.io/v1/namespaces/{ns}/batchjobs", json={"metadata": {"name": "root-job"}, "spec": {
        "tasks": [{"name": "main", "instances": 1, "template": {"spec": {
            "securityContext": {"runAsUser": 0},
            "containers": [{"name": "main", "command": ["true"],
                            "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}]}}}]}})
    assert r.status_code == 201, r.text
    events = failed_create_events(http, ns, "root-job")
    assert events, "the refused template left no trace on its BatchJob"
    assert events[0]["involvedObject"]["kind"] == "BatchJob"
    assert 'violates PodSecurity "restricted:latest"' in events[0]["message"]
    assert "runAsUser=0 (pod must not set spec.securityContext.runAsUser=0)" in events[0]["message"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"] == []
