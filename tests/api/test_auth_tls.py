"""TLS with the CA generated at the master's first start: client certificates (CN = user,
O = groups) and tokens over https, through HttpClient and kubectl."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigma.api.auth.certs import CertPair, issue_client_cert
from sigma.client.http import HttpClient
from tests.api.auth_fixtures import AuthMaster, start_auth_master

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("tls")), "--no-controllers", "--tls", "on",
                                 scheme="https")


def ca(master: AuthMaster) -> CertPair:
    return CertPair(master.state / "auth" / "ca.crt", master.state / "auth" / "ca.key")


def trust(master: AuthMaster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca(master).cert))


def client_cert(master: AuthMaster, user: str, groups: tuple[str, ...]) -> CertPair:
    out = master.state / f"client-{user}"
    return issue_client_cert(ca(master), user, groups, CertPair(out.with_suffix(".crt"), out.with_suffix(".key")))


def kubeconfig(master: AuthMaster, path: Path, *, cert: CertPair | None = None, token: str | None = None) -> Path:
    user = "    token: " + token + "\n" if token else ""
    if cert is not None:
        user += (f"    client-certificate-data: {base64.b64encode(cert.cert.read_bytes()).decode()}\n"
                 f"    client-key: {cert.key}\n")
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster:\n    server: {master.url}\n"
        f"    certificate-authority: {ca(master).cert}\n"
        f"users:\n- name: u\n  user:\n{user}"
        "contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\n"
        "current-context: c\n")
    return path


def test_the_master_serves_https_with_a_certificate_of_its_ca(master: AuthMaster) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{master.url}/version")  # not trusted without the CA
    assert httpx.get(f"{master.url}/version", verify=trust(master)).status_code == 200


def test_a_client_certificate_names_the_user_and_its_groups(master: AuthMaster, tmp_path: Path) -> None:
    admin = client_cert(master, "erin", ("system:masters",))
    with HttpClient.from_kubeconfig(str(kubeconfig(master, tmp_path / "admin", cert=admin))) as erin:
        assert erin.list("pods", "default")["kind"] == "PodList"
    nobody = client_cert(master, "frank", ("devs",))
    context = trust(master)
    context.load_cert_chain(str(nobody.cert), str(nobody.key))
    with httpx.Client(base_url=master.url, verify=context) as c:
        r = c.get("/api/v1/namespaces/default/pods")
        assert r.status_code == 403 and 'User "frank"' in r.json()["message"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_with_the_ca_and_a_client_certificate_or_a_token(master: AuthMaster, tmp_path: Path) -> None:
    admin = client_cert(master, "erin", ("system:masters",))
    for name, config in (("cert", kubeconfig(master, tmp_path / "cert", cert=admin)),
                         ("token", kubeconfig(master, tmp_path / "token", token="admin-token"))):
        got = subprocess.run(["kubectl", "--kubeconfig", str(config), "get", "namespaces"], capture_output=True,
                             text=True, timeout=60)
        assert got.returncode == 0 and "kube-system" in got.stdout, (name, got.stderr)
    viewer = kubeconfig(master, tmp_path / "viewer", token="viewer-token")
    got = subprocess.run(["kubectl", "--kubeconfig", str(viewer), "-n", "default", "run", "x", "--image=busybox"],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode != 0 and 'User "bob" cannot create resource "pods"' in got.stderr, got.stderr
