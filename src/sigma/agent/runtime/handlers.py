"""The RuntimeClass handlers beside runc: crun and gVisor's runsc.

Both take runc's OCI bundle and speak runc's command line (``run -d --pid-file``, ``exec``,
``delete --force``), so the shim supervises them exactly as it does runc; they differ in the
binary, its global flags and what of config.json they accept.

- ``crun``: runc's bundle as is, another binary (a C runtime: smaller, faster to start).
- ``runsc`` (gVisor): the pod runs on a user-space kernel (the Sentry), which serves its
  system calls; the host kernel only sees the Sentry's few, filtered by seccomp. Its own
  state root (``--root``), the platform (``systrap`` where this runsc has it, else
  ``ptrace``), ``--network=sandbox`` inside the pod's network namespace (the OCI spec's
  network namespace path, which runsc joins) or ``--network=host`` for pods on the host's
  network. A runsc that cannot run its own stack in a pod namespace (probe_handlers.py: the
  2022 runsc of Debian 12 on Linux 6.x) runs the pod's namespace through the host kernel's
  stack (``--network=host`` inside it): the pod's network still, without gVisor's netstack.
  cgroupsPath and the limits come from the bundle, as for runc. No user namespace: gVisor's
  root is the Sentry's, not the host's (runsc refuses a userns mapping here).

A pod without an image under runsc runs its command over the same masked, read-only view
of the host the process runtime gives (sandbox.py), with the host's / as gVisor's read-only
root (gVisor's gofer serves the files; a bind of / onto runc's placeholder would be
writable through the gofer). The gofer reads as host root, so a pod that is root inside
gVisor would read the host's root-only files: such a pod runs as the agent's unprivileged
default user, and one that asks for uid or gid 0 is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import DEFAULT_ROOT as IMAGE_ROOT
from sigma.agent.images import ImageStore
from sigma.agent.runtime.base import ContainerSpec, Runtime
from sigma.agent.runtime.hardening import check_non_root
from sigma.agent.runtime.lxc import LxcRuntime
from sigma.agent.runtime.probe_handlers import Handlers
from sigma.agent.runtime.runc import RuncRuntime
from sigma.agent.runtime.sandbox import HIDDEN_PATHS, master_state_above, sandbox_config, start_error
from sigma.agent.runtime.shimmed import StartFailure, private_dir, write_private

NOBODY = 65534


def handler_runtimes(handlers: Handlers, state_dir: str, images: ImageStore, cgroups: CgroupTree | None,
                     overlay: bool, default_uid: int | None, hidden_paths: list[str]) -> dict[str, Runtime]:
    """The runtimes of the handlers the probe found working, beside runc and process."""
    out: dict[str, Runtime] = {}
    if "crun" in handlers.available:
        out["crun"] = CrunRuntime(state_dir, images, cgroups, overlay=overlay)
    if "runsc" in handlers.available:
        out["runsc"] = RunscRuntime(state_dir, images, cgroups, platform=handlers.runsc_platform, overlay=overlay,
                                    default_uid=NOBODY if default_uid is None else default_uid,
                                    hidden_paths=hidden_paths, network=handlers.runsc_network)
    if "lxc" in handlers.available:
        out["lxc"] = LxcRuntime(state_dir, images, cgroups, overlay=overlay)
    return out


class CrunRuntime(RuncRuntime):
    name = "crun"

    def __init__(self, state_dir: str, images: ImageStore, cgroups: CgroupTree | None = None,
                 crun: str = "crun", overlay: bool = False) -> None:
        super().__init__(state_dir, images, cgroups, runc=crun, overlay=overlay)


class RunscRuntime(RuncRuntime):
    name = "runsc"

    def __init__(self, state_dir: str, images: ImageStore, cgroups: CgroupTree | None = None,
                 runsc: str = "runsc", platform: str = "ptrace", overlay: bool = False,
                 default_uid: int = NOBODY, hidden_paths: list[str] | None = None, network: str = "sandbox") -> None:
        super().__init__(state_dir, images, cgroups, runc=runsc, overlay=overlay)
        self.platform, self.default_uid, self.network = platform, default_uid, network
        self.hidden = [*HIDDEN_PATHS, IMAGE_ROOT, os.path.abspath(state_dir), *master_state_above(state_dir),
                       *(hidden_paths or [])]

    def _runtime_argv(self, spec: ContainerSpec) -> list[str]:
        return runsc_flags(self.runc, self.runc_root, self.platform, self.network if spec.netns_path else "host",
                           cgroups=self.cgroups is not None and bool(spec.cgroup_parent))

    def _adapt(self, config: dict[str, Any], spec: ContainerSpec) -> dict[str, Any]:
        return gvisor_config(config)

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        if spec.image:
            return super()._shim_spec(spec, cdir)
        return self._host_view(spec, cdir)

    def _host_view(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        uid = spec.run_as_user if spec.run_as_user is not None else self.default_uid
        gid = spec.run_as_group if spec.run_as_group is not None else uid
        check_non_root(spec, uid)
        if 0 in (uid, gid):
            raise StartFailure("CreateContainerError",
                               "a pod without an image runs under gVisor over the host's files, which gVisor "
                               "reads as host root: it may not run as uid or gid 0 (give it an image to be "
                               "root inside the sandbox)")
        problem = start_error(spec, uid, gid, self.hidden)
        if problem:
            raise StartFailure("StartError", problem)
        rel = f"{spec.cgroup_parent}/{spec.name}" if spec.cgroup_parent and self.cgroups is not None else ""
        bundle = os.path.join(cdir, "bundle")
        private_dir(bundle)
        as_pod = dataclasses.replace(spec, user_namespace=False)
        config = host_view_config(sandbox_config(as_pod, uid, gid, rel, self.hidden))
        write_private(os.path.join(bundle, "config.json"), json.dumps(config, indent=1))
        return {
            "mode": "runc",
            "runc": self._runtime_argv(spec),
            "runc_id": spec.id,
            "bundle": bundle,
            "oom_counter": self.cgroups.oom_counter(rel) if rel and self.cgroups is not None else "",
        }


def runsc_flags(binary: str, root: str, platform: str, network: str, cgroups: bool) -> list[str]:
    """runsc's global flags for one container: its state root, platform and network: "sandbox"
    (gVisor's own stack in the pod's network namespace, which config.json names) or "host"
    (the host kernel's stack of the namespace the sandbox is in: the pod's when config.json
    names one, else the host's)."""
    flags = [binary, "--root", root, f"--platform={platform}", f"--network={network}"]
    if not cgroups:
        flags.append("--ignore-cgroups")  # no pod cgroup to sit under: no limits, as for runc then
    return flags


def gvisor_config(config: dict[str, Any]) -> dict[str, Any]:
    """runc's config.json as runsc takes it: no user namespace (gVisor's root is not the
    host's, and runsc cannot start with a mapping here)."""
    linux = config.setdefault("linux", {})
    linux["namespaces"] = [n for n in linux.get("namespaces") or [] if n.get("type") != "user"]
    linux.pop("uidMappings", None)
    linux.pop("gidMappings", None)
    return config


def host_view_config(config: dict[str, Any]) -> dict[str, Any]:
    """The process runtime's host view for runsc: the host's / is gVisor's read-only root
    (runsc knows no "rro" bind option, and a bind onto a writable placeholder root would let
    writes through the gofer); the masks are plain read-only tmpfs."""
    config = gvisor_config(config)
    config["root"] = {"path": "/", "readonly": True}
    mounts = []
    for m in config.get("mounts") or []:
        if m.get("destination") == "/" and m.get("type") == "bind":
            continue
        mounts.append({**m, "options": [o for o in m.get("options") or [] if o != "size=4k"]})  # the masks
    config["mounts"] = mounts
    return config
