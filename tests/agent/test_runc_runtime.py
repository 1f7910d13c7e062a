"""The runc runtime with a busybox image imported into the store (root, runc, busybox)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime
from sigma.agent.runtime.base import RUNNING, ContainerSpec

from .conftest import busybox_node, make_pod, needs_root, wait_for

RUNC, BUSYBOX = shutil.which("runc"), shutil.which("busybox")
pytestmark = [
    *needs_root,
    pytest.mark.skipif(RUNC is None, reason="runc is not installed (apt package runc)"),
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt package busybox-static)"),
    pytest.mark.e2e,
]


@pytest.fixture
def runc_node(tmp_path: Any, cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    with busybox_node(tmp_path, cgroup_root) as node:
        yield node


def latest(node: NodeRuntime, pod: dict[str, Any]) -> Any:
    runs = [c for c in node.observed() if c.pod_uid == pod["metadata"]["uid"]]
    return max(runs, key=lambda c: c.attempt) if runs else None


def test_busybox_container_runs_and_logs(runc_node: NodeRuntime) -> None:
    pod = make_pod(
        "bb",
        ["sh", "-c", "echo hello from $(cat /proc/1/comm); sleep 30"],
        image="busybox:test",
        limits={"memory": "32Mi", "cpu": "500m"},
    )
    runc_node.sync([pod], time.time())
    c = latest(runc_node, pod)
    assert c.state == RUNNING, c
    assert c.runtime == "runc"
    wait_for(lambda: list(runc_node.logs(pod, "main")))
    assert list(runc_node.logs(pod, "main")) == [b"hello from sh\n"]
    cg = runc_node.cgroups
    assert cg is not None
    rel = f"{cg.pod_path('prod', pod['metadata']['uid'])}/main"
    assert cg.read("memory", rel, "memory.limit_in_bytes") == str(32 * 2**20)
    assert cg.read("cpu", rel, "cpu.cfs_quota_us") == "50000"


def test_busybox_memory_limit_holds(runc_node: NodeRuntime) -> None:
    # dd allocates and fills a 64 MiB buffer: over a 32 MiB limit it must be OOM-killed.
    pod = make_pod(
        "bbhog",
        ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=4"],
        image="busybox:test",
        restart="Never",
        limits={"memory": "32Mi"},
    )
    runc_node.sync([pod], time.time())
    wait_for(lambda: latest(runc_node, pod).state != RUNNING)
    c = latest(runc_node, pod)
    assert (c.reason, c.exit_code) == ("OOMKilled", 137), c


def test_missing_image_is_a_clear_start_error(runc_node: NodeRuntime) -> None:
    pod = make_pod("noimg", ["sh"], image="nosuch:1", restart="Never")
    result = runc_node.sync([pod], time.time())
    status = result.statuses[0].status
    # Like kubelet: the container never ran, so it waits (and is retried) whatever the policy.
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert status["phase"] == "Pending"
    assert waiting["reason"] == "ErrImageNeverPull"
    assert "sigma image import" in waiting["message"]


def test_a_runc_container_joins_the_pods_network_namespace(runc_node: NodeRuntime) -> None:
    # The pod's namespace (as the pod network's sandbox gives it): the container sees its
    # links, none of the host's.
    netns = f"sigma-test-runc-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "pod0", "type", "veth", "peer", "name", "pod1"], check=True)
        runc = runc_node.runtimes["runc"]
        spec = ContainerSpec("netpod", "default", "netpod", "main", 0, ["cat", "/proc/net/dev"],
                             image="busybox:test", log_path=os.path.join(runc_node.log_dir, "netpod.log"),
                             netns_path=f"/run/netns/{netns}")
        runc.start(spec)
        wait_for(lambda: runc.status(spec.id) is not None and runc.status(spec.id).state != RUNNING, timeout=30)
        status = runc.status(spec.id)
        assert status is not None and status.exit_code == 0, status
        with open(spec.log_path) as f:
            rows = [line.split(" F ", 1)[1] for line in f]  # the log's "<time> stdout F <text>"
        interfaces = sorted(row.split(":")[0].strip() for row in rows if ":" in row and "|" not in row)
        assert interfaces == ["lo", "pod0", "pod1"], interfaces
        runc.remove(spec.id)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
