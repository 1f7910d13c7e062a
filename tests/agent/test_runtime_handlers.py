"""The crun and runsc (gVisor) handlers on a real node runtime (root, busybox image): a pod
runs, its logs and exec work, limits land in its cgroup, and gVisor's host view masks what
the process runtime masks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import ImageStore
from sigma.agent.node import NodeRuntime
from sigma.agent.podmanager import BackOff, PodManager
from sigma.agent.runtime.base import EXITED, RUNNING, ContainerSpec
from sigma.agent.runtime.handlers import CrunRuntime, RunscRuntime
from sigma.agent.runtime.lxc import LxcRuntime
from sigma.agent.runtime.probe_handlers import probe_handlers

from .conftest import make_pod, needs_root, running_node, wait_for
from .imagebuild import busybox_layout

BUSYBOX = shutil.which("busybox")
HANDLERS = probe_handlers(os.geteuid() == 0, shutil.which("runc") is not None) if os.geteuid() == 0 else None
pytestmark = [
    *needs_root,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt package busybox-static)"),
    pytest.mark.e2e,
]


def needs(handler: str) -> pytest.MarkDecorator:
    why = (HANDLERS.missing.get(handler, "") if HANDLERS else "needs root") or f"{handler} cannot run here"
    return pytest.mark.skipif(HANDLERS is None or handler not in HANDLERS.available, reason=why)


@pytest.fixture
def handler_node(tmp_path: Any, cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    assert BUSYBOX is not None and HANDLERS is not None
    busybox_layout(str(tmp_path / "layout"), BUSYBOX)
    images = ImageStore(str(tmp_path / "images"))
    images.import_path(str(tmp_path / "layout"))
    state = str(tmp_path / "state")
    masked = tmp_path / "masked"  # readable by anyone on the host: only the mask hides it
    masked.mkdir(mode=0o755)
    (masked / "secret").write_text("host secret\n")
    os.chmod(masked / "secret", 0o644)
    runtimes: Any = {"crun": CrunRuntime(state, images, cgroup_root),
                     "runsc": RunscRuntime(state, images, cgroup_root, platform=HANDLERS.runsc_platform,
                                           hidden_paths=[str(masked)], network=HANDLERS.runsc_network),
                     "lxc": LxcRuntime(state, images, cgroup_root)}
    with running_node(NodeRuntime(state, runtimes, cgroup_root, PodManager(BackOff(base=0.3)))) as node:
        yield node


def latest(node: NodeRuntime, pod: dict[str, Any]) -> Any:
    runs = [c for c in node.observed() if c.pod_uid == pod["metadata"]["uid"]]
    return max(runs, key=lambda c: c.attempt) if runs else None


def logs(node: NodeRuntime, pod: dict[str, Any]) -> bytes:
    return b"".join(node.logs(pod, "main"))


def with_class(pod: dict[str, Any], name: str) -> dict[str, Any]:
    pod["spec"]["runtimeClassName"] = name
    return pod


@needs("crun")
def test_crun_runs_the_image_with_limits_logs_and_exec(handler_node: NodeRuntime) -> None:
    pod = with_class(make_pod("c1", ["sh", "-c", "echo hello from crun; sleep 30"], image="busybox:test",
                              limits={"memory": "32Mi", "cpu": "500m"}), "crun")
    handler_node.sync([pod], time.time())
    c = latest(handler_node, pod)
    assert (c.state, c.runtime) == (RUNNING, "crun"), c
    wait_for(lambda: logs(handler_node, pod))
    assert logs(handler_node, pod) == b"hello from crun\n"
    cg = handler_node.cgroups
    assert cg is not None
    rel = f"{cg.pod_path('prod', pod['metadata']['uid'])}/main"
    assert cg.read("memory", rel, "memory.limit_in_bytes") == str(32 * 2**20)
    assert handler_node.runtimes["crun"].exec(c.id, ["cat", "/proc/1/comm"], 10) == (0, "sh\n")


@needs("runsc")
def test_runsc_runs_the_image_in_gvisor_as_root_with_logs_and_exec(handler_node: NodeRuntime) -> None:
    # dmesg inside gVisor is the Sentry's own boot log, never the host kernel's.
    pod = with_class(make_pod("g1", ["sh", "-c", "id -u; dmesg | head -1; sleep 30"], image="busybox:test",
                              limits={"memory": "64Mi", "cpu": "500m"}), "runsc")
    handler_node.sync([pod], time.time())
    c = latest(handler_node, pod)
    assert (c.state, c.runtime) == (RUNNING, "runsc"), c
    wait_for(lambda: logs(handler_node, pod).count(b"\n") >= 2, timeout=30)
    uid, first = logs(handler_node, pod).decode().splitlines()[:2]
    assert uid == "0" and "gVisor" in first, first
    code, out = handler_node.runtimes["runsc"].exec(c.id, ["cat", "/proc/version"], 30)
    assert code == 0 and os.uname().release not in out, out  # the Sentry's kernel version, not the host's
    cg = handler_node.cgroups
    assert cg is not None
    rel = f"{cg.pod_path('prod', pod['metadata']['uid'])}/main"
    assert cg.read("memory", rel, "memory.limit_in_bytes") == str(64 * 2**20)  # runsc set the pod's limit


@needs("runsc")
def test_runsc_without_image_runs_over_the_masked_host_view(handler_node: NodeRuntime, tmp_path: Any) -> None:
    secret = tmp_path / "masked" / "secret"
    script = f"id -u; cat {secret} || echo masked; echo x > /etc/sigma-probe || echo read-only"
    pod = with_class(make_pod("g2", ["sh", "-c", script], restart="Never"), "runsc")
    pod["spec"]["containers"][0]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000}
    handler_node.sync([pod], time.time())
    wait_for(lambda: latest(handler_node, pod) is not None and latest(handler_node, pod).state == EXITED,
             timeout=30)
    out = logs(handler_node, pod).decode()
    assert out.splitlines()[0] == "1000"
    assert "host secret" not in out and "masked" in out, out
    assert "read-only" in out and not os.path.exists("/etc/sigma-probe")


@needs("runsc")
def test_runsc_refuses_root_over_the_host_view(handler_node: NodeRuntime) -> None:
    pod = with_class(make_pod("g3", ["id"], restart="Never"), "runsc")
    pod["spec"]["containers"][0]["securityContext"] = {"runAsUser": 0}
    handler_node.sync([pod], time.time())
    c = latest(handler_node, pod)
    assert c.reason == "CreateContainerError" and "uid or gid 0" in c.message, c


@needs("runsc")
def test_runsc_pod_lives_in_its_network_namespace(handler_node: NodeRuntime) -> None:
    netns = f"sigma-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        runsc = handler_node.runtimes["runsc"]
        spec = ContainerSpec("netpod", "default", "netpod", "main", 0, ["cat", "/proc/net/dev"], image="busybox:test",
                             log_path=os.path.join(handler_node.log_dir, "netpod.log"),
                             netns_path=f"/run/netns/{netns}")
        runsc.start(spec)
        wait_for(lambda: runsc.status(spec.id) is not None and runsc.status(spec.id).state == EXITED, timeout=30)
        status = runsc.status(spec.id)
        assert status is not None and status.exit_code == 0, status
        with open(spec.log_path) as f:
            rows = [line.split(" F ", 1)[1] for line in f]  # the log's "<time> stdout F <text>"
        interfaces = [row.split(":")[0].strip() for row in rows if ":" in row and "|" not in row]
        assert interfaces == ["lo"], interfaces  # the namespace's only link, none of the host's
        runsc.remove(spec.id)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def runsc_processes(container_id: str) -> list[int]:
    """Host processes of one gVisor container (the sandbox and its gofer name it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if "runsc" in cmdline and container_id in cmdline:
            found.append(int(pid))
    return found


@needs("runsc")
def test_runsc_crash_fails_the_container_and_leaves_nothing(handler_node: NodeRuntime) -> None:
    pod = with_class(make_pod("g4", ["sleep", "300"], image="busybox:test", restart="Never"), "runsc")
    handler_node.sync([pod], time.time())
    c = latest(handler_node, pod)
    assert c.state == RUNNING and c.pid, c
    os.kill(c.pid, 9)  # the sandbox (the Sentry) dies under the pod
    wait_for(lambda: latest(handler_node, pod).state == EXITED, timeout=30)
    c = latest(handler_node, pod)
    assert (c.reason, c.exit_code) == ("Error", 137), c
    wait_for(lambda: not runsc_processes(c.id), timeout=30)  # the shim's `runsc delete --force` ran
    handler_node.runtimes["runsc"].remove(c.id)
    assert not os.path.exists(os.path.join(handler_node.runtimes["runsc"].runc_root, c.id))


@needs("lxc")
def test_lxc_runs_the_image_with_limits_logs_exec_and_exit_code(handler_node: NodeRuntime) -> None:
    pod = with_class(make_pod("l1", ["sh", "-c", "echo hello from lxc; sleep 30"],
                              image="busybox:test", limits={"memory": "32Mi", "cpu": "500m"}), "lxc")
    handler_node.sync([pod], time.time())
    c = latest(handler_node, pod)
    assert (c.state, c.runtime) == (RUNNING, "lxc"), c
    wait_for(lambda: logs(handler_node, pod))
    assert logs(handler_node, pod) == b"hello from lxc\n"
    cg = handler_node.cgroups
    assert cg is not None
    rel = f"{cg.pod_path('prod', pod['metadata']['uid'])}/main"
    assert cg.read("memory", rel, "memory.limit_in_bytes") == str(32 * 2**20)
    code, out = handler_node.runtimes["lxc"].exec(c.id, ["cat", "/proc/1/cmdline"], 10)
    assert (code, out) == (0, "init\0")  # in the container's pid namespace: LXC's init is pid 1
    handler_node.runtimes["lxc"].stop(c.id, 2)
    wait_for(lambda: latest(handler_node, pod).state == EXITED, timeout=20)
    failing = with_class(make_pod("l2", ["sh", "-c", "exit 3"], image="busybox:test", restart="Never"), "lxc")
    handler_node.sync([failing], time.time())
    wait_for(lambda: latest(handler_node, failing).state == EXITED, timeout=20)
    assert (latest(handler_node, failing).exit_code, latest(handler_node, failing).reason) == (3, "Error")
