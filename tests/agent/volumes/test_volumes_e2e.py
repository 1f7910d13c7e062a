"""Pod volumes and env references against a real `sigma master` (authentication on) and a
real `sigma agent` joined with a node credential: ConfigMap and Secret files and env vars,
defaultMode, subPath, a ConfigMap update seen by the running pod, a missing ConfigMap that
holds the pod back with an Event, an emptyDir shared by two containers, the projected
ServiceAccount token a pod authenticates with, and NodeRestriction's graph rule for the
node's own reads."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.utils import FailToCreateError, create_from_yaml

from sigma.agent.images import ImageStore
from sigma.api.auth.tokens import create_bootstrap_token
from sigma.client.kubeconfig import load_kubeconfig
from tests.agent.agent_process import AgentProcess
from tests.agent.conftest import needs_root, wait_for
from tests.agent.imagebuild import busybox_layout
from tests.api.auth_fixtures import AuthMaster, namespace, start_auth_master

pytestmark = [pytest.mark.e2e, *needs_root]

NODE = "vol-node"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class Env:
    def __init__(self, master: AuthMaster, agent: AgentProcess, admin: httpx.Client) -> None:
        self.master, self.agent, self.admin = master, agent, admin
        self.ns = namespace(admin)

    def create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.admin.post(f"/api/v1/namespaces/{self.ns}/{plural}", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def pod(self, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
        return self.create("pods", {"metadata": {"name": name}, "spec": {
            "nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": containers, **spec}})

    def get_pod(self, name: str) -> dict[str, Any]:
        return dict(self.admin.get(f"/api/v1/namespaces/{self.ns}/pods/{name}").json())

    def running(self, name: str, timeout: float = 40) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(lambda: (p := self.get_pod(name)) and
                                         (p.get("status") or {}).get("phase") == "Running" and p,
                                         timeout=timeout, interval=0.2)
        return found

    def logs(self, pod: str, container: str = "main") -> str:
        r = self.admin.get(f"/api/v1/namespaces/{self.ns}/pods/{pod}/log", params={"container": container})
        return r.text if r.status_code == 200 else ""

    def wait_log(self, pod: str, text: str, container: str = "main", timeout: float = 30) -> str:
        found: str = wait_for(lambda: (out := self.logs(pod, container)) and text in out and out,
                              timeout=timeout, interval=0.3)
        return found

    def events(self, involved: str) -> list[dict[str, Any]]:
        items = self.admin.get(f"/api/v1/namespaces/{self.ns}/events").json()["items"]
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == involved]

    def delete_pod(self, name: str) -> None:
        self.admin.delete(f"/api/v1/namespaces/{self.ns}/pods/{name}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = Path(tmp_path_factory.mktemp("volumes"))
    for master in start_auth_master(tmp / "master"):
        token = create_bootstrap_token(master.state, ttl_s=600)
        # A busybox image in the agent's store, for the runc runtime's test.
        busybox_layout(str(tmp / "layout"), BUSYBOX)
        ImageStore(str(tmp / f"images-{NODE}")).import_path(str(tmp / "layout"))
        agent = AgentProcess(master.url, tmp / "agent", NODE,
                             extra=("--bootstrap-token-file", _write(tmp / "bt", token),
                                    "--volume-resync-interval", "1"))
        try:
            agent.start()
            with master.client("admin") as admin:
                agent.wait_node(admin)
                yield Env(master, agent, admin)
        finally:
            agent.stop()


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_config_map_and_secret_files_env_mode_subpath_and_update(env: Env) -> None:
    env.create("configmaps", {"metadata": {"name": "app"}, "data": {"greeting": "hello", "color": "blue"}})
    env.create("secrets", {"metadata": {"name": "creds"}, "data": {"password": _b64("s3cret")}})
    script = ("echo ENV=$GREETING/$APP_color/$(POD); ls /tmp/sec; stat -c MODE=%a /tmp/sec/..data/password; "
              "echo SUB=$(cat /tmp/one); "
              "while true; do echo FILE=$(cat /tmp/cfg/greeting); sleep 0.3; done")
    env.pod("files", [{
        "name": "main", "command": ["sh", "-c", script],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "greeting"}}}],
        "envFrom": [{"configMapRef": {"name": "app"}, "prefix": "APP_"}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/tmp/cfg"},
                         {"name": "sec", "mountPath": "/tmp/sec"},
                         {"name": "cfg", "mountPath": "/tmp/one", "subPath": "color"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "app"}},
                 {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    env.running("files")
    out = env.wait_log("files", "FILE=hello")
    assert "ENV=hello/blue/files" in out  # $(POD) expanded in the command by Kubernetes' rule
    assert "password" in out and "MODE=400" in out
    assert "SUB=blue" in out
    assert "s3cret" not in out and "s3cret" not in env.agent.log.read_text()  # never logged by the agent
    holders = [f for f in env.agent.state.rglob("*") if f.is_file() and not f.is_symlink()
               and b"s3cret" in f.read_bytes()]
    assert holders  # the container's spec (its env) and the secret volume's file...
    assert all(f.stat().st_mode & 0o077 == 0 for f in holders)  # ...which no one else may read

    r = env.admin.patch(f"/api/v1/namespaces/{env.ns}/configmaps/app", json={"data": {"greeting": "bonjour"}},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    env.wait_log("files", "FILE=bonjour", timeout=60)  # the running pod sees the new value
    env.delete_pod("files")


def test_an_image_container_under_runc_gets_its_volumes_and_env(env: Env) -> None:
    env.create("configmaps", {"metadata": {"name": "img"}, "data": {"key": "from-config-map"}})
    env.create("secrets", {"metadata": {"name": "img-secret"}, "data": {"pw": _b64("pw-value")}})
    script = f"echo CFG=$(cat /etc/app/key) PW=$PW NS=$(cat {SA_DIR}/namespace) ME=$(cat /proc/self/status | " \
             "head -9 | tail -1); sleep 600"
    env.pod("image", [{"name": "main", "image": "busybox:test", "imagePullPolicy": "Never",
                       "command": ["sh", "-c", script],
                       "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                       "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "img-secret", "key": "pw"}}}],
                       "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}]}],
            volumes=[{"name": "cfg", "configMap": {"name": "img", "defaultMode": 0o400}}])
    out = env.wait_log("image", "CFG=", timeout=60)
    assert f"CFG=from-config-map PW=pw-value NS={env.ns}" in out  # a 0400 file, readable by uid 1000
    env.delete_pod("image")


def test_missing_config_map_holds_the_pod_with_an_event_then_it_starts(env: Env) -> None:
    env.pod("waits", [{"name": "main", "command": ["sh", "-c", "echo $(cat /tmp/late/k); sleep 600"],
                       "volumeMounts": [{"name": "late", "mountPath": "/tmp/late"}]}],
            volumes=[{"name": "late", "configMap": {"name": "late"}}])
    event = wait_for(lambda: next((e for e in env.events("waits") if e["reason"] == "FailedMount"), None),
                     timeout=30)
    assert event["type"] == "Warning" and 'configmap "late" not found' in event["message"]
    assert env.get_pod("waits")["status"].get("phase") == "Pending"
    env.create("configmaps", {"metadata": {"name": "late"}, "data": {"k": "arrived"}})
    env.running("waits")
    env.wait_log("waits", "arrived")
    env.delete_pod("waits")


def test_missing_config_map_of_an_env_var_is_a_create_container_config_error(env: Env) -> None:
    env.pod("waits-env", [{"name": "main", "command": ["sh", "-c", "echo V=$V; sleep 600"],
                           "env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "late-env",
                                                                                    "key": "v"}}}]}])

    def waiting() -> dict[str, object] | None:
        statuses = env.get_pod("waits-env").get("status", {}).get("containerStatuses") or [{}]
        found = (statuses[0].get("state") or {}).get("waiting") or {}
        return found if found.get("reason") == "CreateContainerConfigError" else None

    assert wait_for(waiting, timeout=30)["message"] == 'configmap "late-env" not found'
    event = wait_for(lambda: next((e for e in env.events("waits-env")
                                   if e["reason"] == "CreateContainerConfigError"), None), timeout=30)
    assert event["type"] == "Warning" and 'configmap "late-env" not found' in event["message"]
    env.create("configmaps", {"metadata": {"name": "late-env"}, "data": {"v": "now"}})
    env.running("waits-env")
    env.wait_log("waits-env", "V=now")
    env.delete_pod("waits-env")


def test_empty_dir_is_shared_by_two_containers(env: Env) -> None:
    mount = [{"name": "scratch", "mountPath": "/tmp/shared"}]
    env.pod("pair", [
        {"name": "writer", "command": ["sh", "-c", "echo from-writer > /tmp/shared/note; sleep 600"],
         "volumeMounts": mount},
        {"name": "main", "command": ["sh", "-c", "while ! cat /tmp/shared/note; do sleep 0.2; done; sleep 600"],
         "volumeMounts": mount}],
        volumes=[{"name": "scratch", "emptyDir": {}}])
    env.running("pair")
    env.wait_log("pair", "from-writer")
    env.delete_pod("pair")


def test_memory_empty_dir_is_a_tmpfs_of_its_size_limit(env: Env) -> None:
    env.pod("mem", [{"name": "main", "command": ["sh", "-c", "grep /tmp/mem /proc/mounts; sleep 600"],
                     "volumeMounts": [{"name": "mem", "mountPath": "/tmp/mem"}]}],
            volumes=[{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "2Mi"}}])
    out = env.wait_log("mem", "tmpfs")
    assert "size=2048k" in out
    env.delete_pod("mem")


def test_disk_empty_dir_over_its_size_limit_evicts_the_pod(env: Env) -> None:
    script = "dd if=/dev/zero of=/tmp/scratch/fill bs=1024 count=3072; sleep 600"
    env.pod("greedy", [{"name": "main", "command": ["sh", "-c", script],
                        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/scratch"}]}],
            volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}])
    failed = wait_for(lambda: (p := env.get_pod("greedy"))["status"].get("phase") == "Failed" and p, timeout=60)
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert failed["status"]["reason"] == "Evicted" and failed["status"]["message"] == message
    assert any(e["reason"] == "Evicted" and e["type"] == "Warning" for e in env.events("greedy"))
    env.delete_pod("greedy")


def test_projected_token_authenticates_the_pod_as_its_service_account(env: Env) -> None:
    port = env.master.url.rsplit(":", 1)[1]
    request = (f'printf "GET /api/v1/namespaces/{env.ns}/secrets HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n" '
               f'"$(cat {SA_DIR}/token)" | busybox nc 127.0.0.1 {port}')
    script = (f"echo NS=$(cat {SA_DIR}/namespace); grep -c BEGIN {SA_DIR}/ca.crt; "
              f"echo HOST=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; {request}; echo; sleep 600")
    pod = env.pod("token", [{"name": "main", "command": ["sh", "-c", script]}])
    assert any(m["mountPath"] == SA_DIR for m in pod["spec"]["containers"][0]["volumeMounts"])
    env.running("token")
    out = env.wait_log("token", "system:serviceaccount")
    assert f"NS={env.ns}" in out
    service = env.admin.get("/api/v1/namespaces/default/services/kubernetes").json()["spec"]
    assert f"HOST={service['clusterIP']}:443" in out
    # Authenticated as the pod's ServiceAccount (not anonymous: that would be 401), refused by RBAC.
    assert f"system:serviceaccount:{env.ns}:default" in out

    # What load_incluster_config reads: the same files and variables give a configuration.
    volume = next(v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    files = env.agent.state / "pods" / pod["metadata"]["uid"] / "volumes" / "projected" / volume["name"]
    loader = InClusterConfigLoader(str(files / "token"), str(files / "ca.crt"), environ={
        "KUBERNETES_SERVICE_HOST": service["clusterIP"], "KUBERNETES_SERVICE_PORT": "443"})
    config = Configuration()
    loader.load_and_set(client_configuration=config)
    assert config.host == f"https://{service['clusterIP']}:443" and config.ssl_ca_cert == str(files / "ca.crt")
    # The Service's address needs the node's service proxy: the master itself, with what was loaded.
    direct = Configuration(host=env.master.url, api_key={"BearerToken": config.api_key["BearerToken"]})
    with ApiClient(direct) as api, pytest.raises(ApiException) as refused:
        CoreV1Api(api).list_namespaced_secret(env.ns)
    assert refused.value.status == 403 and f"system:serviceaccount:{env.ns}:default" in str(refused.value.body)
    env.delete_pod("token")


def test_node_reads_only_what_its_pods_reference(env: Env) -> None:
    env.create("secrets", {"metadata": {"name": "used"}, "data": {"k": _b64("v")}})
    env.create("secrets", {"metadata": {"name": "unused"}, "data": {"k": _b64("v")}})
    env.create("configmaps", {"metadata": {"name": "unused-cm"}, "data": {"k": "v"}})
    env.pod("user", [{"name": "main", "command": ["sleep", "600"],
                      "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "used", "key": "k"}}}]}])
    node = load_kubeconfig(str(env.agent.state / "kubeconfig"))
    with httpx.Client(base_url=env.master.url, headers={"Authorization": f"Bearer {node.token}"},
                      timeout=10) as as_node:
        base = f"/api/v1/namespaces/{env.ns}"
        assert as_node.get(f"{base}/secrets/used").status_code == 200
        refused = as_node.get(f"{base}/secrets/unused")
        assert refused.status_code == 403 and "no relationship found" in refused.json()["message"]
        assert as_node.get(f"{base}/configmaps/unused-cm").status_code == 403
        assert as_node.get(f"{base}/secrets").status_code == 403  # no list of every Secret
        # A token only for a pod of this node, bound to it.
        pod = env.get_pod("user")
        bound = {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "user",
                                             "uid": pod["metadata"]["uid"]}}}
        wait_for(lambda: env.admin.get(f"{base}/serviceaccounts/default").status_code == 200)
        assert as_node.post(f"{base}/serviceaccounts/default/token", json=bound).status_code == 201
        assert as_node.post(f"{base}/serviceaccounts/default/token", json={"spec": {}}).status_code == 403
    elsewhere = env.create("pods", {"metadata": {"name": "other"}, "spec": {
        "nodeName": "some-other-node", "containers": [{"name": "c", "command": ["sleep", "1"]}]}})
    with httpx.Client(base_url=env.master.url, headers={"Authorization": f"Bearer {node.token}"},
                      timeout=10) as as_node:
        other = {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other",
                                             "uid": elsewhere["metadata"]["uid"]}}}
        assert as_node.post(f"{base}/serviceaccounts/default/token", json=other).status_code == 403
    env.delete_pod("user")


def test_the_example_pod_reads_its_config_map_through_the_kubernetes_client(env: Env) -> None:
    examples = Path(__file__).resolve().parents[3] / "examples"
    config = Configuration(host=env.master.url, api_key={"BearerToken": "Bearer admin-token"})
    with ApiClient(config) as api:
        for name in ("namespace.yaml", "configmap.yaml", "pod-config.yaml"):
            try:
                create_from_yaml(api, str(examples / name))
            except FailToCreateError as err:  # the namespace may be there from another test
                assert all(e.status == 409 for e in err.api_exceptions), err
        # The example names no node: bind it here (this test's master runs no scheduler for it).
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-config-reader"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}}
        r = env.admin.post("/api/v1/namespaces/team-a/pods/web-config-reader/binding", json=binding)
        assert r.status_code in (201, 409), r.text
        core = CoreV1Api(api)
        out = wait_for(lambda: _logs(core, "web-config-reader", "team-a"), timeout=60, interval=0.5)
        assert "log level info" in out and "cache.size=256" in out
        core.delete_namespaced_pod("web-config-reader", "team-a")


def _logs(core: CoreV1Api, name: str, namespace: str) -> str:
    try:
        text = core.read_namespaced_pod_log(name, namespace)
    except ApiException:
        return ""
    return str(text) if "cache.size" in str(text) else ""
