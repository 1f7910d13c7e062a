"""The `process` runtime: a host command in the pod's cgroups and, as root, in new
pid/mount/uts/ipc namespaces (the shim does the unshare). It is the default for pods with
no image, and the fallback that still works without root or cgroups (then without limits)."""

from __future__ import annotations

import os
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.shimmed import ShimRuntime


class ProcessRuntime(ShimRuntime):
    name = "process"

    def __init__(
        self, state_dir: str, cgroups: CgroupTree | None = None, namespaces: bool | None = None,
        default_uid: int | None = None,
    ) -> None:
        """``default_uid``: the user a pod runs as when its securityContext names none (e.g.
        65534, nobody); None keeps the agent's own user."""
        super().__init__(state_dir)
        self.default_uid = default_uid
        self.cgroups = cgroups
        self.namespaces = os.geteuid() == 0 if namespaces is None else namespaces

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
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
            "cwd": spec.working_dir,
            "cgroup_procs": procs,
            "oom_counter": oom_counter,
            "oom_score_adj": spec.oom_score_adj,
            "namespaces": self.namespaces,
            "hostname": spec.pod_name,
            "user": self._user(spec),
        }

    def _user(self, spec: ContainerSpec) -> dict[str, int] | None:
        """The ids to drop to before exec (runAsUser/runAsGroup, else the default); None when
        the agent is not root (it cannot change user) or nothing asks for a change."""
        uid = spec.run_as_user if spec.run_as_user is not None else self.default_uid
        if uid is None or os.geteuid() != 0:
            return None
        gid = spec.run_as_group if spec.run_as_group is not None else uid
        return {"uid": uid, "gid": gid}
