"""What the edit and view roles may do, through a real master with the tokens of users bound to
them: Kubernetes' edit role reads a namespace's ResourceQuota but cannot change it (the quota is
the administrator's ceiling on the editor), and writes no status or binding subresource."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.auth_fixtures import AuthMaster, namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e

QUOTA = "/api/v1/namespaces/team-a/resourcequotas"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("roles")), "--no-controllers")


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin") as c:
        namespace(c, name="team-a")
        r = c.post(QUOTA, json={"metadata": {"name": "compute"}, "spec": {"hard": {"pods": "5", "cpu": "2"}}})
        assert r.status_code == 201, r.text
        yield c


def quota_body(admin: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = admin.get(f"{QUOTA}/compute").json()
    return body


def forbidden(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["reason"] == "Forbidden"


def test_an_editor_reads_the_quota_but_cannot_change_or_delete_it(master: AuthMaster, admin: httpx.Client) -> None:
    before = quota_body(admin)
    with master.client("editor") as carol:
        assert carol.get(f"{QUOTA}/compute").status_code == 200
        assert carol.get(QUOTA).status_code == 200
        assert carol.get(QUOTA, params={"watch": "true", "timeoutSeconds": "1"}).status_code == 200
        r = carol.patch(f"{QUOTA}/compute", content=b'{"spec": {"hard": {"pods": "1000"}}}', headers=MERGE)
        assert forbidden(r), r.text
        assert r.json()["message"] == ('resourcequotas "compute" is forbidden: User "carol" cannot patch resource '
                                       '"resourcequotas" in API group "" in the namespace "team-a"')
        assert forbidden(carol.put(f"{QUOTA}/compute", json={**before, "spec": {"hard": {"pods": "1000"}}}))
        assert forbidden(carol.delete(f"{QUOTA}/compute"))
        assert forbidden(carol.delete(QUOTA))
        assert forbidden(carol.post(QUOTA, json={"metadata": {"name": "mine"}, "spec": {"hard": {"pods": "1"}}}))
        # status.used is what admission charges against: resetting it would lift the quota.
        r = carol.patch(f"{QUOTA}/compute/status", content=b'{"status": {"used": {"pods": "0"}}}', headers=MERGE)
        assert forbidden(r) and 'resource "resourcequotas/status"' in r.json()["message"]
        assert carol.get(f"{QUOTA}/compute/status").status_code == 200
    after = quota_body(admin)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_viewer_reads_the_quota_and_nothing_more(master: AuthMaster, admin: httpx.Client) -> None:
    quota_body(admin)
    with master.client("viewer") as bob:
        assert bob.get(f"{QUOTA}/compute").status_code == 200
        assert forbidden(bob.patch(f"{QUOTA}/compute", content=b'{"spec": {"hard": {"pods": "9"}}}', headers=MERGE))
        assert forbidden(bob.delete(f"{QUOTA}/compute"))


def test_an_editor_still_manages_its_pods_but_not_their_status_or_binding(master: AuthMaster,
                                                                           admin: httpx.Client) -> None:
    quota_body(admin)
    pods = "/api/v1/namespaces/team-a/pods"
    with master.client("editor") as carol:
        assert carol.post(pods, json=pod("mine")).status_code == 201
        assert carol.patch(f"{pods}/mine", content=b'{"metadata": {"labels": {"x": "y"}}}',
                           headers=MERGE).status_code == 200
        r = carol.patch(f"{pods}/mine/status", content=b'{"status": {"phase": "Succeeded"}}', headers=MERGE)
        assert forbidden(r), r.text
        r = carol.post(f"{pods}/mine/binding", json={"apiVersion": "v1", "kind": "Binding",
                                                     "metadata": {"name": "mine"},
                                                     "target": {"kind": "Node", "name": "any"}})
        assert forbidden(r), r.text
        assert carol.get(f"{pods}/mine/status").status_code == 200
        assert carol.delete(f"{pods}/mine").status_code == 200


def test_an_editor_reads_its_namespace_but_neither_lists_nor_deletes_namespaces(master: AuthMaster,
                                                                                admin: httpx.Client) -> None:
    with master.client("editor") as carol:
        assert carol.get("/api/v1/namespaces/team-a").status_code == 200
        assert forbidden(carol.get("/api/v1/namespaces"))
        assert forbidden(carol.delete("/api/v1/namespaces/team-a"))
        assert forbidden(carol.patch("/api/v1/namespaces/team-a", headers=MERGE,
                                     content=b'{"metadata": {"labels": {"pod-security.kubernetes.io/enforce": '
                                             b'"privileged"}}}'))
        assert forbidden(carol.get("/apis/coordination.k8s.io/v1/namespaces/team-a/leases"))
