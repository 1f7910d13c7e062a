"""Runtime.exec (exec probes): a command inside a running container, for the runc runtime,
the sandboxed process runtime and an unsandboxed (privileged) process container."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime
from sigma.agent.runtime.base import RUNNING, ContainerStatus

from .conftest import busybox_node, make_pod, needs_root, wait_for

pytestmark = [
    pytest.mark.e2e, *needs_root,
    pytest.mark.skipif(shutil.which("runc") is None or shutil.which("busybox") is None,
                       reason="needs runc and busybox-static"),
]


@pytest.fixture
def bb_node(tmp_path: Any, cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    with busybox_node(tmp_path, cgroup_root, process_uid=65534) as node:
        yield node


def running(node: NodeRuntime, pod: dict[str, Any]) -> ContainerStatus:
    def find() -> ContainerStatus | None:
        node.sync([pod], time.time())
        return next((c for c in node.observed() if c.pod_uid == pod["metadata"]["uid"] and c.state == RUNNING),
                    None)

    found: ContainerStatus = wait_for(find)
    return found


POD_KINDS = {
    "runc": {"image": "busybox:test"},
    "sandboxed-process": {},
    "privileged-process": {"securityContext": {"privileged": True}},
}


@pytest.mark.parametrize("kind", list(POD_KINDS))
def test_exec_runs_inside_the_container_and_reports_exit_codes(bb_node: NodeRuntime, kind: str,
                                                                tmp_path: Any) -> None:
    marker = f"/tmp/inside-{kind}"  # the container's private /tmp (runc, sandbox) or a host path
    pod = make_pod(f"ex-{kind}", ["sh", "-c", f"echo here > {marker}; exec sleep 60"],
                   env=[{"name": "GREETING", "value": "hi"}], **POD_KINDS[kind])
    c = running(bb_node, pod)
    runtime = bb_node.runtimes[c.runtime]
    wait_for(lambda: runtime.exec(c.id, ["cat", marker], 5)[0] == 0)
    code, out = runtime.exec(c.id, ["sh", "-c", "echo $GREETING; cat " + marker], 5)
    assert (code, out.split()) == (0, ["hi", "here"])
    assert runtime.exec(c.id, ["sh", "-c", "exit 3"], 5)[0] == 3
    if kind != "privileged-process":
        assert not os.path.exists(marker)  # it ran in the container's own filesystem
    else:
        os.unlink(marker)
    if kind == "sandboxed-process":
        assert runtime.exec(c.id, ["sh", "-c", "id -u"], 5)[1].strip() in ("65534", "")  # the pod's user


@pytest.mark.parametrize("kind", ["runc", "privileged-process"])
def test_exec_past_its_timeout_is_killed(bb_node: NodeRuntime, kind: str) -> None:
    pod = make_pod(f"slow-{kind}", ["sleep", "60"], **POD_KINDS[kind])
    c = running(bb_node, pod)
    runtime = bb_node.runtimes[c.runtime]
    with pytest.raises(TimeoutError):
        runtime.exec(c.id, ["sleep", "30"], 1)
    # Nothing of the probe command is left: only the container's own process is in its cgroup.
    group = bb_node.pod_cgroup(c.pod_uid)
    assert group is not None
    assert bb_node.cgroups is not None

    def leftovers() -> list[str]:
        out = []
        top = next(p for p in (f"/sys/fs/cgroup/cpu/{group}", f"/sys/fs/cgroup/{group}") if os.path.isdir(p))
        for root, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    out += [p for p in f.read().split() if p]
        return out

    wait_for(lambda: len(leftovers()) == 1, timeout=10)


def test_exec_in_a_stopped_container_is_an_error(bb_node: NodeRuntime) -> None:
    pod = make_pod("done", ["true"], restart="Never")
    bb_node.sync([pod], time.time())
    c = wait_for(lambda: next((c for c in bb_node.observed() if c.pod_uid == pod["metadata"]["uid"]
                               and c.state != RUNNING), None))
    with pytest.raises(OSError):
        bb_node.runtimes[c.runtime].exec(c.id, ["true"], 1)
