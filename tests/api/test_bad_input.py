"""Bad input gets a Status with its reason and field path, and nothing is written."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


def pod(name: str = "p", **spec_extra: object) -> dict:
    spec = {"containers": [{"name": "c", "command": ["sleep", "1"]}], **spec_extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def assert_nothing_written(http: httpx.Client, ns: str) -> None:
    assert http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"] == []


def test_malformed_json_is_a_bad_request_naming_the_decode_error(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", content=b'{"kind": "Pod", "metadata": {',
                  headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    assert "could not be decoded" in body["message"]
    assert_nothing_written(http, ns)


def test_malformed_yaml_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", content=b"kind: Pod\nmetadata: [unclosed\n",
                  headers={"content-type": "application/yaml"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert_nothing_written(http, ns)


def test_unknown_resource_is_not_found(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/widgets")
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    r = http.get("/apis/nosuch.io/v9/things")
    assert r.status_code == 404


def test_a_kind_that_does_not_match_the_endpoint_is_refused(http: httpx.Client, ns: str) -> None:
    body = pod()
    body["kind"] = "Deployment"
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 400 and "do not match the endpoint" in r.json()["message"]
    assert_nothing_written(http, ns)


@pytest.mark.parametrize(("quantity", "fragment"), [("-1", "greater than or equal to 0"),
                                                    ("lots", "must match the regular expression"),
                                                    ("1.5.5", "must match the regular expression")])
def test_an_invalid_quantity_is_invalid_with_its_field_path(http: httpx.Client, ns: str, quantity: str,
                                                            fragment: str) -> None:
    body = pod()
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": quantity}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 422
    status = r.json()
    assert status["reason"] == "Invalid"
    causes = status["details"]["causes"]
    assert causes[0]["field"] == "spec.containers[0].resources.requests[cpu]"
    assert fragment in causes[0]["message"]
    assert_nothing_written(http, ns)


@pytest.mark.parametrize("name", ["Upper", "under_score", "-leading", "x" * 254, "trailing-"])
def test_a_name_that_breaks_dns1123_is_invalid(http: httpx.Client, ns: str, name: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(name))
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "metadata.name"
    assert_nothing_written(http, ns)


def test_unknown_fields_are_rejected_with_their_path(http: httpx.Client, ns: str) -> None:
    body = pod()
    body["spec"]["containers"][0]["colour"] = "blue"
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.containers[0].colour"
    assert_nothing_written(http, ns)


def test_unknown_fields_are_dropped_when_the_client_asks_to_ignore_them(http: httpx.Client, ns: str) -> None:
    body = pod()
    body["spec"]["containers"][0]["colour"] = "blue"
    r = http.post(f"/api/v1/namespaces/{ns}/pods?fieldValidation=Ignore", json=body)
    assert r.status_code == 201
    assert "colour" not in r.json()["spec"]["containers"][0]


def test_a_wrong_json_type_is_invalid(http: httpx.Client, ns: str) -> None:
    body = pod()
    body["spec"]["terminationGracePeriodSeconds"] = "thirty"
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.terminationGracePeriodSeconds"


def test_a_body_over_the_size_limit_is_refused(http: httpx.Client, ns: str) -> None:
    body = pod()
    body["metadata"]["annotations"] = {"big": "x" * (4 * 1024 * 1024)}
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
    assert_nothing_written(http, ns)


def test_an_update_with_a_stale_resource_version_is_a_conflict(http: httpx.Client, ns: str) -> None:
    created = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod()).json()
    stale = dict(created)
    first = http.put(f"/api/v1/namespaces/{ns}/pods/p", json={**created, "metadata": {
        **created["metadata"], "labels": {"v": "1"}}})
    assert first.status_code == 200
    r = http.put(f"/api/v1/namespaces/{ns}/pods/p", json={**stale, "metadata": {
        **stale["metadata"], "labels": {"v": "2"}}})
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert http.get(f"/api/v1/namespaces/{ns}/pods/p").json()["metadata"]["labels"] == {"v": "1"}


def test_creating_in_a_missing_namespace_is_not_found(http: httpx.Client) -> None:
    r = http.post("/api/v1/namespaces/nope-nope/pods", json=pod())
    assert r.status_code == 404 and 'namespaces "nope-nope" not found' in r.json()["message"]


def test_an_unknown_priority_class_is_forbidden(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(priorityClassName="gold"))
    assert r.status_code == 403 and "no PriorityClass with name gold" in r.json()["message"]
    assert_nothing_written(http, ns)


def test_pod_spec_changes_other_than_image_are_forbidden(http: httpx.Client, ns: str) -> None:
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod())
    r = http.patch(f"/api/v1/namespaces/{ns}/pods/p", json={"spec": {"restartPolicy": "Never"}},
                   headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec"


def test_an_invalid_label_selector_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": "a in (b"})
    assert r.status_code == 400


def test_an_unsupported_field_selector_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "spec.colour=blue"})
    assert r.status_code == 400 and "field label not supported" in r.json()["message"]


def test_a_deployment_whose_selector_misses_its_template_is_invalid(http: httpx.Client, ns: str) -> None:
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"selector": {"matchLabels": {"app": "a"}},
                  "template": {"metadata": {"labels": {"app": "b"}},
                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    r = http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=d)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


@pytest.mark.parametrize(("method", "sub"), [("DELETE", "status"), ("DELETE", "binding"), ("GET", "binding"),
                                             ("GET", "eviction"), ("PUT", "eviction")])
def test_a_verb_a_subresource_does_not_answer_is_refused_and_leaves_the_pod(http: httpx.Client, ns: str,
                                                                            method: str, sub: str) -> None:
    http.post(f"/api/v1/namespaces/{ns}/pods", json=pod())
    r = http.request(method, f"/api/v1/namespaces/{ns}/pods/p/{sub}", json={})
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
    assert http.get(f"/api/v1/namespaces/{ns}/pods/p").status_code == 200
