"""The `process` runtime: a host command in the pod's cgroups and, as root, in new
pid/mount/uts/ipc namespaces (the shim does the unshare). It is the default for pods with
no image, and the fallback that still works without root or cgroups (then without limits).

A host command sees the host's filesystem, so the agent runs it as an unprivileged user
(``default_uid``, nobody) with no supplementary groups and no_new_privs, unless the pod's
securityContext asks otherwise (hardening.py) and its namespace's pod-security level let it
(sigma.api.podsecurity). Its working directory defaults to "/" then, as a container's does
without an image WORKDIR: the agent's own directory may be closed to that user. The runtime
creates nothing the container opens itself (the shim, as root, writes its logs through
pipes), so there is nothing to chown, and a workingDir the pod names is never chowned: it
is a host path, and handing it to the pod's user would be an escalation of its own.
"""

from __future__ import annotations

import os
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import check_non_root
from sigma.agent.runtime.shimmed import ShimRuntime


class ProcessRuntime(ShimRuntime):
    name = "process"

    def __init__(
        self, state_dir: str, cgroups: CgroupTree | None = None, namespaces: bool | None = None,
        default_uid: int | None = None,
    ) -> None:
        """``default_uid``: the user (and group) a pod runs as when its securityContext names
        none (the agent passes 65534, nobody); None keeps the agent's own user."""
        super().__init__(state_dir)
        self.default_uid = default_uid
        self.cgroups = cgroups
        self.namespaces = os.geteuid() == 0 if namespaces is None else namespaces

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        user = self._user(spec)  # first: a refusal (runAsNonRoot) must not leave a cgroup behind
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
