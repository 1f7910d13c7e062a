"""ResourceQuota at pod creation and pod security by namespace label, over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.api.podsecurity import violations
from tests.api.auth_fixtures import namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # Controllers on: the quota controller recounts usage when pods go away.
    for master in start_auth_master(Path(tmp_path_factory.mktemp("quota")), "--option", "node_grace_s=3600"):
        with master.client("admin") as c:
            yield c


def sized(name: str, cpu: str, memory: str = "64Mi", **extra: str) -> dict[str, Any]:
    body = pod(name)
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": memory, **extra}}
    return body


def quota(admin: httpx.Client, ns: str, hard: dict[str, str]) -> None:
    r = admin.post(f"/api/v1/namespaces/{ns}/resourcequotas", json={"metadata": {"name": "compute"},
                                                                     "spec": {"hard": hard}})
    assert r.status_code == 201, r.text


def used(admin: httpx.Client, ns: str) -> dict[str, str]:
    return dict(admin.get(f"/api/v1/namespaces/{ns}/resourcequotas/compute").json().get("status", {}).get("used", {}))


def test_a_pod_over_the_quota_is_refused_and_usage_is_counted(admin: httpx.Client) -> None:
    ns = namespace(admin)
    quota(admin, ns, {"pods": "3", "cpu": "1", "memory": "1Gi", "sigma.io/batch-cpu": "2000"})
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=sized("a", "600m")).status_code == 201
    assert used(admin, ns) == {"pods": "1", "cpu": "600m", "memory": "64Mi", "sigma.io/batch-cpu": "0"}
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=sized("b", "600m"))
    assert r.status_code == 403
    assert r.json()["message"] == ('pods "b" is forbidden: exceeded quota: compute, requested: cpu=600m, '
                                   'used: cpu=600m, limited: cpu=1')
    batch = sized("c", "0", **{"sigma.io/batch-cpu": "2500"})
    assert "sigma.io/batch-cpu=2500" in admin.post(f"/api/v1/namespaces/{ns}/pods", json=batch).json()["message"]
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=sized("d", "400m")).status_code == 201
    table = admin.get(f"/api/v1/namespaces/{ns}/resourcequotas",
                      headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert "cpu: 1/1" in table["rows"][0]["cells"][2]

    # Deleting a pod gives its share back once the controller recounts.
    assert admin.delete(f"/api/v1/namespaces/{ns}/pods/a", params={"gracePeriodSeconds": "0"}).status_code == 200
    deadline = time.monotonic() + 15
    while used(admin, ns).get("cpu") != "400m" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert used(admin, ns)["cpu"] == "400m"
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=sized("e", "600m")).status_code == 201


def test_a_quota_with_an_unknown_resource_is_invalid(admin: httpx.Client) -> None:
    ns = namespace(admin)
    r = admin.post(f"/api/v1/namespaces/{ns}/resourcequotas",
                   json={"metadata": {"name": "q"}, "spec": {"hard": {"gpus": "1", "cpu": "lots"}}})
    assert r.status_code == 422
    fields = {c["field"] for c in r.json()["details"]["causes"]}
    assert fields == {"spec.hard[gpus]", "spec.hard[cpu]"}


def test_a_privileged_pod_is_refused_unless_the_namespace_allows_it(admin: httpx.Client) -> None:
    privileged = pod("root-of-all", securityContext={})
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    ns = namespace(admin)
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=privileged)
    assert r.status_code == 403
    assert 'violates PodSecurity "baseline:latest": privileged (container "c"' in r.json()["message"]
    host = pod("host-net", hostNetwork=True)
    assert "host namespaces (hostNetwork=true)" in admin.post(f"/api/v1/namespaces/{ns}/pods", json=host).text
    open_ns = namespace(admin, {"pod-security.kubernetes.io/enforce": "privileged"})
    assert admin.post(f"/api/v1/namespaces/{open_ns}/pods", json=privileged).status_code == 201


def hardened(name: str, **pod_sc: Any) -> dict[str, Any]:
    """A pod with what restricted asks for, as Kubernetes' Pod Security Standards define it."""
    body = pod(name, securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, **pod_sc})
    body["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}
    return body


def test_a_restricted_namespace_refuses_root(admin: httpx.Client) -> None:
    ns = namespace(admin, {"pod-security.kubernetes.io/enforce": "restricted"})
    root = hardened("root", runAsUser=0)
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=root)
    assert r.status_code == 403
    assert "runAsUser=0 (pod must not set spec.securityContext.runAsUser=0)" in r.json()["message"]
    assert "label it pod-security.kubernetes.io/enforce=baseline" in r.json()["message"]
    assert [c["field"] for c in r.json()["details"]["causes"]] == ["spec.securityContext.runAsUser"]
    # Saying nothing is not enough: the pod must promise it runs as non-root.
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=pod("silent"))
    assert r.status_code == 403 and "spec.containers[0].securityContext.runAsNonRoot" in r.text
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=hardened("plain", runAsUser=1000)).status_code == 201
    # Root is fine at baseline.
    assert admin.post(f"/api/v1/namespaces/{namespace(admin)}/pods", json=root).status_code == 201


@pytest.mark.parametrize(("level", "spec", "expected"), [
    ("privileged", {"hostPID": True}, 0),
    ("baseline", {"hostPID": True, "containers": [{"name": "c", "securityContext": {"capabilities": {
        "add": ["SYS_ADMIN", "CHOWN"]}}}]}, 2),
    ("baseline", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, 1),
    ("restricted", {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": True,
                                                                     "capabilities": {"drop": ["ALL"]},
                                                                     "runAsNonRoot": True}}]}, 1),
])
def test_each_level_lists_every_violation(level: str, spec: dict[str, Any], expected: int) -> None:
    assert len(violations(level, spec)) == expected
