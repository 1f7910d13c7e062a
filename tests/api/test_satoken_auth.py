"""ServiceAccount tokens end to end: a master with authentication and its controllers, the
TokenRequest API through kubectl and HTTP, and the API authenticating the tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.api.auth_fixtures import AuthMaster, start_auth_master

pytestmark = pytest.mark.e2e
AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("satokens")), "--option", "serviceaccounts_period_s=0.2")


@pytest.fixture(scope="module")
def admin(cluster: AuthMaster) -> Iterator[httpx.Client]:
    with cluster.client("admin") as c:
        yield c


def eventually(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ns(admin: httpx.Client) -> str:
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": "apps"}}).status_code == 201
    assert eventually(lambda: admin.get("/api/v1/namespaces/apps/serviceaccounts/default").status_code == 200)
    return "apps"


def request_token(admin: httpx.Client, ns: str, sa: str, **spec: Any) -> httpx.Response:
    return admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})


def as_token(cluster: AuthMaster, token: str) -> httpx.Client:
    return httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_every_namespace_gets_a_default_account_and_the_ca(admin: httpx.Client, ns: str, cluster: AuthMaster) -> None:
    ca = admin.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")
    assert ca.status_code == 200 and ca.json()["data"]["ca.crt"] == (cluster.state / "auth" / "ca.crt").read_text()
    assert admin.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code == 200
    assert eventually(lambda: admin.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code == 200)


def test_a_token_authenticates_as_the_service_account(cluster: AuthMaster, admin: httpx.Client, ns: str) -> None:
    answer = request_token(admin, ns, "default")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["kind"] == "TokenRequest" and body["spec"] == {"audiences": [AUDIENCE], "expirationSeconds": 3600}
    with as_token(cluster, body["status"]["token"]) as sa:
        assert sa.get("/api").status_code == 200  # authenticated: discovery
        denied = sa.get(f"/api/v1/namespaces/{ns}/pods")
        assert denied.status_code == 403
        assert 'User "system:serviceaccount:apps:default" cannot list' in denied.json()["message"]
    with as_token(cluster, body["status"]["token"][:-4] + "AAAA") as forged:
        assert forged.get("/api").status_code == 401


def test_the_kubernetes_client_requests_tokens(cluster: AuthMaster, admin: httpx.Client, ns: str) -> None:
    admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "robot"}})
    config = client.Configuration()
    config.host = cluster.url
    config.api_key = {"authorization": "Bearer admin-token"}
    with client.ApiClient(config) as api:
        answer = client.CoreV1Api(api).create_namespaced_service_account_token(
            "robot", ns, {"spec": {"audiences": [AUDIENCE], "expirationSeconds": 1200}})
    assert answer.spec.expiration_seconds == 1200 and answer.status.expiration_timestamp is not None
    with as_token(cluster, answer.status.token) as sa:
        assert sa.get("/apis").status_code == 200
    admin.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/robot")
    with as_token(cluster, answer.status.token) as sa:
        assert sa.get("/apis").status_code == 401  # the account is gone: so is its token


def test_a_token_bound_to_a_pod_ends_with_the_pod(cluster: AuthMaster, admin: httpx.Client, ns: str) -> None:
    made = admin.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    assert made.status_code == 201, made.text
    pod = made.json()
    assert pod["spec"]["serviceAccountName"] == "default"
    volume = pod["spec"]["volumes"][0]
    assert volume["name"].startswith("kube-api-access-")
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == \
        "/var/run/secrets/kubernetes.io/serviceaccount"
    answer = request_token(admin, ns, "default", boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p",
                                                                 "uid": pod["metadata"]["uid"]})
    assert answer.status_code == 201, answer.text
    with as_token(cluster, answer.json()["status"]["token"]) as sa:
        assert sa.get("/api").status_code == 200
        admin.delete(f"/api/v1/namespaces/{ns}/pods/p", params={"gracePeriodSeconds": "0"})
        assert eventually(lambda: admin.get(f"/api/v1/namespaces/{ns}/pods/p").status_code == 404)
        assert sa.get("/api").status_code == 401


def test_token_requests_are_validated_as_kubernetes_does(admin: httpx.Client, ns: str) -> None:
    short = request_token(admin, ns, "default", expirationSeconds=60)
    assert short.status_code == 422
    assert short.json()["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                                                  "message": "Invalid value: 60: may not specify a duration less "
                                                             "than 10 minutes"}]
    assert request_token(admin, ns, "nobody").status_code == 404
    other = request_token(admin, ns, "default", boundObjectRef={"kind": "Pod", "name": "p", "uid": "wrong"})
    assert other.status_code in (404, 409)


def test_automount_false_and_unknown_accounts(admin: httpx.Client, ns: str) -> None:
    spec = {"containers": [{"name": "c", "image": "busybox"}], "automountServiceAccountToken": False}
    made = admin.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "quiet"}, "spec": spec})
    assert made.status_code == 201 and "volumes" not in made.json()["spec"]
    spec = {"containers": [{"name": "c", "image": "busybox"}], "serviceAccountName": "ghost"}
    refused = admin.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "g"}, "spec": spec})
    assert refused.status_code == 403 and 'serviceaccount "ghost" not found' in refused.json()["message"]
