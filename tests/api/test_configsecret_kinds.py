"""ConfigMaps and Secrets through a real master: kubectl, the kubernetes client, RBAC and
the audit log."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api.auth_fixtures import AuthMaster, start_auth_master
from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
PLAIN = "hunter2-Pl41ntext"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    proc = MasterProcess(Path(tmp_path_factory.mktemp("master")), extra_args=("--no-controllers",)).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def core(master: MasterProcess) -> Iterator[client.CoreV1Api]:
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api_client:
        yield client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def kubectl(master: MasterProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result


def refused(call: Any, code: int = 422) -> dict[str, str]:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == code, err.value.body
    body: dict[str, Any] = json.loads(err.value.body)
    return {c.get("field", ""): c["message"] for c in (body.get("details") or {}).get("causes") or []}


@needs_kubectl
def test_kubectl_creates_and_shows_secrets_as_kubernetes_does(master: MasterProcess, ns: str) -> None:
    kubectl(master, "-n", ns, "create", "secret", "generic", "db", f"--from-literal=password={PLAIN}",
            "--from-literal=user=admin")
    out = yaml.safe_load(kubectl(master, "-n", ns, "get", "secret", "db", "-o", "yaml").stdout)
    assert out["type"] == "Opaque" and base64.b64decode(out["data"]["password"]).decode() == PLAIN
    table = kubectl(master, "-n", ns, "get", "secrets").stdout.split("\n")
    assert table[0].split() == ["NAME", "TYPE", "DATA", "AGE"] and table[1].split()[:3] == ["db", "Opaque", "2"]
    kubectl(master, "-n", ns, "create", "secret", "tls", "web", "--cert=/dev/null", "--key=/dev/null", ok=False)
    raw = master.db.read_bytes() + b"".join(p.read_bytes() for p in master.db.parent.glob("state.db-*"))
    assert PLAIN.encode() not in raw and base64.b64encode(PLAIN.encode()) not in raw


@needs_kubectl
def test_kubectl_creates_config_maps(master: MasterProcess, ns: str) -> None:
    kubectl(master, "-n", ns, "create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b.txt=two")
    table = kubectl(master, "-n", ns, "get", "cm").stdout.split("\n")
    assert table[0].split() == ["NAME", "DATA", "AGE"] and table[1].split()[:2] == ["cfg", "2"]
    got = json.loads(kubectl(master, "-n", ns, "get", "configmap", "cfg", "-o", "json").stdout)
    assert got["data"] == {"a": "1", "b.txt": "two"}


def test_string_data_is_write_only(core: client.CoreV1Api, ns: str) -> None:
    made = core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"},
                                              "data": {"d": base64.b64encode(b"x").decode()}})
    assert made.string_data is None and made.data == {"k": "dg==", "d": "eA=="}


def test_bad_keys_sizes_and_types_are_422_naming_the_field(core: client.CoreV1Api, ns: str) -> None:
    causes = refused(lambda: core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a/b": "x"}}))
    assert list(causes) == ["data[a/b]"]
    big = {"metadata": {"name": "big"}, "stringData": {"k": "x" * (1024 * 1024 + 1)}}
    assert refused(lambda: core.create_namespaced_secret(ns, big)) == {
        "data": "Too long: may not be more than 1048576 bytes"}
    tls = {"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "stringData": {"tls.crt": "c"}}
    assert refused(lambda: core.create_namespaced_secret(ns, tls)) == {"data[tls.key]": "Required value"}


def test_immutable_data_cannot_change(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "frozen"}, "data": {"k": "v"}, "immutable": True})
    causes = refused(lambda: core.patch_namespaced_config_map("frozen", ns, {"data": {"k": "w"}}))
    assert causes == {"data": "Forbidden: field is immutable when `immutable` is set"}
    core.patch_namespaced_config_map("frozen", ns, {"metadata": {"labels": {"a": "b"}}})  # metadata may change
    core.delete_namespaced_config_map("frozen", ns)


@pytest.fixture(scope="module")
def auth_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("auth")), "--no-controllers")


def test_view_cannot_read_secrets_edit_can_and_audit_keeps_no_value(auth_master: AuthMaster) -> None:
    with auth_master.client("admin") as admin:
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}}).status_code in (201, 409)
    with auth_master.client("editor") as editor:
        made = editor.post("/api/v1/namespaces/team-a/secrets",
                           json={"metadata": {"name": "db"}, "stringData": {"password": PLAIN}})
        assert made.status_code == 201, made.text
        assert editor.get("/api/v1/namespaces/team-a/secrets/db").status_code == 200
        assert editor.post("/api/v1/namespaces/team-a/configmaps",
                           json={"metadata": {"name": "cfg"}, "data": {"k": "v"}}).status_code == 201
    with auth_master.client("viewer") as viewer:
        assert viewer.get("/api/v1/namespaces/team-a/configmaps/cfg").status_code == 200
        denied = viewer.get("/api/v1/namespaces/team-a/secrets/db")
        assert denied.status_code == 403 and "cannot get resource \"secrets\"" in denied.json()["message"]
        assert viewer.get("/api/v1/namespaces/team-a/secrets").status_code == 403
    # The audit writer appends every few tens of milliseconds: wait for the secrets' lines.
    audit = auth_master.state / "audit.log"
    deadline = time.monotonic() + 10
    text = ""
    while "secrets" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = audit.read_text() if audit.exists() else ""
    assert "secrets" in text, "the secret requests were not audited"
    assert PLAIN not in text and base64.b64encode(PLAIN.encode()).decode() not in text


@needs_kubectl
def test_kubectl_creates_service_accounts_and_their_tokens(master: MasterProcess, ns: str) -> None:
    kubectl(master, "-n", ns, "create", "serviceaccount", "robot")
    assert kubectl(master, "-n", ns, "get", "sa").stdout.split("\n")[0].split() == ["NAME", "SECRETS", "AGE"]
    token = kubectl(master, "-n", ns, "create", "token", "robot", "--duration", "15m").stdout.strip()
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {token}"}) as sa:
        denied = sa.get(f"/api/v1/namespaces/{ns}/secrets")
    assert denied.status_code == 403 and f"system:serviceaccount:{ns}:robot" in denied.json()["message"]
