"""RBAC through the API, against a real master with the tokens of auth_fixtures: roles and
bindings made with kubectl grant access at once, `kubectl auth can-i` (also --list and --as)
and `kubectl auth whoami` answer, escalation is refused with Kubernetes' message, and
impersonation is allowed to an admin, refused to an editor, and audited with both users."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api.auth_fixtures import AuthMaster, namespace, start_auth_master

pytestmark = pytest.mark.e2e

RBAC = "/apis/rbac.authorization.k8s.io/v1"
GROUP = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    # Controllers on: the aggregation controller is part of what is tested.
    yield from start_auth_master(Path(tmp_path_factory.mktemp("rbacapi")), "--tls", "on", scheme="https")


def _ca(master: AuthMaster) -> Path:
    return master.state / "auth" / "ca.crt"


def http(master: AuthMaster, who: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=master.url, verify=ssl.create_default_context(cafile=str(_ca(master))),
                        headers={"Authorization": f"Bearer {who}-token", **headers}, timeout=10)


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with http(master, "admin") as c:
        namespace(c, name="team-a")
        yield c


def kubeconfig(master: AuthMaster, who: str) -> Path:
    path = master.state / f"kubeconfig-{who}"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {master.url}\n    certificate-authority: {_ca(master)}\n"
        f"users:\n- name: u\n  user:\n    token: {who}-token\n"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: team-a\n"
        "current-context: c\n")
    return path


def kubectl(master: AuthMaster, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig(master, who)), *args], capture_output=True,
                          text=True, timeout=60)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_role_and_binding_made_with_kubectl_grant_a_user_access(master: AuthMaster, admin: httpx.Client) -> None:
    with http(master, "noisy") as dave:  # dave edits "noisy" only (the bindings file)
        assert dave.get("/api/v1/namespaces/team-a/configmaps").status_code == 403
        ok(kubectl(master, "admin", "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps"))
        ok(kubectl(master, "admin", "create", "rolebinding", "dave-reads", "--role=cm-reader", "--user=dave"))
        assert dave.get("/api/v1/namespaces/team-a/configmaps").status_code == 200
        assert dave.get("/api/v1/namespaces/default/configmaps").status_code == 403
        r = dave.post("/api/v1/namespaces/team-a/configmaps", json={"metadata": {"name": "x"}})
        assert r.status_code == 403
        # kubectl get shows Kubernetes' columns.
        assert "Role/cm-reader" in ok(kubectl(master, "admin", "get", "rolebindings"))
        assert ok(kubectl(master, "admin", "get", "roles")).split("\n")[0].split() == ["NAME", "CREATED", "AT"]
        # Deleting the binding takes the access away again.
        ok(kubectl(master, "admin", "delete", "rolebinding", "dave-reads"))
        assert dave.get("/api/v1/namespaces/team-a/configmaps").status_code == 403


def test_the_bindings_file_was_seeded_as_api_objects(admin: httpx.Client) -> None:
    bindings = admin.get(f"{RBAC}/namespaces/team-a/rolebindings").json()["items"]
    seeded = {(b["roleRef"]["name"], b["subjects"][0]["name"]) for b in bindings
              if (b["metadata"].get("labels") or {}).get("sigma.io/seeded")}
    assert {("view", "bob"), ("edit", "carol")} <= seeded


def test_can_i_list_and_whoami(master: AuthMaster, admin: httpx.Client) -> None:
    assert ok(kubectl(master, "editor", "auth", "can-i", "create", "pods")).strip() == "yes"
    denied = kubectl(master, "editor", "auth", "can-i", "patch", "resourcequotas")
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert kubectl(master, "editor", "auth", "can-i", "create", "pods", "-n", "default").returncode == 1
    assert ok(kubectl(master, "viewer", "auth", "can-i", "get", "pods/log")).strip() == "yes"
    listed = ok(kubectl(master, "viewer", "auth", "can-i", "--list"))
    rows = {line.split()[0]: line for line in listed.splitlines()[1:] if line and not line.startswith(" ")}
    assert "[get list watch]" in rows["pods"] and "secrets" not in rows
    whoami = ok(kubectl(master, "editor", "auth", "whoami", "-o", "json"))
    info = json.loads(whoami)["status"]["userInfo"]
    assert info["username"] == "carol" and info["groups"] == ["devs", "system:authenticated"]


def test_node_identities_get_the_node_authorisers_answers(admin: httpx.Client) -> None:
    def review(name: str) -> dict[str, Any]:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "system:node:n1", "groups": ["system:nodes", "system:authenticated"],
                         "resourceAttributes": {"verb": "update", "resource": "nodes", "name": name}}}
        r = admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=body)
        assert r.status_code == 201, r.text
        status: dict[str, Any] = r.json()["status"]
        return status

    assert review("n1")["allowed"] is True
    refused = review("n2")
    assert refused["allowed"] is False and "its own Node" in refused["reason"]


def test_an_editor_may_not_ask_about_others(master: AuthMaster) -> None:
    with http(master, "editor") as carol:
        r = carol.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                       json={"spec": {"user": "alice", "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}})
        assert r.status_code == 403


def _k8s(master: AuthMaster, who: str) -> client.ApiClient:
    config = client.Configuration()
    config.host = master.url
    config.ssl_ca_cert = str(_ca(master))
    config.api_key = {"authorization": f"Bearer {who}-token"}
    return client.ApiClient(config)


def test_escalation_is_refused_as_kubernetes_refuses_it(master: AuthMaster, admin: httpx.Client) -> None:
    # carol administers team-a (admin may manage Roles and RoleBindings there).
    ok(kubectl(master, "admin", "create", "rolebinding", "carol-admin", "--clusterrole=admin", "--user=carol"))
    with _k8s(master, "editor") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        nodes = client.V1Role(metadata=client.V1ObjectMeta(name="nodes"),
                              rules=[client.V1PolicyRule(verbs=["get"], api_groups=[""], resources=["nodes"])])
        with pytest.raises(ApiException) as err:
            rbac.create_namespaced_role("team-a", nodes)
        body = json.loads(err.value.body)
        assert err.value.status == 403 and body["reason"] == "Forbidden"
        assert body["message"] == (
            'roles.rbac.authorization.k8s.io "nodes" is forbidden: user "carol" (groups=["devs" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')
        # What carol holds she may grant, and bind.
        pods = client.V1Role(metadata=client.V1ObjectMeta(name="pod-reader"),
                             rules=[client.V1PolicyRule(verbs=["get", "list"], api_groups=[""], resources=["pods"])])
        rbac.create_namespaced_role("team-a", pods)
    ok(kubectl(master, "editor", "create", "rolebinding", "dave-pods", "--role=pod-reader", "--user=dave"))
    refused = kubectl(master, "editor", "create", "rolebinding", "me-admin", "--clusterrole=cluster-admin",
                      "--user=carol")
    assert refused.returncode != 0 and "is attempting to grant RBAC permissions not currently held" in \
        refused.stderr, refused.stderr
    # The escalate verb lifts the check: given by an admin, carol may then write any role.
    ok(kubectl(master, "admin", "create", "role", "escalator", "--verb=escalate", "--resource=roles"))
    ok(kubectl(master, "admin", "create", "rolebinding", "carol-escalates", "--role=escalator", "--user=carol"))
    ok(kubectl(master, "editor", "create", "role", "nodes", "--verb=get", "--resource=nodes"))


def test_impersonation_for_an_admin_refused_for_an_editor_and_audited(master: AuthMaster,
                                                                     admin: httpx.Client) -> None:
    assert ok(kubectl(master, "admin", "auth", "can-i", "list", "pods", "--as=bob")).strip() == "yes"
    assert kubectl(master, "admin", "auth", "can-i", "create", "pods", "--as=bob").returncode == 1
    whoami = json.loads(ok(kubectl(master, "admin", "auth", "whoami", "--as=bob", "--as-group=g1", "-o", "json")))
    assert whoami["status"]["userInfo"]["groups"] == ["g1", "system:authenticated"]
    refused = kubectl(master, "editor", "get", "pods", "--as=alice")
    assert refused.returncode != 0
    assert ('users "alice" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the '
            'cluster scope') in refused.stderr
    ok(kubectl(master, "admin", "create", "configmap", f"as-{uuid.uuid4().hex[:6]}", "--as=carol"))
    line = _audit_line(master, "configmaps")
    assert line["user"] == "alice" and line["groups"] == ["system:masters", "system:authenticated"]
    assert line["impersonatedUser"] == {"username": "carol", "groups": ["system:authenticated"]}
    assert line["code"] == 201


def test_impersonating_system_masters_needs_impersonate_on_that_group(master: AuthMaster) -> None:
    ok(kubectl(master, "admin", "create", "clusterrole", "impersonate-users", "--verb=impersonate",
               "--resource=users"))
    ok(kubectl(master, "admin", "create", "clusterrolebinding", "dave-impersonates",
               "--clusterrole=impersonate-users", "--user=dave"))
    assert ok(kubectl(master, "noisy", "auth", "whoami", "--as=bob"))
    refused = kubectl(master, "noisy", "get", "nodes", "--as=bob", "--as-group=system:masters")
    assert 'groups "system:masters" is forbidden: User "dave" cannot impersonate resource "groups"' in \
        refused.stderr, refused.stderr


def _audit_line(master: AuthMaster, resource: str) -> dict[str, Any]:
    """The first create of ``resource`` made as someone else."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the audit writer appends every 50 ms
        for raw in (master.state / "audit.log").read_text().splitlines():
            line: dict[str, Any] = json.loads(raw)
            if line.get("resource") == resource and line.get("verb") == "create" and "impersonatedUser" in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no audit line of an impersonated create of {resource}")


def test_bad_input(master: AuthMaster, admin: httpx.Client) -> None:
    ns = f"{RBAC}/namespaces/team-a"
    # A binding naming a missing role is allowed and grants nothing.
    r = admin.post(f"{ns}/rolebindings", json={"metadata": {"name": "ghost"}, "subjects": [
        {"kind": "User", "name": "dave"}], "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "missing"}})
    assert r.status_code == 201, r.text
    with http(master, "noisy") as dave:
        assert dave.get("/api/v1/namespaces/team-a/secrets").status_code == 403
    # A rule without verbs: 422 naming the field.
    r = admin.post(f"{ns}/roles", json={"metadata": {"name": "empty"}, "rules": [
        {"verbs": [], "apiGroups": [""], "resources": ["pods"]}]})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "rules[0].verbs"
    # roleRef never changes.
    ghost = admin.get(f"{ns}/rolebindings/ghost").json()
    ghost["roleRef"]["name"] = "other"
    r = admin.put(f"{ns}/rolebindings/ghost", json=ghost)
    assert r.status_code == 422 and "cannot change roleRef" in r.text
    # 10,000 rules fit in a request and the authoriser still answers; 100,000 do not fit.
    many = [{"verbs": ["get"], "apiGroups": [""], "resources": [f"r{i}"]} for i in range(10_000)]
    assert admin.post(f"{ns}/roles", json={"metadata": {"name": "big"}, "rules": many}).status_code == 201
    assert admin.post(f"{ns}/rolebindings", json={"metadata": {"name": "big"}, "subjects": [
        {"kind": "User", "name": "dave"}], "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "big"}}
    ).status_code == 201
    with http(master, "noisy") as dave:
        assert dave.get("/api/v1/namespaces/team-a/configmaps").status_code == 403
    too_many = many * 10
    assert admin.post(f"{ns}/roles", json={"metadata": {"name": "huge"}, "rules": too_many}).status_code == 413


def test_aggregation_fills_roles_and_survives_selectors_that_pick_each_other(master: AuthMaster,
                                                                            admin: httpx.Client) -> None:
    def role(name: str, labels: dict[str, str], rules: list[dict[str, Any]],
             selects: dict[str, str] | None = None) -> None:
        body: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "rules": rules}
        if selects is not None:
            body["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": selects}]}
        r = admin.post(f"{RBAC}/clusterroles", json=body)
        assert r.status_code == 201, r.text

    widgets = {"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}
    role("widgets-view", {"rbac.authorization.k8s.io/aggregate-to-view": "true"}, [widgets])
    role("loop-a", {"loop": "a"}, [], {"loop": "b"})
    role("loop-b", {"loop": "b"}, [{**widgets, "verbs": ["list"]}], {"loop": "a"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = admin.get(f"{RBAC}/clusterroles/view").json()
        loop_a = admin.get(f"{RBAC}/clusterroles/loop-a").json()
        if widgets in view["rules"] and loop_a.get("rules") == []:
            break
        time.sleep(0.2)
    assert widgets in view["rules"]
    # Both are aggregated: with no plain role beneath them, they aggregate nothing (and no loop).
    assert loop_a.get("rules") == [] and admin.get(f"{RBAC}/clusterroles/loop-b").json().get("rules") == []
    # (kubectl cannot name a resource the server does not serve: the review is asked directly.)
    with http(master, "viewer") as bob:
        r = bob.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={"spec": {"resourceAttributes": {
            "namespace": "team-a", "verb": "get", "group": "example.com", "resource": "widgets"}}})
        assert r.status_code == 201 and r.json()["status"] == {
            "allowed": True, "reason": 'RBAC: allowed by RoleBinding "sigma-file-0-view" of ClusterRole "view" to User '
                                       '"bob"'}
    assert admin.get("/healthz").status_code == 200
