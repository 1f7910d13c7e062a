"""The /openapi/v3 documents describe the API truthfully: every path the server routes, its
parameters and responses, and schemas that real responses validate against."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis

from sigma.api.openapi import ERROR_CODES, PATCH_MEDIA_TYPES, openapi_v3_group, openapi_v3_index
from sigma.api.resources import RESOURCES, ResourceType


def _doc(rt: ResourceType) -> dict[str, Any]:
    doc = openapi_v3_group(f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}")
    assert doc is not None
    return doc


def _scope(rt: ResourceType) -> str:
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    return f"{base}/namespaces/{{namespace}}" if rt.namespaced else base


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda rt: rt.plural)
def test_every_resource_has_collection_item_and_subresource_paths(rt: ResourceType) -> None:
    paths = _doc(rt)["paths"]
    collection, item = f"{_scope(rt)}/{rt.plural}", f"{_scope(rt)}/{rt.plural}/{{name}}"
    assert set(paths[collection]) >= {"get", "post", "delete"}
    assert set(paths[item]) >= {"get", "put", "patch", "delete"}
    listing = {p["name"] for p in paths[collection]["get"]["parameters"]}
    assert listing >= {"labelSelector", "fieldSelector", "limit", "continue", "watch", "resourceVersion",
                       "timeoutSeconds"}
    assert {p["name"] for p in paths[collection]["post"]["parameters"]} >= {"dryRun", "fieldValidation"}
    assert [p["name"] for p in paths[item]["parameters"]] == (["name", "namespace"] if rt.namespaced else ["name"])
    for sub in rt.subresources:
        assert f"{item}/{sub}" in paths
    if rt.namespaced:
        assert "get" in paths[f"/{_scope(rt).split('/namespaces/')[0].lstrip('/')}/{rt.plural}"]


def test_patch_declares_the_patch_types_and_the_field_validation_kubectl_looks_for() -> None:
    pods = next(rt for rt in RESOURCES if rt.plural == "pods")
    patch = _doc(pods)["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert set(patch["requestBody"]["content"]) == set(PATCH_MEDIA_TYPES)
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}


def test_errors_are_declared_as_status_and_the_log_as_text() -> None:
    doc = _doc(next(rt for rt in RESOURCES if rt.plural == "pods"))
    get = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]["responses"]
    for code in ERROR_CODES:
        ref = get[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    log = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["responses"]["200"]
    assert log["content"] == {"text/plain": {"schema": {"type": "string"}}}


def test_every_document_loads_in_schemathesis_and_every_operation_resolves() -> None:
    for entry in openapi_v3_index()["paths"]:
        doc = openapi_v3_group(entry)
        assert doc is not None
        operations = list(schemathesis.openapi.from_dict(doc).get_all_operations())
        assert operations and all(result.ok() for result in operations)


def _validate(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    schema = schemathesis.openapi.from_dict(doc)
    schema[path][method].validate_response(response)


@pytest.mark.e2e
def test_real_responses_validate(http: httpx.Client, ns: str) -> None:
    pods = next(rt for rt in RESOURCES if rt.plural == "pods")
    nodes = next(rt for rt in RESOURCES if rt.plural == "nodes")
    # Quantities are strings or JSON numbers, as the server accepts them.
    r = http.post("/api/v1/nodes", json={"metadata": {"name": f"{ns}-n"},
                                          "status": {"capacity": {"cpu": 0.5, "memory": "1Gi", "pods": 10}}})
    assert r.status_code == 201, r.text
    _validate(_doc(nodes), "/api/v1/nodes", "POST", r)
    pod = {"metadata": {"name": "p", "labels": {"app": "x"}},
           "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 201, r.text
    doc = _doc(pods)
    _validate(doc, "/api/v1/namespaces/{namespace}/pods", "POST", r)
    _validate(doc, "/api/v1/namespaces/{namespace}/pods", "GET", http.get(f"/api/v1/namespaces/{ns}/pods"))
    r = http.post(f"/api/v1/namespaces/{ns}/pods/p/binding", json={"target": {"name": f"{ns}-n"}})
    _validate(doc, "/api/v1/namespaces/{namespace}/pods/{name}/binding", "POST", r)
    _validate(doc, "/api/v1/namespaces/{namespace}/pods/{name}", "GET", http.get(f"/api/v1/namespaces/{ns}/pods/p"))
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert r.status_code == 409
    _validate(doc, "/api/v1/namespaces/{namespace}/pods", "POST", r)
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "q"}, "spec": {"bogus": 1}})
    assert r.status_code == 422
    _validate(doc, "/api/v1/namespaces/{namespace}/pods", "POST", r)
