"""The `lxc` handler: the pod's image run by LXC (``lxc-execute``), in the RunLXC role.

The rootfs is the image's, unpacked (or overlaid) exactly as for runc; LXC gets its own
configuration file instead of config.json: the rootfs, the pod's hostname, environment, user
and /etc files, ``lxc.autodev``, /proc and a read-only /sys, and the network: the pod's
namespace (``lxc.namespace.share.net``) or the host's (``lxc.net.0.type = none``). No
image manager is needed (``lxc-create -t oci`` would want skopeo and umoci).

The shim runs ``lxc-execute`` in the foreground as a process container: it joins the
container's cgroup (limits set there, as the process runtime does) and LXC nests its own
groups under it (``lxc.cgroup.relative``), so the limits hold. Its stdout and stderr are
the container's; its exit code is the container's; SIGTERM to it stops the container.
Exec probes run through ``lxc-attach``. The container keeps runc's default capability set
(with the pod's adds and drops); Debian 12's liblxc has no seccomp support, so unlike runc's
pods an LXC pod runs without a system-call filter. LXC shares the host kernel as runc does: it is not a
sandbox (sigma.api.runtimeclass.SANDBOXED_HANDLERS).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import ImageNotFound, ImageStore, release_rootfs
from sigma.agent.podspec import Resources
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from sigma.agent.runtime.shimmed import ShimRuntime, StartFailure, private_dir, write_private

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LxcRuntime(ShimRuntime):
    name = "lxc"
    uses_images = True

    def __init__(self, state_dir: str, images: ImageStore, cgroups: CgroupTree | None = None,
                 overlay: bool = False) -> None:
        super().__init__(state_dir)
        self.images, self.cgroups, self.overlay = images, cgroups, overlay
        self.execute = shutil.which("lxc-execute") or "lxc-execute"
        self.attach = shutil.which("lxc-attach") or "lxc-attach"

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        try:
            image = self.images.config(spec.image)
            rootfs = os.path.join(cdir, "rootfs")
            self.images.make_rootfs(spec.image, rootfs, overlay=self.overlay)
        except ImageNotFound as err:
            raise StartFailure("ErrImageNeverPull", str(err)) from err
        argv, env = command_and_env(spec, image)
        text = lxc_config(spec, rootfs, env, spec.working_dir or image.get("WorkingDir") or "/")
        lxc_dir = os.path.join(cdir, "lxc")
        private_dir(lxc_dir)
        conf = os.path.join(cdir, "lxc.conf")
        write_private(conf, text)
        procs: list[str] = []
        oom = ""
        if self.cgroups is not None and self.cgroups.available and spec.cgroup_parent:
            res = Resources(spec.cpu_request_millis, spec.cpu_limit_millis, 0, spec.memory_limit_bytes)
            rel = self.cgroups.ensure_container(spec.cgroup_parent, spec.name, res, spec.cpuset)
            procs, oom = self.cgroups.procs_files(rel), self.cgroups.oom_counter(rel)
        name = spec.id
        return {
            "mode": "process",
            "argv": [self.execute, "-P", lxc_dir, "-n", name, "-f", conf, "--", *argv],
            "env": {"PATH": DEFAULT_PATH},
            "cwd": None,
            "cgroup_procs": procs,
            "oom_counter": oom,
            "oom_score_adj": spec.oom_score_adj,
            "namespaces": False,  # LXC makes the container's own
            "hostname": spec.pod_name,
            "user": None,  # lxc.init.uid/gid: lxc-execute itself must stay root
            "no_new_privs": False,
            "netns": None,  # lxc.namespace.share.net
            "attach": [self.attach, "-P", lxc_dir, "-n", name, "--"],  # exec probes (execin.run_in)
        }

    def _cleanup(self, container_id: str, meta: dict[str, Any]) -> None:
        release_rootfs(os.path.join(self.dir, container_id, "rootfs"))


def command_and_env(spec: ContainerSpec, image: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Kubernetes' rules, as for runc: command replaces Entrypoint, args replace Cmd; the
    pod's env is appended to (and overrides) the image's."""
    entrypoint = spec.command or image.get("Entrypoint") or []
    cmd = spec.args if (spec.args or spec.command) else image.get("Cmd") or []
    env = dict(e.split("=", 1) for e in image.get("Env") or [] if "=" in e)
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(spec.env)
    return [*entrypoint, *cmd], env


def lxc_config(spec: ContainerSpec, rootfs: str, env: dict[str, str], cwd: str) -> str:
    """The container's LXC configuration. One key a line: a value with a newline is refused
    (it would be read as another key)."""
    lines = [
        f"lxc.uts.name = {spec.pod_name[:63] or 'sigma'}",
        f"lxc.rootfs.path = dir:{rootfs}",
        "lxc.rootfs.options = " + ("ro" if spec.read_only_root else "rw"),
        "lxc.autodev = 1",
        "lxc.mount.auto = proc:mixed sys:ro",
        "lxc.console.path = none",
        "lxc.tty.max = 0",
        "lxc.pty.max = 16",
        "lxc.cgroup.relative = 1",
        f"lxc.cap.keep = {' '.join(kept_capabilities(spec)) or 'none'}",
        f"lxc.init.cwd = {cwd}",
    ]
    if spec.netns_path:
        lines.append(f"lxc.namespace.share.net = {spec.netns_path}")
    else:
        lines.append("lxc.net.0.type = none")  # the host's network, as runc's pods without a namespace
    if spec.run_as_user is not None:
        lines.append(f"lxc.init.uid = {spec.run_as_user}")
    if spec.run_as_group is not None or spec.run_as_user is not None:
        gid = spec.run_as_group if spec.run_as_group is not None else spec.run_as_user
        lines.append(f"lxc.init.gid = {gid}")
    for target, source in spec.etc_files:
        lines.append(f"lxc.mount.entry = {source} {target.lstrip('/')} none bind,ro,create=file 0 0")
    lines += [f"lxc.environment = {key}={value}" for key, value in env.items()]
    if any("\n" in line for line in lines):
        raise StartFailure("CreateContainerConfigError", "LXC takes one setting a line: an environment value "
                           "or path with a newline cannot be given to it")
    return "\n".join(lines) + "\n"


def kept_capabilities(spec: ContainerSpec) -> list[str]:
    """The capabilities an LXC container keeps, in LXC's spelling: the default set of a runc
    container with the pod's adds and drops ("ALL" in either), every one when privileged."""
    def names(caps: tuple[str, ...]) -> set[str]:
        upper = {c.upper() if c.upper().startswith("CAP_") else f"CAP_{c.upper()}" for c in caps}
        return set(ALL_CAPABILITIES) if "CAP_ALL" in upper else upper
    keep = set(ALL_CAPABILITIES) if spec.privileged else \
        (set(DEFAULT_CAPABILITIES) | names(spec.capabilities_add)) - names(spec.capabilities_drop)
    return sorted(c.removeprefix("CAP_").lower() for c in keep)
