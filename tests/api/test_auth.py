"""Authentication, authorisation, NodeRestriction, bootstrap join, rate limits and the audit
log, against a real `sigma master` without anonymous access."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.auth_fixtures import AuthMaster, namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("auth")), "--no-controllers")


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin") as c:
        namespace(c, name="team-a")
        namespace(c, name="team-b")
        yield c


def test_requests_without_a_valid_token_are_unauthorized(master: AuthMaster) -> None:
    with master.client(None) as anonymous:
        r = anonymous.get("/api/v1/namespaces/default/pods")
        assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
        assert anonymous.get("/healthz").status_code == 200  # health and version stay public
        assert anonymous.get("/version").status_code == 200
    with master.client("nobody") as wrong:
        assert wrong.get("/api/v1/namespaces/default/pods").status_code == 401
    with httpx.Client(base_url=master.url, headers={"Authorization": "Basic YTpi"}) as basic:
        assert basic.get("/api/v1/pods").status_code == 401


def test_an_admin_token_may_do_anything(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/pods").status_code == 200
    assert admin.get("/metrics").status_code == 200
    r = admin.post("/api/v1/namespaces/team-b/pods", json=pod("admin-made"))
    assert r.status_code == 201, r.text


def test_a_namespace_viewer_reads_but_cannot_create(master: AuthMaster, admin: httpx.Client) -> None:
    with master.client("viewer") as bob:
        assert bob.get("/api/v1/namespaces/team-a/pods").status_code == 200
        assert bob.get("/apis").status_code == 200  # discovery, for kubectl
        r = bob.post("/api/v1/namespaces/team-a/pods", json=pod("nope"))
        assert r.status_code == 403
        assert r.json()["message"] == ('pods is forbidden: User "bob" cannot create resource "pods" in API group "" '
                                       'in the namespace "team-a"')
        r = bob.get("/api/v1/namespaces/team-b/pods")
        assert r.status_code == 403 and 'in the namespace "team-b"' in r.json()["message"]
        r = bob.get("/api/v1/pods")
        assert r.status_code == 403 and "at the cluster scope" in r.json()["message"]
        assert bob.get("/metrics").status_code == 403


def test_an_editor_writes_its_namespace_and_no_other(master: AuthMaster, admin: httpx.Client) -> None:
    with master.client("editor") as carol:
        assert carol.post("/api/v1/namespaces/team-a/pods", json=pod("carols")).status_code == 201
        assert carol.delete("/api/v1/namespaces/team-a/pods/carols").status_code == 200
        r = carol.post("/api/v1/namespaces/team-b/pods", json=pod("elsewhere"))
        assert r.status_code == 403 and 'User "carol" cannot create' in r.json()["message"]
        r = carol.delete("/api/v1/namespaces/team-b/pods/admin-made")
        assert r.status_code == 403
        assert carol.post("/api/v1/nodes", json={"metadata": {"name": "x"}}).status_code == 403
        assert carol.get("/api/v1/namespaces/team-a").status_code == 200


def _join(master: AuthMaster, node: str) -> httpx.Client:
    bootstrap = master.token_create()
    with master.client(None) as anonymous:
        assert anonymous.post("/sigma/v1/join", json={"nodeName": node}).status_code == 401
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {bootstrap}"}) as joiner:
        assert joiner.get("/api/v1/pods").status_code == 403  # a bootstrap token can only join
        r = joiner.post("/sigma/v1/join", json={"nodeName": node})
        assert r.status_code == 200, r.text
        answer = r.json()
    assert answer["user"] == f"system:node:{node}" and answer["groups"] == ["system:nodes"]
    assert "BEGIN CERTIFICATE" in answer["caCertificate"]
    return httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {answer['token']}"}, timeout=10)


def test_bootstrap_join_gives_a_node_credential_bound_by_node_restriction(master: AuthMaster,
                                                                         admin: httpx.Client) -> None:
    for name, node in (("on-n1", "n1"), ("on-n2", "n2")):
        assert admin.post("/api/v1/namespaces/team-a/pods", json=pod(name, node)).status_code == 201
    with _join(master, "n1") as n1:
        # Its own Node, Lease and NodeMetric; not another node's.
        assert n1.post("/api/v1/nodes", json={"metadata": {"name": "n1"}}).status_code == 201
        r = n1.post("/api/v1/nodes", json={"metadata": {"name": "n2"}})
        assert r.status_code == 403 and 'node "n1" can only create its own Node' in r.json()["message"]
        status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        headers = {"Content-Type": "application/merge-patch+json"}
        assert n1.patch("/api/v1/nodes/n1/status", json=status, headers=headers).status_code == 200
        assert admin.post("/api/v1/nodes", json={"metadata": {"name": "n2"}}).status_code == 201
        r = n1.patch("/api/v1/nodes/n2/status", json=status, headers=headers)
        assert r.status_code == 403
        assert 'User "system:node:n1" cannot patch resource "nodes/status"' in r.json()["message"]
        lease = {"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}
        assert n1.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease).status_code == 201
        assert n1.post("/apis/coordination.k8s.io/v1/namespaces/default/leases", json=lease).status_code == 403

        # Pods: only those bound to n1, listed with the node's field selector.
        assert n1.get("/api/v1/pods").status_code == 403
        assert n1.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=n2"}).status_code == 403
        listed = n1.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=n1"})
        assert listed.status_code == 200
        assert [p["metadata"]["name"] for p in listed.json()["items"]] == ["on-n1"]
        assert n1.get("/api/v1/namespaces/team-a/pods/on-n1").status_code == 200
        r = n1.get("/api/v1/namespaces/team-a/pods/on-n2")
        assert r.status_code == 403 and "no relationship found" in r.json()["message"]
        phase = {"status": {"phase": "Running"}}
        assert n1.patch("/api/v1/namespaces/team-a/pods/on-n1/status", json=phase, headers=headers).status_code == 200
        assert n1.patch("/api/v1/namespaces/team-a/pods/on-n2/status", json=phase, headers=headers).status_code == 403
        assert n1.patch("/api/v1/namespaces/team-a/pods/on-n1", json={"metadata": {"labels": {"a": "b"}}},
                        headers=headers).status_code == 403  # the spec is not the agent's
        assert n1.delete("/api/v1/namespaces/team-a/pods/on-n2").status_code == 403
        assert n1.post("/api/v1/namespaces/team-a/pods", json=pod("mine")).status_code == 403


def test_a_client_over_its_rate_gets_429_with_retry_after(master: AuthMaster, admin: httpx.Client) -> None:
    with master.client("noisy") as dave:
        codes = [dave.get("/api/v1/namespaces/noisy/pods") for _ in range(40)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited, [r.status_code for r in codes]
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert limited[0].json()["reason"] == "TooManyRequests"
    # Other clients are not throttled by dave, and admins never are.
    assert all(admin.get("/api/v1/namespaces/default/pods").status_code == 200 for _ in range(40))


def test_the_audit_log_records_every_mutating_request(master: AuthMaster, admin: httpx.Client) -> None:
    assert admin.post("/api/v1/namespaces/team-b/pods", json=pod("audited")).status_code == 201
    with master.client("viewer") as bob:
        assert bob.delete("/api/v1/namespaces/team-a/pods/x").status_code == 403
    admin.get("/api/v1/namespaces/team-b/pods/audited")
    deadline = time.monotonic() + 10  # the writer appends every few tens of milliseconds
    while True:
        lines = [json.loads(line) for line in (master.state / "audit.log").read_text().splitlines()]
        made = [e for e in lines if e["name"] == "" and e["verb"] == "create" and e["user"] == "alice"
                and e["namespace"] == "team-b" and e["code"] == 201]
        refused = [e for e in lines if e["user"] == "bob" and e["verb"] == "delete"]
        if (made and refused) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert made and made[-1]["resource"] == "pods" and "system:masters" in made[-1]["groups"]
    assert made[-1]["time"].endswith("Z") and made[-1]["sourceIP"] == "127.0.0.1"
    assert refused and refused[-1]["code"] == 403 and refused[-1]["name"] == "x"
    assert not [e for e in lines if e["verb"] == "get"]  # reads are not audited
