"""Schemathesis against a real master: every operation of the /openapi/v3 documents, with
generated requests, must answer without a 5xx, with a status code the document declares, and
with a body that matches the document's schema (the kind, its List, Scale or a metav1.Status).

The requests go to a namespace made for the test (which deletecollection on namespaces
spares); list requests never watch (a watch is a stream, not a response to validate). Each
operation on an object runs twice: with generated names (mostly 404) and on an object of its
kind that exists (re-created before each operation), so updates, patches, subresources and
deletes are exercised on real objects too; and in both of schemathesis's modes, valid data
(positive) and data that breaks the document (negative: wrong types, out-of-range
parameters), which must get a 4xx Status. Examples are derandomised: a run is reproducible.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 3  # per operation, mode (valid/invalid data) and name (generated/existing)
SEED = "seed"
KEEP_LABEL = "sigma.io/schemathesis-keep"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@schemathesis.serializer("application/apply-patch+yaml")
def _apply_yaml(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    return yaml.safe_dump(value).encode()


def _task() -> dict[str, Any]:
    return {"name": "main", "instances": 1, "template": {"spec": {"containers": [
        {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}]}}}


def _seeds(namespace: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """plural: (collection URL, an object of the kind that the server accepts)."""
    container = {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}
    pod_spec = {"containers": [container]}
    ns = f"/namespaces/{namespace}"
    objects: dict[str, tuple[str, str, dict[str, Any]]] = {
        "namespaces": ("/api/v1", "Namespace", {}),
        "nodes": ("/api/v1", "Node", {"status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
        "pods": (f"/api/v1{ns}", "Pod", {"spec": pod_spec}),
        "events": (f"/api/v1{ns}", "Event", {"involvedObject": {"kind": "Pod", "name": SEED}, "reason": "Test"}),
        "resourcequotas": (f"/api/v1{ns}", "ResourceQuota", {"spec": {"hard": {"pods": "100"}}}),
        "deployments": (f"/apis/apps/v1{ns}", "Deployment", {"spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": SEED}},
            "template": {"metadata": {"labels": {"app": SEED}}, "spec": pod_spec}}}),
        "priorityclasses": ("/apis/scheduling.k8s.io/v1", "PriorityClass", {"value": 100}),
        "leases": (f"/apis/coordination.k8s.io/v1{ns}", "Lease", {"spec": {"holderIdentity": SEED}}),
        "nodemetrics": ("/apis/sigma.io/v1", "NodeMetric", {}),
        "nodeslos": ("/apis/sigma.io/v1", "NodeSLO", {}),
        "batchjobs": (f"/apis/sigma.io/v1{ns}", "BatchJob", {"spec": {"tasks": [_task()]}}),
        "predictivescalers": (f"/apis/sigma.io/v1{ns}", "PredictiveScaler", {"spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": SEED},
            "metric": {"type": "cpu"}, "targetPerReplica": 1, "minReplicas": 1, "maxReplicas": 3}}),
    }
    out = {}
    for plural, (prefix, kind, rest) in objects.items():
        api_version = prefix.split("/namespaces/")[0].removeprefix("/api/").removeprefix("/apis/")
        out[plural] = (f"{prefix}/{plural}", {"apiVersion": api_version, "kind": kind, "metadata": {"name": SEED},
                                             **rest})
    return out


def _ensure_seeds(http: httpx.Client, seeds: dict[str, tuple[str, dict[str, Any]]]) -> None:
    # Generated quotas (or a generated status.used) could forbid the seed pod: start over.
    quotas = seeds["resourcequotas"][0]
    assert http.delete(quotas).status_code == 200
    for url, body in sorted(seeds.values(), key=lambda seed: seed[0] == quotas):
        r = http.post(url, json=body)
        assert r.status_code in (201, 409), f"{url}: {r.status_code} {r.text}"


def _run_operation(operation: Any, mode: GenerationMode, base_url: str, namespace: str, failures: list[str],
                   fixed: dict[str, str] | None = None) -> int:
    path_params = {"namespace": namespace} if "{namespace}" in operation.path else {}
    path_params.update(fixed or {})
    names = {p.name for p in operation.query}
    query = {"watch": "false"} if "watch" in names else {}
    if "resourceVersion" in names:
        # A generated resourceVersion is almost always ahead of the store: each such list
        # would wait 3 s before its 504 (tested in test_api_semantics).
        query["resourceVersion"] = ""
    if operation.method == "delete" and operation.path == "/api/v1/namespaces":
        query["labelSelector"] = f"!{KEEP_LABEL}"  # spare the test's namespace
    calls = [0]

    @given(case=operation.as_strategy(mode, path_parameters=path_params or None, query=query or None))
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        calls[0] += 1
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)
        except FailureGroup as err:
            for failure in err.exceptions:
                text = (f"{operation.method.upper()} {operation.path} ({mode.value}): {failure.title}: "
                        f"{failure.message}\n{case.as_curl_command(base_url=base_url)[:1000]}")
                if text not in failures:
                    failures.append(text)

    run()
    return calls[0]


# Several hundred generated requests: a few minutes on a busy 2-core machine, so this test has
# a longer limit than the suite's default.
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(master: MasterProcess) -> None:
    namespace = f"st-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=master.url, timeout=10) as http:
        r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": namespace, "labels": {KEEP_LABEL: "true"}}})
        assert r.status_code == 201, r.text
        index = http.get("/openapi/v3").json()["paths"]
        seeds = _seeds(namespace)
        failures: list[str] = []
        operations = calls = 0
        for entry in index.values():
            schema = schemathesis.openapi.from_url(f"{master.url}{entry['serverRelativeURL']}")
            for result in schema.get_all_operations():
                operation = result.ok()
                operations += 1
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    for fixed in ({}, {"name": SEED}) if "{name}" in operation.path else ({},):
                        _ensure_seeds(http, seeds)
                        calls += _run_operation(operation, mode, master.url, namespace, failures, fixed)
        assert operations >= 100, operations
        report = "\n\n".join(f[:1500] for f in failures[:30])
        assert not failures, f"{len(failures)} distinct failures in {calls} requests:\n\n{report}"


# -- what schemathesis found: each a 500 (or a schema violation) before the fix -------------------
def _seed_pod(http: httpx.Client, ns: str, name: str = "victim") -> str:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert r.status_code == 201, r.text
    return f"/api/v1/namespaces/{ns}/pods/{name}"


def _assert_status(r: httpx.Response, code: int, reason: str) -> None:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == reason, body


def test_metadata_that_is_not_an_object_is_invalid_not_a_server_error(http: httpx.Client, ns: str) -> None:
    pod = _seed_pod(http, ns)
    for method, url in (("PUT", pod), ("PUT", f"{pod}/status"), ("POST", f"/api/v1/namespaces/{ns}/pods")):
        r = http.request(method, url, json={"apiVersion": "v1", "kind": "Pod", "metadata": -2675694126})
        _assert_status(r, 422, "Invalid")
        assert r.json()["details"]["causes"][0]["field"] == "metadata"


def test_a_resource_version_that_is_not_a_string_is_invalid(http: httpx.Client, ns: str) -> None:
    pod = _seed_pod(http, ns)
    r = http.put(pod, json={"metadata": {"name": "victim", "resourceVersion": [1]}})
    _assert_status(r, 422, "Invalid")


def test_a_mistyped_name_is_reported_by_field_and_the_status_keeps_its_schema(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": 5}})
    _assert_status(r, 422, "Invalid")
    assert isinstance(r.json()["details"].get("name", ""), str)


def test_malformed_delete_options_are_a_bad_request(http: httpx.Client, ns: str) -> None:
    pod = _seed_pod(http, ns)
    for options in ({"gracePeriodSeconds": {"a": 1}}, {"gracePeriodSeconds": "30"}, {"preconditions": "x"},
                    {"preconditions": {"uid": 5}}, [1, 2]):
        _assert_status(http.request("DELETE", pod, json=options), 400, "BadRequest")
    for body in ({"deleteOptions": {"gracePeriodSeconds": {"x": 1.5}}}, {"deleteOptions": [1]}, "eviction"):
        _assert_status(http.post(f"{pod}/eviction", json=body), 400, "BadRequest")
    assert http.get(pod).status_code == 200  # nothing was deleted


def test_a_malformed_binding_is_rejected(http: httpx.Client, ns: str) -> None:
    pod = _seed_pod(http, ns)
    _assert_status(http.post(f"{pod}/binding", json=["n1"]), 400, "BadRequest")
    _assert_status(http.post(f"{pod}/binding", json={"target": "n1"}), 400, "BadRequest")
    _assert_status(http.post(f"{pod}/binding", json={"target": {"name": 7}}), 422, "Invalid")


def test_a_binding_stores_no_null_probe_time(http: httpx.Client, ns: str) -> None:
    pod = _seed_pod(http, ns)
    assert http.post(f"{pod}/binding", json={"target": {"name": "n1"}}).status_code == 201
    condition = http.get(pod).json()["status"]["conditions"][0]
    assert condition["type"] == "PodScheduled" and "lastProbeTime" not in condition


def test_a_scale_body_that_is_not_a_scale_object_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
    container = {"name": "c", "image": "busybox"}
    r = http.post(deployments, json={"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}})
    assert r.status_code == 201, r.text
    scale = f"{deployments}/web/scale"
    r = http.patch(scale, content=b"1.9324033817428765e+74\n", headers={"content-type": "application/apply-patch+yaml"})
    _assert_status(r, 400, "BadRequest")
    _assert_status(http.put(scale, json=[3]), 400, "BadRequest")
    _assert_status(http.put(scale, json={"spec": "3"}), 400, "BadRequest")
    r = http.patch(scale, json={"spec": {"replicas": 2}, "metadata": {"resourceVersion": 9}},
                   headers={"content-type": "application/merge-patch+json"})
    _assert_status(r, 400, "BadRequest")
    assert http.get(scale).json()["spec"]["replicas"] == 1


def test_a_negative_limit_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    _seed_pod(http, ns)
    _assert_status(http.get(f"/api/v1/namespaces/{ns}/pods", params={"limit": -1}), 400, "BadRequest")


@pytest.mark.parametrize("document", [
    b"spec:\n  replicas: 102618688718024971649024\n",  # beyond 64 bits: could not be stored
    b"metadata:\n  name: p\n  labels: {1: x}\n",  # a key that is not a string
    b"metadata:\n  name: p\ndata: !!binary aGVsbG8=\n",
])
def test_yaml_that_json_cannot_hold_is_a_bad_request(http: httpx.Client, ns: str, document: bytes) -> None:
    pods = f"/api/v1/namespaces/{ns}/pods"
    _assert_status(http.post(pods, content=document, headers={"content-type": "application/yaml"}), 400, "BadRequest")


def test_yaml_timestamps_are_read_as_strings(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", headers={"content-type": "application/yaml"},
                  content=b"metadata: {name: l}\nspec: {holderIdentity: a, renewTime: 2025-01-02T03:04:05Z}\n")
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["renewTime"].startswith("2025-01-02T03:04:05")
