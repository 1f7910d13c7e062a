"""Fixtures for agent tests: a NodeRuntime on a private cgroup subtree (sigma-test-<random>)
and a private state directory, torn down (processes, cgroups) even when a test fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import ImageStore
from sigma.agent.node import NodeRuntime
from sigma.agent.podmanager import BackOff, PodManager
from sigma.agent.runtime.process import ProcessRuntime
from sigma.agent.runtime.runc import RuncRuntime

from .imagebuild import busybox_layout

IS_ROOT = os.geteuid() == 0
needs_root = [pytest.mark.root, pytest.mark.skipif(not IS_ROOT, reason="needs root (cgroups, namespaces)")]


def make_pod(
    name: str,
    command: list[str],
    *,
    uid: str | None = None,
    restart: str = "Always",
    priority: int | None = None,
    labels: dict[str, str] | None = None,
    limits: dict[str, Any] | None = None,
    requests: dict[str, Any] | None = None,
    **container: Any,
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "command": command, **container}
    if limits or requests:
        c["resources"] = {"limits": limits or {}, "requests": requests or {}}
    spec: dict[str, Any] = {"containers": [c], "restartPolicy": restart, "terminationGracePeriodSeconds": 2}
    if priority is not None:
        spec["priority"] = priority
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid or uuid.uuid4().hex[:12],
            "labels": labels or {},
        },
        "spec": spec,
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


@pytest.fixture
def cgroup_root() -> Iterator[CgroupTree]:
    tree = CgroupTree(root=f"sigma-test-{uuid.uuid4().hex[:8]}")
    try:
        yield tree
    finally:
        tree.remove_all()


@contextlib.contextmanager
def running_node(node: NodeRuntime) -> Iterator[NodeRuntime]:
    """Yield the node; afterwards remove every container its runtimes still hold."""
    try:
        yield node
    finally:
        for rt in node.runtimes.values():
            for c in rt.list():
                rt.remove(c.id)


@pytest.fixture
def node(tmp_path: Any, cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    runtime = ProcessRuntime(str(tmp_path / "state"), cgroup_root)
    node = NodeRuntime(
        str(tmp_path / "state"),
        {"process": runtime},
        cgroup_root,
        PodManager(BackOff(base=0.3, cap=2.0)),
        log_max_bytes=64 * 1024,
    )
    with running_node(node):
        yield node


@contextlib.contextmanager
def busybox_node(tmp_path: Any, cgroup_root: CgroupTree, process_uid: int | None = None) -> Iterator[NodeRuntime]:
    """A node with the runc runtime and a busybox image imported into its store, beside the
    process runtime (which runs as ``process_uid`` when given)."""
    busybox = shutil.which("busybox")
    assert busybox is not None
    busybox_layout(str(tmp_path / "layout"), busybox)
    images = ImageStore(str(tmp_path / "images"))
    images.import_path(str(tmp_path / "layout"))
    state = str(tmp_path / "state")
    runtimes: Any = {"runc": RuncRuntime(state, images, cgroup_root),
                     "process": ProcessRuntime(state, cgroup_root, default_uid=process_uid)}
    with running_node(NodeRuntime(state, runtimes, cgroup_root, PodManager(BackOff(base=0.3)))) as node:
        yield node
