"""RuntimeClasses end to end: a real master (scheduler included) and agent process, driven by
the unmodified kubectl. The agent reports its handlers as Node labels; the built-in classes
select on them; pods run under runc and gVisor with their logs read; a class no node has
leaves its pod Pending with a FailedScheduling event; overhead lands in the pod and quota;
a namespace that requires the sandbox refuses runc and runs host commands in gVisor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.runtime.probe_handlers import probe_handlers
from sigma.bench.agentproc import AgentProcess
from tests.agent.imagebuild import busybox_layout
from tests.harness import MasterProcess
from tests.kubectl_cluster import KubectlCluster
from tests.kubectl_cluster import wait_for as shared_wait_for

BUSYBOX = shutil.which("busybox")
HANDLERS = probe_handlers(True, shutil.which("runc") is not None) if os.geteuid() == 0 else None
pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root for cgroups and runtimes"),
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
              pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt package busybox-static)")]
NODE = "rc-node"


def needs(handler: str) -> pytest.MarkDecorator:
    ok = HANDLERS is not None and handler in HANDLERS.available
    return pytest.mark.skipif(not ok, reason=(HANDLERS.missing.get(handler, "") if HANDLERS else "") or
                              f"no {handler}")


class Cluster(KubectlCluster):
    def __init__(self, master: MasterProcess, agent: AgentProcess) -> None:
        super().__init__(master)
        self.agent = agent

    def apply(self, obj: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=json.dumps(obj), check=check)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 90.0) -> Any:
    return shared_wait_for(what, probe, timeout, 0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert BUSYBOX is not None
    tmp = tmp_path_factory.mktemp("runtimeclass")
    busybox_layout(str(tmp / "layout"), BUSYBOX)
    ImageStore(str(tmp / "images")).import_path(str(tmp / "layout"))  # the agent's --image-dir
    with MasterProcess(tmp) as master, AgentProcess(tmp, master.url, NODE, cpus="4", memory="4Gi") as agent:
        c = Cluster(master, agent)
        wait_for("the node", lambda: c.kubectl("get", "node", NODE, check=False).returncode == 0)
        yield c


def pod(name: str, command: str, runtime_class: str | None = None, image: str | None = "busybox:test",
        **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "command": ["sh", "-c", command],
                                 "resources": {"requests": {"cpu": "50m"}}}
    if image:
        container["image"] = image
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                     "containers": [container], **spec}}
    if runtime_class:
        body["spec"]["runtimeClassName"] = runtime_class
    return body


def finished_logs(c: Cluster, name: str, namespace: str = "default") -> str:
    wait_for(f"pod {name} to finish", lambda: c.get("pod", name, "-n", namespace)["status"].get("phase")
             in ("Succeeded", "Failed"))
    return c.kubectl("logs", name, "-n", namespace).stdout


def test_node_reports_handlers_and_classes_list_them(cluster: Cluster) -> None:
    assert HANDLERS is not None
    labels = cluster.get("node", NODE)["metadata"]["labels"]
    for handler in HANDLERS.available:
        assert labels[f"sigma.io/runtime-handler.{handler}"] == "true"
    table = cluster.kubectl("get", "runtimeclasses").stdout.splitlines()
    assert table[0].split() == ["NAME", "HANDLER", "AGE"]
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert rows["runsc"] == "runsc" and rows["runc"] == "runc" and rows["lxc"] == "lxc"


def test_runc_class_pod_runs_and_logs(cluster: Cluster) -> None:
    cluster.apply(pod("under-runc", "echo hello from runc", "runc"))
    assert finished_logs(cluster, "under-runc") == "hello from runc\n"


@needs("runsc")
def test_runsc_class_pod_runs_in_gvisor_and_logs(cluster: Cluster) -> None:
    cluster.apply(pod("under-gvisor", "dmesg | head -1", "runsc"))
    assert "gVisor" in finished_logs(cluster, "under-gvisor")


@needs("lxc")
def test_lxc_class_pod_runs_and_logs(cluster: Cluster) -> None:
    cluster.apply(pod("under-lxc", "echo hello from lxc; cat /proc/1/cmdline", "lxc"))
    assert finished_logs(cluster, "under-lxc").startswith("hello from lxc\ninit")  # LXC's init is pid 1


def test_class_no_node_has_stays_pending_with_failed_scheduling(cluster: Cluster) -> None:
    cluster.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "kata"},
                   "handler": "kata", "scheduling": {"nodeSelector": {"sigma.io/runtime-handler.kata": "true"}}})
    cluster.apply(pod("no-kata", "true", "kata"))

    def failed_scheduling() -> bool:
        events = cluster.get("events", "--field-selector", "involvedObject.name=no-kata")["items"]
        return any(e.get("reason") == "FailedScheduling" for e in events)

    wait_for("a FailedScheduling event", failed_scheduling, timeout=60)
    assert cluster.get("pod", "no-kata")["status"].get("phase") == "Pending"
    assert not cluster.get("pod", "no-kata")["spec"].get("nodeName")


def test_unknown_class_is_refused(cluster: Cluster) -> None:
    result = cluster.apply(pod("nope", "true", "nope"), check=False)
    assert result.returncode != 0
    assert 'pod rejected: RuntimeClass "nope" not found' in result.stderr


def test_overhead_lands_in_the_pod_and_is_charged(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "overhead")
    cluster.apply({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "runc-overhead"},
                   "handler": "runc", "overhead": {"podFixed": {"cpu": "200m", "memory": "32Mi"}},
                   "scheduling": {"nodeSelector": {"sigma.io/runtime-handler.runc": "true"}}})
    cluster.apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "overhead"},
                   "spec": {"hard": {"requests.cpu": "1"}}})
    cluster.kubectl("apply", "-n", "overhead", "-f", "-",
                    input=json.dumps(pod("charged", "sleep 30", "runc-overhead")))
    created = cluster.get("pod", "charged", "-n", "overhead")
    assert created["spec"]["overhead"] == {"cpu": "200m", "memory": "32Mi"}
    wait_for("the quota's usage", lambda: cluster.get("resourcequota", "q", "-n", "overhead")
             .get("status", {}).get("used", {}).get("requests.cpu") == "250m")
    wait_for("the pod to run", lambda: cluster.get("pod", "charged", "-n", "overhead")["status"].get("phase")
             == "Running")


@needs("runsc")
def test_require_sandbox_refuses_runc_and_runs_host_commands_in_gvisor(cluster: Cluster) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "untrusted", "labels": {
        "sigma.io/require-sandbox": "true", "sigma.io/runtime-class-default": "runsc"}}})
    refused = cluster.kubectl("apply", "-n", "untrusted", "-f", "-", input=json.dumps(pod("r", "true", "runc")),
                              check=False)
    assert refused.returncode != 0 and "sigma.io/require-sandbox=true" in refused.stderr
    # No image and no class: the namespace's default puts the host command in gVisor, over
    # the process runtime's masked, read-only host view: /root is an empty mask and the
    # agent's state (under the host's /tmp, which the pod has its own of) is not there.
    state = cluster.agent.workdir / f"agent-{NODE}"
    # (A glob, not ls: Debian 12's gVisor answers GNU ls's statx with EINVAL.)
    script = f"id -u; cd /root && echo *; test -e {state} || echo no-state; cat /etc/hostname >/dev/null && echo host"
    cluster.kubectl("apply", "-n", "untrusted", "-f", "-", input=json.dumps(pod("host-cmd", script, image=None)))
    assert cluster.get("pod", "host-cmd", "-n", "untrusted")["spec"]["runtimeClassName"] == "runsc"
    out = finished_logs(cluster, "host-cmd", "untrusted").split()
    assert out == ["65534", "*", "no-state", "host"], out  # /root an empty mask; the state dir not there


def running(c: Cluster, name: str) -> None:
    wait_for(f"pod {name} to run", lambda: c.get("pod", name)["status"].get("phase") == "Running")


@needs("runsc")
def test_kubectl_exec_runs_inside_the_gvisor_sandbox(cluster: Cluster) -> None:
    cluster.apply(pod("exec-gvisor", "sleep 300", "runsc"))
    running(cluster, "exec-gvisor")
    out = cluster.kubectl("exec", "exec-gvisor", "--", "sh", "-c", "dmesg | head -1; echo code-$((6*7))").stdout
    assert "gVisor" in out and "code-42" in out, out
    failed = cluster.kubectl("exec", "exec-gvisor", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3, failed.stderr


@needs("lxc")
def test_kubectl_exec_runs_inside_the_lxc_container(cluster: Cluster) -> None:
    cluster.apply(pod("exec-lxc", "sleep 300", "lxc"))
    running(cluster, "exec-lxc")
    out = cluster.kubectl("exec", "exec-lxc", "--", "sh", "-c", "echo code-$((6*7))").stdout
    assert "code-42" in out, out
