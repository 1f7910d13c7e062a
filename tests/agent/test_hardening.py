"""Hardened containers: the OCI config runc gets, what a busybox container sees of itself, and
the process runtime dropping root."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    NOBODY,
    USERNS_HOST_BASE,
    security_fields,
)
from sigma.agent.runtime.process import ProcessRuntime
from sigma.agent.runtime.runc import oci_config
from sigma.agent.runtime.shimmed import StartFailure

from .conftest import IS_ROOT, busybox_node, make_pod, wait_for

RUNC, BUSYBOX = shutil.which("runc"), shutil.which("busybox")


def spec(**fields: Any) -> ContainerSpec:
    return ContainerSpec("uid1", "default", "p", "main", 0, ["sh"], **fields)


def test_every_container_gets_no_new_privs_default_capabilities_seccomp_and_masked_proc() -> None:
    config = oci_config(spec(), {}, "")
    process, linux = config["process"], config["linux"]
    assert process["noNewPrivileges"] is True
    assert process["capabilities"]["bounding"] == DEFAULT_CAPABILITIES
    assert process["capabilities"]["effective"] == DEFAULT_CAPABILITIES
    # An allow-list: what it does not name fails with EPERM.
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO" and linux["seccomp"]["defaultErrnoRet"] == 1
    allowed = {n for rule in linux["seccomp"]["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
               for n in rule["names"]}
    assert {"read", "write", "execve", "openat"} <= allowed
    assert not {"mount", "umount2", "unshare", "setns", "kexec_load", "bpf", "keyctl", "init_module"} & allowed
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert config["root"]["readonly"] is False
    assert process["user"] == {"uid": 0, "gid": 0}
    assert all(ns["type"] != "user" for ns in linux["namespaces"])


def test_the_security_context_asks_for_ids_a_read_only_rootfs_and_a_user_namespace() -> None:
    pod = {"metadata": {"annotations": {}}, "spec": {"hostUsers": False, "securityContext": {"runAsUser": 1000}}}
    fields = security_fields(pod, {"securityContext": {"readOnlyRootFilesystem": True, "runAsGroup": 2000}})
    assert fields == {"run_as_user": 1000, "run_as_group": 2000, "run_as_non_root": None, "read_only_root": True,
                      "user_namespace": True, "no_new_privs": True, "privileged": False,
                      "seccomp_profile": "RuntimeDefault", "capabilities_add": (), "capabilities_drop": ()}
    config = oci_config(spec(**fields), {}, "")
    assert config["root"]["readonly"] is True
    assert config["process"]["user"] == {"uid": 1000, "gid": 2000}
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert config["linux"]["uidMappings"][0]["hostID"] > 0


def test_privilege_escalation_is_off_unless_the_container_asks_for_it() -> None:
    pod: dict[str, Any] = {"metadata": {}, "spec": {"securityContext": {"runAsNonRoot": True}}}
    assert security_fields(pod, {})["no_new_privs"] is True
    assert security_fields(pod, {})["run_as_non_root"] is True
    assert security_fields(pod, {"securityContext": {"allowPrivilegeEscalation": True}})["no_new_privs"] is False
    assert security_fields(pod, {"securityContext": {"privileged": True}})["no_new_privs"] is False
    assert oci_config(spec(no_new_privs=False), {}, "")["process"]["noNewPrivileges"] is False
    # runAsUser: true is no user id (bool is an int to Python).
    assert security_fields({"spec": {"securityContext": {"runAsUser": True}}}, {})["run_as_user"] is None


@pytest.mark.e2e
def test_the_process_runtime_drops_to_the_default_user_unless_the_pod_names_one(tmp_path: Any) -> None:
    runtime = ProcessRuntime(str(tmp_path), None, namespaces=False, default_uid=NOBODY)
    nobody = runtime._shim_spec(spec(), str(tmp_path))
    group = runtime._shim_spec(spec(run_as_group=1234), str(tmp_path))
    assert nobody["no_new_privs"] is True
    if os.geteuid() == 0:
        assert nobody["user"] == {"uid": NOBODY, "gid": NOBODY}
        # Without the sandbox (no namespaces here), root would be the host's: refused.
        with pytest.raises(StartFailure, match="CreateContainerError"):
            runtime._shim_spec(spec(run_as_user=0), str(tmp_path))
        assert group["user"] == {"uid": NOBODY, "gid": 1234}
        # The agent's directory may be closed to nobody: a container without workingDir starts at /.
        assert nobody["cwd"] == "/"
        assert runtime._shim_spec(spec(working_dir="/tmp"), str(tmp_path))["cwd"] == "/tmp"
    else:
        assert nobody["user"] is None  # without root there is nothing to drop


@pytest.mark.e2e
@pytest.mark.skipif(not IS_ROOT, reason="the runtime drops to nobody only as root")
def test_run_as_non_root_with_root_does_not_start(tmp_path: Any) -> None:
    runtime = ProcessRuntime(str(tmp_path), None, namespaces=False, default_uid=NOBODY)
    status = runtime.start(spec(run_as_user=0, run_as_non_root=True))
    assert status.reason == "CreateContainerConfigError"
    assert "runAsNonRoot and image will run as root" in status.message
    # Nobody is not root: the same promise with the default user starts.
    fine = ContainerSpec("uid2", "default", "q", "main", 0, ["true"], log_path=str(tmp_path / "q.log"),
                         run_as_non_root=True)
    try:
        assert runtime.start(fine).reason != "CreateContainerConfigError"
    finally:
        runtime.remove(fine.id)
    runtime.remove(spec().id)
    with pytest.raises(Exception, match="CreateContainerConfigError"):
        oci_config(spec(run_as_non_root=True), {}, "")  # runc: the image runs as root


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
    assert cap_eff == sum(1 << ALL_CAPABILITIES.index(c) for c in DEFAULT_CAPABILITIES)  # containerd's set
    assert "mount: permission denied" in out.lower() or "operation not permitted" in out.lower()  # refused
    assert "Read-only file system" in out


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _running_pid(node: NodeRuntime, pod: dict[str, Any]) -> int:
    """The container's process once it runs the pod's command: before its execve the runtime's
    init (already switched to the pod's user) still holds capabilities it is about to lose."""
    node.sync([pod], time.time())
    uid = pod["metadata"]["uid"]
    command = pod["spec"]["containers"][0]["command"][0]

    def running() -> int | None:
        pid = next((c.pid for c in node.runtimes["process"].list() if c.pod_uid == uid and c.state == "running"),
                   None)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
        except (OSError, TypeError):
            return None
        return pid if pid and argv0.rsplit("/", 1)[-1] == command else None

    return int(wait_for(running))


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_the_process_runtime_runs_as_nobody_without_groups_or_new_privileges(node: NodeRuntime) -> None:
    status = _status(_running_pid(node, make_pod("who", ["sleep", "30"])))
    assert status["Uid"].split() == [str(NOBODY)] * 4  # real, effective, saved, filesystem
    assert status["Gid"].split() == [str(NOBODY)] * 4
    assert status["Groups"].strip() == ""
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapEff"], 16) == 0


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_the_pod_names_its_user_and_group(node: NodeRuntime) -> None:
    ids = make_pod("ids", ["sleep", "30"], securityContext={"runAsUser": 1000, "runAsGroup": 2000})
    status = _status(_running_pid(node, ids))
    assert status["Uid"].split()[:2] == ["1000", "1000"] and status["Gid"].split()[:2] == ["2000", "2000"]
    assert status["Groups"].strip() == ""
    root = make_pod("root", ["sleep", "30"])
    root["spec"]["securityContext"] = {"runAsUser": 0}  # the pod's, not the container's
    status = _status(_running_pid(node, root))
    # Root in the pod's user namespace, an unprivileged uid on the host.
    assert status["Uid"].split()[:2] == [str(USERNS_HOST_BASE)] * 2 and status["NoNewPrivs"] == "1"


@pytest.fixture
def setuid_id() -> Iterator[str]:
    """A setuid-root copy of `id` in a directory pods see (/tmp is their own), removed
    afterwards."""
    directory = tempfile.mkdtemp(prefix="sigma-suid-", dir="/var/tmp")
    try:
        os.chmod(directory, 0o755)
        path = os.path.join(directory, "id")
        shutil.copy(shutil.which("id") or "/usr/bin/id", path)
        os.chown(path, 0, 0)
        os.chmod(path, 0o4755)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_a_container_trying_to_raise_its_privileges_fails(node: NodeRuntime, setuid_id: str) -> None:
    script = (f"{setuid_id} -u; su -c id root </dev/null 2>&1; echo su=$?; "
              "echo -1000 > /proc/self/oom_score_adj 2>&1; echo oom=$?; echo done; sleep 30")
    out = _output(node, make_pod("climb", ["sh", "-c", script])).splitlines()
    assert out[0] == str(NOBODY)  # the setuid bit grants nothing (no_new_privs, a nosuid view)
    assert "su=0" not in out and "uid=0" not in " ".join(out)
    assert "oom=0" not in out  # lowering its OOM score needs a capability it lacks
    # A pod that may escalate loses no_new_privs, but the host's setuid binaries still grant
    # nothing: in the sandbox the host's files are mounted nosuid.
    allowed = make_pod("allowed", ["sh", "-c", f"grep NoNewPrivs /proc/self/status; {setuid_id} -u; echo done; "
                                   "sleep 30"], securityContext={"allowPrivilegeEscalation": True})
    lines = _output(node, allowed).splitlines()
    assert lines[0] == "NoNewPrivs:\t0"
    assert lines[1] == str(NOBODY)


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")
@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_a_command_nobody_may_not_reach_fails_to_start_saying_so(node: NodeRuntime) -> None:
    # 0700: root's alone, like the venv under /root; not under /tmp, which is the pod's own.
    closed = tempfile.mkdtemp(prefix="sigma-closed-", dir="/var/tmp")
    try:
        script = os.path.join(closed, "hello")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho hello\n")
        os.chmod(script, 0o755)
        pod = make_pod("closed", [script], restart="Never")
        node.sync([pod], time.time())
        failed = wait_for(lambda: next((c for c in node.runtimes["process"].list()
                                        if c.pod_uid == pod["metadata"]["uid"] and c.state == "exited"), None))
        assert failed.reason == "StartError"
        assert failed.message == f'exec: "{script}": permission denied (running as uid {NOBODY})'
    finally:
        shutil.rmtree(closed, ignore_errors=True)
