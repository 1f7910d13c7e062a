"""The `process` runtime: a host command in the pod's cgroups and, as root, in a sandbox. It
is the default for pods with no image, and the fallback that still works without root or
cgroups (then without limits or namespaces).

As root with runc installed, a pod runs in the sandbox of sandbox.py: runc runs the host
command in a read-only view of the host with the agent's and master's state, the image
store, /root and /home masked, a private /tmp and /dev, its own pid, mount, uts and ipc
namespaces and /proc, the default capabilities and seccomp profile, and, when it runs as
root, a user namespace that makes its root an unprivileged host uid. Only a privileged pod
(``privileged: true``, which admission allows only in a privileged namespace) runs the old
way: the host's own filesystem, in new pid/mount/uts/ipc namespaces the shim unshares.
Without runc the same unshare path runs unprivileged pods; a pod that would run as root is
refused then (CreateContainerError): root on the host is never what an unprivileged pod gets.

A host command sees the host's files, so the agent runs it as an unprivileged user
(``default_uid``, nobody) with no supplementary groups and no_new_privs, unless the pod's
securityContext asks otherwise (hardening.py) and its namespace's pod-security level let it
(sigma.api.podsecurity). Its working directory defaults to "/" then, as a container's does
without an image WORKDIR: the agent's own directory may be closed to that user. The runtime
creates nothing the container opens itself (the shim, as root, writes its logs through
pipes), so there is nothing to chown, and a workingDir the pod names is never chowned: it
is a host path, and handing it to the pod's user would be an escalation of its own.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import DEFAULT_ROOT as IMAGE_ROOT
from sigma.agent.podspec import Resources
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import check_non_root
from sigma.agent.runtime.mountpoints import ensure_mount_points, host_only_token
from sigma.agent.runtime.sandbox import (
    HIDDEN_PATHS,
    master_state_above,
    placeholder_rootfs,
    sandbox_config,
    start_error,
)
from sigma.agent.runtime.shimmed import ShimRuntime, StartFailure, private_dir, write_private

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"  # skipped outside the sandbox


class ProcessRuntime(ShimRuntime):
    name = "process"

    def __init__(
        self, state_dir: str, cgroups: CgroupTree | None = None, namespaces: bool | None = None,
        default_uid: int | None = None, runc: str = "runc", hidden_paths: list[str] | None = None,
    ) -> None:
        """``default_uid``: the user (and group) a pod runs as when its securityContext names
        none (the agent passes 65534, nobody); None keeps the agent's own user (root in the
        sandbox's user namespace, when the agent is root). ``hidden_paths``: directories the
        sandbox masks besides HIDDEN_PATHS, the state directory and the master's above it."""
        super().__init__(state_dir)
        self.default_uid = default_uid
        self.cgroups = cgroups
        self.namespaces = os.geteuid() == 0 if namespaces is None else namespaces
        runc_path = shutil.which(runc)
        self.runc = runc_path or runc
        # The sandbox needs root (namespaces), runc and the shared empty rootfs directory.
        self.sandbox = bool(self.namespaces and os.geteuid() == 0 and runc_path and placeholder_rootfs())
        self.runc_root = os.path.join(state_dir, "process-runc")
        self.hidden = [*HIDDEN_PATHS, IMAGE_ROOT, os.path.abspath(state_dir), *master_state_above(state_dir),
                       *(hidden_paths or [])]

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        user = self._user(spec)  # first: a refusal (runAsNonRoot) must not leave a cgroup behind
        if self.sandbox and not spec.privileged:
            return self._sandboxed(spec, cdir, user)
        if not host_only_token(spec.volume_mounts, SA_MOUNT_PATH):  # the token's is left out below
            raise StartFailure("CreateContainerError", "volumes need the pod sandbox (root and runc, and "
                               "not privileged: a privileged process pod sees the host's own files)")
        if os.geteuid() == 0 and not spec.privileged and (user is None or 0 in (user["uid"], user["gid"])):
            raise StartFailure("CreateContainerError",
                               "running as root needs the pod sandbox (root, runc and namespaces), which "
                               "this node cannot give: set securityContext.runAsUser and runAsGroup to "
                               "non-root ids")
        procs: list[str] = []
        oom_counter = ""
        if self.cgroups is not None and self.cgroups.available and spec.cgroup_parent:
            # The limits sit on a container-level group: v1 counts oom_kill per group, not
            # hierarchically, so the shim reads the counter of the group that hits the limit.
            res = Resources(spec.cpu_request_millis, spec.cpu_limit_millis, 0, spec.memory_limit_bytes)
            rel = self.cgroups.ensure_container(spec.cgroup_parent, spec.name, res, spec.cpuset)
            procs, oom_counter = self.cgroups.procs_files(rel), self.cgroups.oom_counter(rel)
        return {
            "mode": "process",
            "argv": [*spec.command, *spec.args],
            "env": spec.env,
            "cwd": spec.working_dir or ("/" if user is not None else None),
            "cgroup_procs": procs,
            "oom_counter": oom_counter,
            "oom_score_adj": spec.oom_score_adj,
            "namespaces": self.namespaces,
            "hostname": spec.pod_name,
            "user": user,
            "no_new_privs": spec.no_new_privs,
            "netns": spec.netns_path,  # the shim joins it before the container starts
        }

    def _sandboxed(self, spec: ContainerSpec, cdir: str, user: dict[str, int] | None) -> dict[str, Any]:
        uid, gid = (user["uid"], user["gid"]) if user is not None else (0, 0)
        problem = start_error(spec, uid, gid, self.hidden)
        if problem:
            raise StartFailure("StartError", problem)
        rel = f"{spec.cgroup_parent}/{spec.name}" if spec.cgroup_parent and self.cgroups is not None else ""
        bundle = os.path.join(cdir, "bundle")
        private_dir(bundle)
        private_dir(self.runc_root)
        ensure_mount_points(spec.volume_mounts)  # the host view is read-only: runc cannot make them
        config = sandbox_config(spec, uid, gid, rel, self.hidden)
        write_private(os.path.join(bundle, "config.json"), json.dumps(config, indent=1))
        return {
            "mode": "runc",
            "runc": [self.runc, "--root", self.runc_root],
            "runc_id": spec.id,
            "bundle": bundle,
            "oom_counter": self.cgroups.oom_counter(rel) if rel and self.cgroups is not None else "",
        }

    def _user(self, spec: ContainerSpec) -> dict[str, int] | None:
        """The ids to drop to before exec: runAsUser/runAsGroup, else the default user and its
        group (nobody:nogroup share 65534). None runs the container as the agent's own user:
        when the agent is not root (it cannot change user) or nothing asks for a change."""
        euid = os.geteuid()
        uid = spec.run_as_user if spec.run_as_user is not None else self.default_uid
        if euid != 0 or (uid is None and spec.run_as_group is None):
            check_non_root(spec, euid)
            return None
        uid = 0 if uid is None else uid
        check_non_root(spec, uid)
        return {"uid": uid, "gid": spec.run_as_group if spec.run_as_group is not None else uid}
