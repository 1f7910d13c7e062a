"""Service and EndpointSlice through a real master: the kubernetes client and kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
FLAGS = ("--no-controllers", "--service-cidr", "10.100.0.0/24", "--service-node-port-range", "30000-30099")


@pytest.fixture(scope="module")
def svc_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    proc = MasterProcess(Path(tmp_path_factory.mktemp("master")), extra_args=FLAGS).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def core(svc_master: MasterProcess) -> Iterator[client.CoreV1Api]:
    config = client.Configuration()
    config.host = svc_master.url
    with client.ApiClient(config) as api_client:
        yield client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}], **spec}}


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 422
    body: dict[str, Any] = json.loads(err.value.body)
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


def kubectl(master: MasterProcess, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result


def test_the_kubernetes_service_holds_the_first_address(core: client.CoreV1Api) -> None:
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.100.0.1" and svc.spec.ports[0].port == 443


def test_create_get_list_with_defaults(core: client.CoreV1Api, ns: str) -> None:
    made = core.create_namespaced_service(ns, service("web", type="NodePort"))
    spec = made.spec
    assert spec.cluster_ip.startswith("10.100.0.") and spec.cluster_ips == [spec.cluster_ip]
    assert spec.ports[0].protocol == "TCP" and 30000 <= spec.ports[0].node_port <= 30099
    assert spec.session_affinity == "None" and spec.ip_families == ["IPv4"]
    assert spec.ip_family_policy == "SingleStack" and spec.external_traffic_policy == "Cluster"
    assert spec.internal_traffic_policy == "Cluster"
    listed = core.list_namespaced_service(ns)
    assert [s.metadata.name for s in listed.items] == ["web"]


def test_errors_name_the_field(core: client.CoreV1Api, ns: str) -> None:
    causes = refused(lambda: core.create_namespaced_service(ns, service("a", clusterIP="10.96.0.5")))
    assert "The range of valid IPs is 10.100.0.0/24" in causes["spec.clusterIPs"]
    core.create_namespaced_service(ns, service("b", clusterIP="10.100.0.50"))
    causes = refused(lambda: core.create_namespaced_service(ns, service("c", clusterIP="10.100.0.50")))
    assert "provided IP is already allocated" in causes["spec.clusterIPs"]
    causes = refused(lambda: core.create_namespaced_service(ns, service("d", ports=[{"port": 80}, {"port": 81}])))
    assert causes["spec.ports[0].name"] == "Required value"
    causes = refused(lambda: core.create_namespaced_service(
        ns, service("e", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])))
    assert "The range of valid ports is 30000-30099" in causes["spec.ports[0].nodePort"]


def test_dry_run_allocates_nothing(core: client.CoreV1Api, ns: str) -> None:
    answered = core.create_namespaced_service(ns, service("dry", clusterIP="10.100.0.60"), dry_run="All")
    assert answered.spec.cluster_ip == "10.100.0.60"
    made = core.create_namespaced_service(ns, service("real", clusterIP="10.100.0.60"))
    assert made.spec.cluster_ip == "10.100.0.60"


def test_concurrent_creates_never_share_an_address(svc_master: MasterProcess, ns: str) -> None:
    addresses: list[str] = []

    def create(i: int) -> None:
        with httpx.Client(base_url=svc_master.url, timeout=30) as http:
            r = http.post(f"/api/v1/namespaces/{ns}/services", json=service(f"c{i}"))
            assert r.status_code == 201, r.text
            addresses.append(r.json()["spec"]["clusterIP"])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(addresses) == len(set(addresses)) == 12


def test_a_watch_sees_services_come_and_go(core: client.CoreV1Api, ns: str) -> None:
    rv = core.list_namespaced_service(ns).metadata.resource_version
    core.create_namespaced_service(ns, service("w"))
    core.delete_namespaced_service("w", ns)
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_service, ns, resource_version=rv, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "w"), ("DELETED", "w")]


def test_endpoint_slices_are_served(svc_master: MasterProcess, ns: str) -> None:
    config = client.Configuration()
    config.host = svc_master.url
    with client.ApiClient(config) as api_client:
        discovery = client.DiscoveryV1Api(api_client)
        body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "hand-made", "labels": {"kubernetes.io/service-name": "x"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        made = discovery.create_namespaced_endpoint_slice(ns, body)
        assert made.endpoints[0].addresses == ["10.1.0.1"] and made.ports[0].port == 8080
        bad = {**body, "metadata": {"name": "bad"}, "endpoints": [{"addresses": ["nope"]}]}
        causes = refused(lambda: discovery.create_namespaced_endpoint_slice(ns, bad))
        assert "must be a valid IPv4 address" in causes["endpoints[0].addresses[0]"]


def free_node_port(master: MasterProcess) -> int:
    """A port of the range no Service holds: other tests in this module take random node ports."""
    with httpx.Client(base_url=master.url, timeout=10) as http:
        services = http.get("/api/v1/services").json()["items"]
    taken = {p.get("nodePort") for s in services for p in s["spec"]["ports"]}
    return next(port for port in range(30000, 30100) if port not in taken)


@needs_kubectl
def test_kubectl_expose_and_get_svc_columns(svc_master: MasterProcess, ns: str) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
    with httpx.Client(base_url=svc_master.url, timeout=10) as http:
        assert http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment).status_code == 201
    out = kubectl(svc_master, "-n", ns, "expose", "deployment", "web", "--port", "80", "--target-port", "8080")
    assert "service/web exposed" in out.stdout
    node_port = free_node_port(svc_master)
    kubectl(svc_master, "-n", ns, "create", "service", "nodeport", "np", "--tcp=80:8080", f"--node-port={node_port}")
    table = kubectl(svc_master, "-n", ns, "get", "svc").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["web"][1] == "ClusterIP" and rows["web"][3] == "<none>" and rows["web"][4] == "80/TCP"
    assert rows["np"][1] == "NodePort" and rows["np"][4] == f"80:{node_port}/TCP"
    selector = kubectl(svc_master, "-n", ns, "get", "svc", "web", "-o", "jsonpath={.spec.selector.app}").stdout
    assert selector == "web"
    target = kubectl(svc_master, "-n", ns, "get", "svc", "web", "-o", "jsonpath={.spec.ports[0].targetPort}").stdout
    assert target == "8080"


@needs_kubectl
def test_kubectl_get_endpointslices_columns(svc_master: MasterProcess) -> None:
    table = kubectl(svc_master, "-n", "default", "get", "endpointslices").stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert table[1].split()[:4] == ["kubernetes", "IPv4", str(svc_master.port), "127.0.0.1"]


def test_a_restarted_master_keeps_its_allocations(tmp_path: Path) -> None:
    proc = MasterProcess(tmp_path, extra_args=FLAGS).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            r = http.post("/api/v1/namespaces/default/services", json=service("keep"))
            ip = r.json()["spec"]["clusterIP"]
        proc.stop()
        proc.start()
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            r = http.post("/api/v1/namespaces/default/services", json=service("other", clusterIP=ip))
            assert r.status_code == 422 and "already allocated" in r.text
            http.delete("/api/v1/namespaces/default/services/keep")
            r = http.post("/api/v1/namespaces/default/services", json=service("other", clusterIP=ip))
            assert r.status_code == 201, r.text
    finally:
        proc.stop()


def test_invalid_service_flags_stop_the_master_at_start(tmp_path: Path) -> None:
    proc = MasterProcess(tmp_path, extra_args=("--service-cidr", "10.96.0.0/40"))
    with pytest.raises(RuntimeError, match="not a valid CIDR"):
        proc.start(timeout=20)
