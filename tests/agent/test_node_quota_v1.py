"""On cgroup v1 a container's CPU quota may not exceed its pod's: under a suppressed batch
parent the pod's quota was lowered (CgroupTree._set_quota), and the container's must follow,
or runc fails the start with EINVAL."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime


class StrictV1(CgroupTree):
    """A directory that mimics cgroup v1 mounts, and refuses (EINVAL) a cfs quota above the
    parent's, as the kernel does."""

    def _write(self, controller: str, rel: str, filename: str, value: str) -> None:
        if filename == "cpu.cfs_quota_us" and int(value) > 0:
            parent = self.cpu_quota_millis(os.path.dirname(rel))
            if parent is not None and int(value) > parent * 100:
                raise OSError(errno.EINVAL, "Invalid argument")
        super()._write(controller, rel, filename, value)


def batch_pod() -> dict[str, Any]:
    return {"metadata": {"name": "crunch", "namespace": "default", "uid": "u1",
                         "labels": {"sigma.io/qos": "BE"}},
            "spec": {"priorityClassName": "sigma-batch", "containers": [{
                "name": "main", "command": ["true"],
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}}}]}}


def test_a_batch_container_under_a_suppressed_parent_asks_for_no_more_than_its_pod(tmp_path: Path) -> None:
    for controller in ("cpu", "cpuacct", "memory", "pids", "freezer"):
        (tmp_path / controller).mkdir()
    tree = StrictV1(root="sigma", mount=str(tmp_path))
    assert tree.version == 1
    tree.setup()
    tree.set_batch_cpu_quota(200)  # the QoS loop squeezed batch to 200m
    node = NodeRuntime(str(tmp_path / "state"), {}, tree)
    try:
        spec = node._container_spec(batch_pod(), batch_pod()["spec"]["containers"][0], 0)
    finally:
        node.close()
    assert tree.cpu_quota_millis(spec.cgroup_parent) == 200  # the pod took its parent's
    assert spec.cpu_limit_millis == 200  # and so does the container runc creates under it
