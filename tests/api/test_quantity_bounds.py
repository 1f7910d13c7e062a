"""Quantities Kubernetes cannot represent (beyond int64 in their unit, milli-cores for cpu) are
refused at the API with 422 naming the field, nothing is stored, and the scheduler keeps
scheduling afterwards: such values once passed validation (or made it answer 500) and then
crashed the scheduler on every pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.auth_fixtures import namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e

NODE = "big-node"


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    # Controllers and schedulers on, node lifecycle kept from tainting the node we register.
    for master in start_auth_master(Path(tmp_path_factory.mktemp("qty")), "--option", "node_grace_s=3600"):
        with master.client("admin") as c:
            r = c.post("/api/v1/nodes", json={"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
                                              "status": {"capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                                                         "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                                                         "conditions": [{"type": "Ready", "status": "True"}]}})
            assert r.status_code == 201, r.text
            yield c


def requesting(name: str, resources: dict[str, Any]) -> dict[str, Any]:
    body = pod(name)
    body["spec"]["containers"][0]["resources"] = resources
    return body


def raw_json(body: dict[str, Any], placeholder: str, literal: str) -> bytes:
    """The body with a JSON number no Python float survives (1e400), sent as written."""
    return json.dumps(body).replace(f'"{placeholder}"', literal).encode()


def fields(r: httpx.Response) -> set[str]:
    return {c["field"] for c in r.json()["details"]["causes"]}


def bound_to(admin: httpx.Client, ns: str, name: str, timeout_s: float = 30) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        node = admin.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()["spec"].get("nodeName")
        if node:
            return str(node)
        time.sleep(0.2)
    return None


BAD_POD_QUANTITIES = [
    ("requests", "memory", "100Ei"),
    ("requests", "memory", "99999999999999999999999Ei"),
    ("limits", "memory", "8Ei"),  # 2**63: one past int64
    ("requests", "cpu", "1e999999999"),
    ("requests", "cpu", "1e400"),
    ("requests", "cpu", "1e17"),  # 1e20 milli-cores
    ("requests", "cpu", "9223372036854776"),
    ("requests", "memory", "1e" + "9" * 20),
    ("requests", "sigma.io/batch-memory", "9223372036854775808"),
]


@pytest.mark.parametrize(("kind", "resource", "value"), BAD_POD_QUANTITIES)
def test_a_pod_quantity_beyond_int64_is_422_with_its_field(admin: httpx.Client, kind: str, resource: str,
                                                           value: str) -> None:
    ns = namespace(admin)
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=requesting("huge", {kind: {resource: value}}))
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "Invalid"
    # A limit alone is also the request (defaulted first), so a bad limit names both.
    assert f"spec.containers[0].resources.{kind}[{resource}]" in fields(r)
    assert "too large" in r.text or "out of range" in r.text
    assert admin.get(f"/api/v1/namespaces/{ns}/pods/huge").status_code == 404


@pytest.mark.parametrize("literal", ["1e400", "99999999999999999999999"])
def test_a_json_number_beyond_int64_is_refused_not_500(admin: httpx.Client, literal: str) -> None:
    ns = namespace(admin)
    body = raw_json(requesting("num", {"requests": {"cpu": "PLACEHOLDER"}}), "PLACEHOLDER", literal)
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", content=body, headers={"Content-Type": "application/json"})
    # 1e400 is infinity to a JSON decoder (400 BadRequest); a huge integer decodes and is 422.
    assert r.status_code in (400, 422), r.text
    if r.status_code == 422:
        assert fields(r) == {"spec.containers[0].resources.requests[cpu]"}
    assert admin.get(f"/api/v1/namespaces/{ns}/pods/num").status_code == 404


def test_overhead_quota_and_templates_are_bounded_too(admin: httpx.Client) -> None:
    ns = namespace(admin)
    overhead = pod("overhead", overhead={"memory": "100Ei"})
    r = admin.post(f"/api/v1/namespaces/{ns}/pods", json=overhead)
    assert r.status_code == 422 and fields(r) == {"spec.overhead[memory]"}, r.text

    r = admin.post(f"/api/v1/namespaces/{ns}/resourcequotas", json={
        "metadata": {"name": "q"}, "spec": {"hard": {"memory": "100Ei", "cpu": "1e999999999", "pods": "1e30"}}})
    assert r.status_code == 422, r.text
    assert fields(r) == {"spec.hard[memory]", "spec.hard[cpu]", "spec.hard[pods]"}
    assert admin.get(f"/api/v1/namespaces/{ns}/resourcequotas/q").status_code == 404

    template = {"metadata": {"labels": {"app": "x"}}, "spec": requesting("t", {"requests": {"cpu": "1e17"}})["spec"]}
    r = admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json={
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})
    assert r.status_code == 422 and fields(r) == {"spec.template.spec.containers[0].resources.requests[cpu]"}, r.text

    r = admin.post(f"/apis/sigma.io/v1/namespaces/{ns}/batchjobs", json={"metadata": {"name": "j"}, "spec": {
        "tasks": [{"name": "main", "instances": 1, "template": {"spec": {"containers": [
            {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "100Ei"}}}]}}}]}})
    assert r.status_code == 422, r.text
    assert "spec.tasks[0].template.spec.containers[0].resources.requests[memory]" in fields(r)
    assert admin.get(f"/apis/sigma.io/v1/namespaces/{ns}/batchjobs/j").status_code == 404


def test_the_scheduler_survives_requests_whose_sum_overflows(admin: httpx.Client) -> None:
    """Each of 5Ei fits int64, their sum does not: the pod is admitted (as Kubernetes does)
    but stays pending with a reason, and pods after it are still scheduled."""
    ns = namespace(admin)
    big = pod("sum", containers=[{"name": n, "image": "busybox", "resources": {"requests": {"memory": "5Ei"}}}
                                 for n in ("a", "b")])
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=big).status_code == 201
    small = requesting("after", {"requests": {"cpu": "100m", "memory": "64Mi"}})
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=small).status_code == 201
    assert bound_to(admin, ns, "after") == NODE
    conditions = admin.get(f"/api/v1/namespaces/{ns}/pods/sum").json().get("status", {}).get("conditions") or []
    assert not admin.get(f"/api/v1/namespaces/{ns}/pods/sum").json()["spec"].get("nodeName")
    # The scheduler's arrays hold amounts up to 2**53: a request past that (or a sum past
    # int64) cannot fit any node, and the condition says so.
    assert any(c["type"] == "PodScheduled" and c["status"] == "False"
               and ("beyond" in c.get("message", "") or "out of range" in c.get("message", ""))
               for c in conditions), conditions


def test_a_valid_pod_is_still_scheduled_after_the_refusals(admin: httpx.Client) -> None:
    ns = namespace(admin)
    for kind, resource, value in BAD_POD_QUANTITIES:
        body = requesting("bad", {kind: {resource: value}})
        assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 422
    ok = requesting("fine", {"requests": {"cpu": "9223372036854775807m", "memory": "64Mi"}})
    # The largest cpu that is representable is admitted; it fits no node, so it stays pending.
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=ok).status_code == 201
    normal = requesting("normal", {"requests": {"cpu": "250m", "memory": "7Ei"}, "limits": {"memory": "7Ei"}})
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=normal).status_code == 201
    last = requesting("last", {"requests": {"cpu": "250m", "memory": "64Mi"}})
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=last).status_code == 201
    assert bound_to(admin, ns, "last") == NODE
