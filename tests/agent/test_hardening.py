"""Hardened containers: the OCI config runc gets, what a busybox container sees of itself, and
the process runtime dropping root."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import NOBODY, security_fields
from sigma.agent.runtime.process import ProcessRuntime
from sigma.agent.runtime.runc import oci_config

from .conftest import IS_ROOT, busybox_node, make_pod, wait_for

RUNC, BUSYBOX = shutil.which("runc"), shutil.which("busybox")


def spec(**fields: Any) -> ContainerSpec:
    return ContainerSpec("uid1", "default", "p", "main", 0, ["sh"], **fields)


def test_every_container_gets_no_new_privs_few_capabilities_seccomp_and_masked_proc() -> None:
    config = oci_config(spec(), {}, "")
    process, linux = config["process"], config["linux"]
    assert process["noNewPrivileges"] is True
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["bounding"]
    assert len(process["capabilities"]["effective"]) <= 10
    assert {"mount", "ptrace", "kexec_load", "bpf", "unshare", "keyctl"} <= set(
        linux["seccomp"]["syscalls"][0]["names"])
    assert linux["seccomp"]["syscalls"][0]["action"] == "SCMP_ACT_ERRNO"
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert config["root"]["readonly"] is False
    assert process["user"] == {"uid": 0, "gid": 0}
    assert all(ns["type"] != "user" for ns in linux["namespaces"])


def test_the_security_context_asks_for_ids_a_read_only_rootfs_and_a_user_namespace() -> None:
    pod = {"metadata": {"annotations": {}}, "spec": {"hostUsers": False, "securityContext": {"runAsUser": 1000}}}
    fields = security_fields(pod, {"securityContext": {"readOnlyRootFilesystem": True, "runAsGroup": 2000}})
    assert fields == {"run_as_user": 1000, "run_as_group": 2000, "read_only_root": True, "user_namespace": True}
    config = oci_config(spec(**fields), {}, "")
    assert config["root"]["readonly"] is True
    assert config["process"]["user"] == {"uid": 1000, "gid": 2000}
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert config["linux"]["uidMappings"][0]["hostID"] > 0


def test_the_process_runtime_drops_to_the_default_user_unless_the_pod_names_one(tmp_path: Any) -> None:
    runtime = ProcessRuntime(str(tmp_path), None, namespaces=False, default_uid=NOBODY)
    user = runtime._shim_spec(spec(), str(tmp_path))["user"]
    root = runtime._shim_spec(spec(run_as_user=0), str(tmp_path))["user"]
    if os.geteuid() == 0:
        assert user == {"uid": NOBODY, "gid": NOBODY} and root == {"uid": 0, "gid": 0}
    else:
        assert user is None  # without root there is nothing to drop


@pytest.fixture
def node(tmp_path: Any, cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    with busybox_node(tmp_path, cgroup_root, process_uid=NOBODY) as node:
        yield node


def _output(node: NodeRuntime, pod: dict[str, Any]) -> str:
    node.sync([pod], time.time())
    wait_for(lambda: b"done" in b"".join(node.logs(pod, "main")))
    return b"".join(node.logs(pod, "main")).decode()


@pytest.mark.skipif(RUNC is None or BUSYBOX is None, reason="needs runc and busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_inside_a_runc_container_no_new_privs_is_set_and_capabilities_are_few(node: NodeRuntime) -> None:
    pod = make_pod("hard", ["sh", "-c", "grep -E 'NoNewPrivs|CapEff|Seccomp:' /proc/self/status; "
                            "mount -t tmpfs x /mnt 2>&1 || true; touch /ro 2>&1 || true; echo done; sleep 30"],
                   image="busybox:test", securityContext={"readOnlyRootFilesystem": True})
    out = _output(node, pod)
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out  # filter mode
    cap_eff = int(out.split("CapEff:\t")[1].split()[0], 16)
    assert cap_eff & (1 << 21) == 0  # no CAP_SYS_ADMIN
    assert "mount: permission denied" in out.lower() or "operation not permitted" in out.lower()  # refused
    assert "Read-only file system" in out


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_the_process_runtime_runs_as_nobody_by_default(node: NodeRuntime) -> None:
    assert BUSYBOX is not None
    pod = make_pod("who", [BUSYBOX, "sh", "-c", f"{BUSYBOX} id -u; echo done; sleep 30"])
    assert _output(node, pod).splitlines()[0] == str(NOBODY)
    root = make_pod("root", [BUSYBOX, "sh", "-c", f"{BUSYBOX} id -u; echo done; sleep 30"],
                    securityContext={"runAsUser": 0})
    assert _output(node, root).splitlines()[0] == "0"
