"""The pod sandbox against real runc and real pods: what a process-runtime pod that asks for
root can reach of the host (its own user namespace, the default capabilities and seccomp
allow-list, a read-only host view with the secrets masked, its own /proc), and the files the
agent keeps about a container (root's alone)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.node import NodeRuntime
from sigma.agent.podmanager import BackOff, PodManager
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, NOBODY, capabilities
from sigma.agent.runtime.process import ProcessRuntime
from sigma.agent.runtime.runc import oci_config
from sigma.agent.runtime.seccomp import runtime_default
from sigma.agent.runtime.shimmed import StartFailure

from .conftest import IS_ROOT, make_pod, running_node, wait_for

RUNC, PYTHON = shutil.which("runc"), "/usr/bin/python3"
needs_sandbox = pytest.mark.skipif(not IS_ROOT or RUNC is None or not os.access(PYTHON, os.X_OK),
                                   reason="needs root, runc and a system python")


def _mask(caps: list[str]) -> int:
    return sum(1 << ALL_CAPABILITIES.index(c) for c in caps)


# What the pod reports about itself, as one JSON line: run with the system python.
PROBE = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
args = json.loads(sys.argv[1])
out = {}
def call(name, *a):
    r = getattr(libc, name)(*a)
    return 0 if r == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
def attempt(fn):
    try:
        return fn()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
out["secret"] = attempt(lambda: open(args["secret"]).read())
out["write_root_dir"] = attempt(lambda: open(args["root_dir"] + "/pwned", "w").write("x"))
out["write_etc"] = attempt(lambda: open(args["etc"], "w").write("x"))
out["write_shared_dir"] = attempt(lambda: open(args["shared_dir"] + "/pwned", "w").write("x"))
out["tmp"] = attempt(lambda: open(args["tmp"], "w").write("x"))
out["uid_map"] = open("/proc/self/uid_map").read().split()
status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
out["uid"] = os.getuid()
out["cap_eff"] = int(status["CapEff"], 16)
out["seccomp"] = status["Seccomp"].strip()
out["no_new_privs"] = status["NoNewPrivs"].strip()
cmdlines = []
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        cmdlines.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode())
    except OSError:
        pass
out["procs"] = cmdlines
out["umount_proc"] = call("umount2", b"/proc", 2)  # MNT_DETACH
out["mount"] = call("mount", b"none", b"/mnt", b"tmpfs", 0, None)
out["unshare_user"] = call("unshare", 0x10000000)  # CLONE_NEWUSER
out["keyctl"] = call("syscall", 250, 0, 0, 0, 0)  # x86_64 keyctl(KEYCTL_GET_KEYRING_ID)
out["listings"] = {d: attempt(lambda d=d: sorted(os.listdir(d))) for d in args["listed"]}
print(json.dumps(out), flush=True)
"""


@pytest.fixture
def host_files() -> Iterator[dict[str, Any]]:
    """Outside /tmp (the pod's own): a master's state dir with an agent state dir inside it
    (sigma up's layout), a root-only secret, a root-owned directory, a world-writable one,
    and a path under /etc. All removed afterwards."""
    base = tempfile.mkdtemp(prefix="sigma-sandbox-", dir="/var/tmp")
    etc_target = f"/etc/sigma-sandbox-test-{os.getpid()}"
    tmp_target = f"/tmp/sigma-sandbox-test-{os.getpid()}"
    try:
        os.chmod(base, 0o755)
        master = os.path.join(base, "master")
        os.makedirs(os.path.join(master, "auth"), mode=0o755)
        for name, mode in (("ca.key", 0o600), ("tokens.csv", 0o644)):
            path = os.path.join(master, "auth", name)
            with open(path, "w") as f:
                f.write("secret\n")
            os.chmod(path, mode)
        agent = os.path.join(master, "agent")
        os.makedirs(agent, mode=0o755)
        secret = os.path.join(base, "root-only")
        with open(secret, "w") as f:
            f.write("host secret\n")
        os.chmod(secret, 0o600)
        root_dir = os.path.join(base, "root-owned")
        os.mkdir(root_dir, 0o755)
        shared = os.path.join(base, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        yield {"base": base, "master": master, "agent": agent, "secret": secret, "root_dir": root_dir,
               "shared_dir": shared, "etc": etc_target, "tmp": tmp_target}
    finally:
        shutil.rmtree(base, ignore_errors=True)
        for target in (etc_target, tmp_target):
            if os.path.exists(target):
                os.unlink(target)


@pytest.fixture
def sandbox_node(host_files: dict[str, Any], cgroup_root: CgroupTree) -> Iterator[NodeRuntime]:
    state = host_files["agent"]
    runtime = ProcessRuntime(state, cgroup_root, default_uid=NOBODY)
    assert runtime.sandbox
    with running_node(NodeRuntime(state, {"process": runtime}, cgroup_root, PodManager(BackOff(base=0.3)))) as node:
        yield node


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _report(node: NodeRuntime, pod: dict[str, Any]) -> dict[str, Any]:
    node.sync([pod], time.time())
    line = wait_for(lambda: next((x for x in b"".join(node.logs(pod, "main")).splitlines() if x.startswith(b"{")),
                                 None), timeout=60)
    return dict(json.loads(line))


def _probe_pod(name: str, files: dict[str, Any], **container: Any) -> dict[str, Any]:
    args = {"secret": files["secret"], "root_dir": files["root_dir"], "etc": files["etc"],
            "shared_dir": files["shared_dir"], "tmp": files["tmp"],
            "listed": ["/root", files["master"], files["agent"], os.path.join(files["master"], "auth")]}
    return make_pod(name, [PYTHON, "-c", PROBE, json.dumps(args)], restart="Never", **container)


@pytest.mark.e2e
@pytest.mark.root
@needs_sandbox
@pytest.mark.parametrize("level", ["container", "pod"])
def test_a_root_pod_is_root_only_in_its_own_user_namespace(
    sandbox_node: NodeRuntime, host_files: dict[str, Any], level: str
) -> None:
    pod = _probe_pod("root", host_files)
    if level == "pod":
        pod["spec"]["securityContext"] = {"runAsUser": 0}
    else:
        pod["spec"]["containers"][0]["securityContext"] = {"runAsUser": 0}
    out = _report(sandbox_node, pod)
    # Root in the pod, an unprivileged uid on the host.
    assert out["uid"] == 0
    inside, outside, _count = out["uid_map"]
    assert inside == "0" and int(outside) != 0
    # The host's root-only files, /etc and root-owned directories are out of reach.
    assert out["secret"] == "EACCES"
    assert out["write_root_dir"] == "EROFS" and out["write_etc"] == "EROFS"
    assert not os.path.exists(host_files["etc"])
    assert out["write_shared_dir"] == "EROFS"  # a world-writable host directory too
    assert out["tmp"] == 1 and not os.path.exists(host_files["tmp"])  # /tmp is the pod's own
    # containerd's default capabilities, an allow-list seccomp filter, no_new_privs.
    assert out["cap_eff"] == _mask(DEFAULT_CAPABILITIES)
    assert out["seccomp"] == "2" and out["no_new_privs"] == "1"
    assert out["unshare_user"] == out["mount"] == out["keyctl"] == "EPERM"
    # Its own /proc, which cannot be taken away to show the host's.
    assert out["umount_proc"] == "EPERM"
    (only,) = out["procs"]  # the probe alone: no pytest, no agent, no host process
    assert only.startswith(PYTHON + " -c")
    # /root, the agent's state and the master's state (with its CA key) are empty.
    for listing in out["listings"].values():
        assert listing in ([], "ENOENT"), out["listings"]


@pytest.mark.e2e
@pytest.mark.root
@needs_sandbox
def test_a_nobody_pod_sees_the_host_read_only_and_the_secrets_masked(
    sandbox_node: NodeRuntime, host_files: dict[str, Any]
) -> None:
    out = _report(sandbox_node, _probe_pod("nobody", host_files))
    assert out["uid"] == NOBODY and out["uid_map"][:2] == ["0", "0"]  # not root: the host's nobody
    assert out["cap_eff"] == 0 and out["seccomp"] == "2"
    assert out["write_shared_dir"] == "EROFS" and out["tmp"] == 1
    assert out["listings"][os.path.join(host_files["master"], "auth")] in ([], "ENOENT")  # tokens.csv is 0644
    assert out["unshare_user"] == "EPERM"


@pytest.mark.e2e
@pytest.mark.root
@needs_sandbox
def test_capabilities_added_and_dropped_and_an_unconfined_profile_are_honoured(
    sandbox_node: NodeRuntime, host_files: dict[str, Any]
) -> None:
    sc = {"runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
          "seccompProfile": {"type": "Unconfined"}}
    out = _report(sandbox_node, _probe_pod("caps", host_files, securityContext=sc))
    assert out["cap_eff"] == 1 << 10  # CAP_NET_BIND_SERVICE alone
    assert out["seccomp"] == "0"
    assert out["secret"] == "EACCES" and out["umount_proc"] == "EPERM"  # still no host root


@pytest.mark.e2e
@pytest.mark.root
@needs_sandbox
def test_a_privileged_pod_runs_on_the_host_as_admitted(sandbox_node: NodeRuntime, host_files: dict[str, Any]) -> None:
    out = _report(sandbox_node, _probe_pod("priv", host_files, securityContext={"privileged": True, "runAsUser": 0}))
    assert out["uid"] == 0 and out["uid_map"][:2] == ["0", "0"]
    assert out["secret"] == "host secret\n"  # what privileged means; admission decides who gets it
    assert out["seccomp"] == "0" and out["no_new_privs"] == "0"
    assert out["cap_eff"] & (1 << 21)  # CAP_SYS_ADMIN


@pytest.mark.e2e
@pytest.mark.root
@needs_sandbox
def test_container_files_are_root_only(sandbox_node: NodeRuntime, host_files: dict[str, Any]) -> None:
    pod = make_pod("env", ["sh", "-c", "echo hello"], restart="Never", env=[{"name": "TOKEN", "value": "s3cret"}])
    sandbox_node.sync([pod], time.time())
    wait_for(lambda: b"hello" in b"".join(sandbox_node.logs(pod, "main")))
    runtime = sandbox_node.runtimes["process"]
    assert isinstance(runtime, ProcessRuntime)
    (cid,) = [c.id for c in runtime.list() if c.pod_uid == pod["metadata"]["uid"]]
    cdir = os.path.join(runtime.dir, cid)
    log = sandbox_node._container_spec(pod, pod["spec"]["containers"][0], 0).log_path
    files = [os.path.join(cdir, "spec.json"), os.path.join(cdir, "bundle", "config.json"), log]
    assert any("s3cret" in _read(f) for f in files[:2])
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    for path in (runtime.dir, cdir, os.path.dirname(log)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


def spec(**fields: Any) -> ContainerSpec:
    return ContainerSpec("uid1", "default", "p", "main", 0, ["sh"], **fields)


def test_the_default_profile_allows_what_granted_capabilities_are_for() -> None:
    def allowed(caps: list[str]) -> set[str]:
        return {n for r in runtime_default(caps)["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
                for n in r["names"]}
    assert "mount" not in allowed(DEFAULT_CAPABILITIES) and "chroot" in allowed(DEFAULT_CAPABILITIES)
    assert {"mount", "unshare", "setns"} <= allowed([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    # clone without CAP_SYS_ADMIN: only without namespace flags; clone3 answers ENOSYS.
    rules = runtime_default(DEFAULT_CAPABILITIES)["syscalls"]
    assert any(r["names"] == ["clone"] and r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" for r in rules)
    assert any(r["names"] == ["clone3"] and r["errnoRet"] == 38 for r in rules)


def test_capabilities_follow_add_drop_and_privileged() -> None:
    assert capabilities(spec()) == DEFAULT_CAPABILITIES
    assert capabilities(spec(capabilities_drop=("ALL",), capabilities_add=("NET_ADMIN",))) == ["CAP_NET_ADMIN"]
    assert "CAP_NET_RAW" not in capabilities(spec(capabilities_drop=("NET_RAW",)))
    assert capabilities(spec(privileged=True)) == ALL_CAPABILITIES
    with pytest.raises(StartFailure, match="unknown capability"):
        capabilities(spec(capabilities_add=("NOPE",)))
    # A runc container: the same, and Unconfined or privileged leave seccomp off.
    assert "seccomp" not in oci_config(spec(seccomp_profile="Unconfined"), {}, "")["linux"]
    privileged = oci_config(spec(privileged=True, no_new_privs=False), {}, "")
    assert "seccomp" not in privileged["linux"] and "maskedPaths" not in privileged["linux"]
    with pytest.raises(StartFailure, match="Localhost"):
        oci_config(spec(seccomp_profile="Localhost"), {}, "")
