"""HttpClient against a real `sigma master`, plus URL and stream handling on a mock transport."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import httpx
import pytest

from sigma.api.errors import ApiError
from sigma.client import HttpClient, WatchEvent
from sigma.client.http import ServerUnavailable
from sigma.client.kubeconfig import load_kubeconfig


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": name}}, "spec": pod(name)["spec"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template}}


# -- against the real server ---------------------------------------------------------------------


@pytest.mark.e2e
def test_a_pod_goes_through_create_get_list_patch_update_and_delete(
        client: HttpClient, namespace: str) -> None:
    created = client.create("pods", pod("web", app="web"), namespace)
    assert created["metadata"]["namespace"] == namespace
    assert created["metadata"]["resourceVersion"]

    assert client.get("pods", "web", namespace)["metadata"]["uid"] == created["metadata"]["uid"]
    assert [p["metadata"]["name"] for p in client.list("pods", namespace)["items"]] == ["web"]

    patched = client.patch("pods", "web", {"metadata": {"labels": {"tier": "front"}}}, namespace)
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "front"}

    patched["metadata"]["annotations"] = {"note": "updated"}
    updated = client.update("pods", patched, namespace)
    assert updated["metadata"]["annotations"] == {"note": "updated"}

    client.delete("pods", "web", namespace)
    with pytest.raises(ApiError) as err:
        client.get("pods", "web", namespace)
    assert err.value.code == 404


@pytest.mark.e2e
def test_json_patch_and_strategic_merge_patch_are_sent_with_their_content_types(
        client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("web"), namespace)
    patched = client.patch("pods", "web", [{"op": "add", "path": "/metadata/labels/x", "value": "1"}],
                           namespace, patch_type="json")
    assert patched["metadata"]["labels"]["x"] == "1"
    patched = client.patch("pods", "web", {"metadata": {"labels": {"y": "2"}}}, namespace,
                           patch_type="strategic")
    assert patched["metadata"]["labels"] == {"x": "1", "y": "2"}


@pytest.mark.e2e
def test_selectors_filter_lists(client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("a", app="web"), namespace)
    client.create("pods", pod("b", app="db"), namespace)
    names = [p["metadata"]["name"] for p in client.list("pods", namespace, label_selector="app=web")["items"]]
    assert names == ["a"]
    by_field = client.list("pods", namespace, field_selector="metadata.name=b")["items"]
    assert [p["metadata"]["name"] for p in by_field] == ["b"]


@pytest.mark.e2e
def test_a_namespaced_list_without_a_namespace_spans_all_namespaces(
        client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("everywhere"), namespace)
    found = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in client.list("pods")["items"]]
    assert (namespace, "everywhere") in found


@pytest.mark.e2e
def test_a_watch_sees_added_modified_and_deleted(client: HttpClient, namespace: str) -> None:
    version = client.list("pods", namespace)["metadata"]["resourceVersion"]
    events: list[WatchEvent] = []
    stream = client.watch("pods", namespace, resource_version=version, timeout_seconds=10)

    def consume() -> None:
        for event in stream:
            if event.type != "BOOKMARK":
                events.append(event)
            if event.type == "DELETED":
                return

    reader = threading.Thread(target=consume)
    reader.start()
    client.create("pods", pod("w"), namespace)
    client.patch("pods", "w", {"metadata": {"labels": {"seen": "yes"}}}, namespace)
    client.delete("pods", "w", namespace)
    reader.join(timeout=15)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["metadata"]["labels"] == {"seen": "yes"}


@pytest.mark.e2e
def test_a_missing_object_raises_not_found_with_the_servers_message(
        client: HttpClient, namespace: str) -> None:
    with pytest.raises(ApiError) as err:
        client.get("pods", "nope", namespace)
    assert (err.value.code, err.value.reason) == (404, "NotFound")
    assert err.value.message == 'pods "nope" not found'
    assert err.value.name == "nope"


@pytest.mark.e2e
def test_creating_an_existing_object_raises_already_exists(client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("twice"), namespace)
    with pytest.raises(ApiError) as err:
        client.create("pods", pod("twice"), namespace)
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")


@pytest.mark.e2e
def test_an_update_with_a_stale_resource_version_raises_conflict(client: HttpClient, namespace: str) -> None:
    first = client.create("pods", pod("racy"), namespace)
    client.patch("pods", "racy", {"metadata": {"labels": {"v": "2"}}}, namespace)
    first["metadata"]["labels"] = {"v": "stale"}
    with pytest.raises(ApiError) as err:
        client.update("pods", first, namespace)
    assert (err.value.code, err.value.reason) == (409, "Conflict")


@pytest.mark.e2e
def test_an_invalid_object_raises_invalid_with_a_cause_per_field(client: HttpClient, namespace: str) -> None:
    bad = pod("bad")
    bad["spec"]["containers"] = []
    with pytest.raises(ApiError) as err:
        client.create("pods", bad, namespace)
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert "spec.containers" in [c.field for c in err.value.causes]
    assert err.value.kind == "Pod"


@pytest.mark.e2e
def test_a_deployment_lives_under_the_apps_group_and_scales_through_its_subresource(
        client: HttpClient, namespace: str) -> None:
    client.create("deployments", deployment("api"), namespace)
    scale = client.patch("deployments", "api", {"spec": {"replicas": 3}}, namespace, subresource="scale")
    assert scale["spec"]["replicas"] == 3
    assert client.get("deployments.apps", "api", namespace)["spec"]["replicas"] == 3


@pytest.mark.e2e
def test_bind_assigns_the_pod_to_the_node(client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("bound"), namespace)
    client.bind("bound", namespace, "node-1")
    assert client.get("pods", "bound", namespace)["spec"]["nodeName"] == "node-1"


@pytest.mark.e2e
def test_evicting_an_unbound_pod_deletes_it(client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("evicted"), namespace)
    client.evict("evicted", namespace)
    with pytest.raises(ApiError):
        client.get("pods", "evicted", namespace)


@pytest.mark.e2e
def test_the_table_format_carries_the_servers_columns_and_row_metadata(
        client: HttpClient, namespace: str) -> None:
    client.create("pods", pod("tabled"), namespace)
    table = client.get_table("pods", namespace)
    assert table["kind"] == "Table"
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert table["rows"][0]["cells"][0] == "tabled"
    assert table["rows"][0]["object"]["metadata"]["namespace"] == namespace


@pytest.mark.e2e
def test_the_server_reports_its_version(client: HttpClient) -> None:
    assert "gitVersion" in client.version()


def test_an_unreachable_server_is_named_in_the_error() -> None:
    with HttpClient("http://127.0.0.1:9", timeout=2) as dead, pytest.raises(ServerUnavailable) as err:
        dead.list("pods")
    assert "http://127.0.0.1:9" in str(err.value)


# -- on a mock transport -------------------------------------------------------------------------


def mock_client(handler: Any, **kwargs: Any) -> tuple[HttpClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[no-any-return]

    return HttpClient("http://sigma.test", transport=httpx.MockTransport(record), **kwargs), seen


def test_urls_follow_the_kubernetes_layout_for_core_group_and_cluster_scoped_kinds() -> None:
    client, seen = mock_client(lambda r: httpx.Response(200, json={}))
    client.get("pods", "web", "ns1")
    client.list("deploy", "ns1")
    client.get("nodes", "n1")
    client.list("pods")
    client.patch("deployments", "api", {}, "ns1", subresource="scale")
    client.list("batchjobs", "ns1", label_selector="a=b")
    assert [r.url.path for r in seen] == [
        "/api/v1/namespaces/ns1/pods/web", "/apis/apps/v1/namespaces/ns1/deployments", "/api/v1/nodes/n1",
        "/api/v1/pods", "/apis/apps/v1/namespaces/ns1/deployments/api/scale",
        "/apis/sigma.io/v1/namespaces/ns1/batchjobs"]
    assert seen[-1].url.params["labelSelector"] == "a=b"
    assert seen[4].headers["content-type"] == "application/merge-patch+json"


def test_a_status_body_becomes_an_api_error_with_its_causes() -> None:
    cause = {"field": "spec", "message": "Required value", "reason": "FieldValueRequired"}
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
              "message": 'Pod "x" is invalid: spec: Required value',
              "details": {"kind": "Pod", "name": "x", "causes": [cause]}}
    client, _ = mock_client(lambda r: httpx.Response(422, json=status))
    with pytest.raises(ApiError) as err:
        client.create("pods", pod("x"), "default")
    assert err.value.status() == status | {"metadata": {}}


def test_a_non_status_error_body_still_gives_a_reason_and_the_http_code() -> None:
    client, _ = mock_client(lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(ApiError) as err:
        client.get("pods", "x", "default")
    assert err.value.code == 502
    assert "bad gateway" in err.value.message


def test_an_error_event_in_a_watch_stream_raises_its_status_code() -> None:
    lines = [{"type": "ADDED", "object": pod("a")},
             {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "7"}}},
             {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                          "message": "too old resource version: 1 (5)"}}]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    client, seen = mock_client(lambda r: httpx.Response(200, text=body))
    events = client.watch("pods", "default", resource_version="1")
    assert next(events).type == "ADDED"
    assert next(events) == WatchEvent("BOOKMARK", lines[1]["object"])
    with pytest.raises(ApiError) as err:
        next(events)
    assert (err.value.code, err.value.reason) == (410, "Expired")
    assert seen[0].url.params["watch"] == "true"
    assert seen[0].url.params["allowWatchBookmarks"] == "true"


def test_logs_pass_container_tail_and_previous_as_query_parameters() -> None:
    client, seen = mock_client(lambda r: httpx.Response(200, text="hello\n"))
    assert client.logs("web", "default", "app", tail_lines=5, previous=True) == "hello\n"
    assert dict(seen[0].url.params) == {"container": "app", "tailLines": "5", "previous": "true"}
    assert seen[0].url.path == "/api/v1/namespaces/default/pods/web/log"
    assert b"".join(client.logs("web", "default", follow=True)) == b"hello\n"
    assert seen[1].url.params["follow"] == "true"


def test_from_kubeconfig_uses_the_current_context_its_token_and_namespace(tmp_path: Any) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "c", "cluster": {"server": "http://sigma.test"}}],
        "users": [{"name": "u", "user": {"token": "s3cret"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
                     {"name": "other", "context": {"cluster": "c"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    loaded = load_kubeconfig(str(path))
    assert (loaded.server, loaded.token, loaded.namespace) == ("http://sigma.test", "s3cret", "team")
    assert load_kubeconfig(str(path), "other").token is None

    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={}))
    HttpClient.from_kubeconfig(str(path), transport=transport).list("pods", "team")
    assert seen[0].headers["authorization"] == "Bearer s3cret"


def test_kubeconfig_certificate_data_is_decoded(tmp_path: Any) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    ca_data = base64.b64encode(pem.encode()).decode()
    config = {"current-context": "x",
              "clusters": [{"name": "c", "cluster": {"server": "https://h:6443",
                                                     "certificate-authority-data": ca_data}}],
              "users": [{"name": "u", "user": {"client-key-data": base64.b64encode(b"KEY").decode(),
                                               "client-certificate": "certs/client.crt"}}],
              "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    loaded = load_kubeconfig(str(path))
    assert loaded.ca_data == pem
    assert loaded.client_cert == str(tmp_path / "certs" / "client.crt")
    assert loaded.client_key is not None
    with open(loaded.client_key, "rb") as fh:
        assert fh.read() == b"KEY"
