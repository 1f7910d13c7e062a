"""The `runc` runtime: one OCI bundle per container attempt, run detached by the shim.

The bundle (config.json, and a rootfs that is an overlay on the unpacked image or a copy of
it) lives in the container's state directory, so removing the container removes it. runc
creates the container-level cgroup at cgroupsPath under the pod's group and sets the limits
from config.json.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import ImageNotFound, ImageStore, release_rootfs
from sigma.agent.podspec import cpu_quota_us, cpu_shares
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import harden
from sigma.agent.runtime.mountpoints import ensure_rootfs_parents
from sigma.agent.runtime.shimmed import ShimRuntime, StartFailure, write_private

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class RuncRuntime(ShimRuntime):
    name = "runc"
    uses_images = True  # NodeRuntime pulls the image (imagePullPolicy) before start()

    def __init__(
        self,
        state_dir: str,
        images: ImageStore,
        cgroups: CgroupTree | None = None,
        runc: str = "runc",
        overlay: bool = False,
    ) -> None:
        super().__init__(state_dir)
        self.images, self.cgroups = images, cgroups
        # overlayfs: the unpacked image is shared read-only, a start costs a mount instead of
        # a copy of the whole image. make_rootfs falls back to a copy where it cannot mount.
        self.overlay = overlay
        self.runc_root = os.path.join(state_dir, f"{self.name}-root")  # runc-root, crun-root, runsc-root
        self.runc = shutil.which(runc) or runc

    # -- hooks for the runtimes that take the same bundle (crun, runsc: runtime/handlers.py) --
    def _runtime_argv(self, spec: ContainerSpec) -> list[str]:
        """The runtime's command and global flags, before the shim's `run`/`exec`/`delete`."""
        return [self.runc, "--root", self.runc_root]

    def _adapt(self, config: dict[str, Any], spec: ContainerSpec) -> dict[str, Any]:
        """config.json as this runtime needs it: runc's as built."""
        return config

    def _shim_spec(self, spec: ContainerSpec, cdir: str) -> dict[str, Any]:
        try:
            image_config = self.images.config(spec.image)
            bundle = os.path.join(cdir, "bundle")
            self.images.make_rootfs(spec.image, os.path.join(bundle, "rootfs"), overlay=self.overlay)
            ensure_rootfs_parents(os.path.join(bundle, "rootfs"), spec.volume_mounts)  # crossable by any user
        except ImageNotFound as err:
            raise StartFailure("ErrImageNeverPull", str(err)) from err
        rel = f"{spec.cgroup_parent}/{spec.name}" if spec.cgroup_parent and self.cgroups else ""
        # config.json holds the pod's env values: root's alone, like spec.json.
        write_private(os.path.join(bundle, "config.json"),
                      json.dumps(self._adapt(oci_config(spec, image_config, rel), spec), indent=1))
        oom = self.cgroups.oom_counter(rel) if rel and self.cgroups else ""
        return {
            "mode": "runc",
            "runc": self._runtime_argv(spec),
            "runc_id": spec.id,
            "bundle": bundle,
            "oom_counter": oom,
        }

    def _cleanup(self, container_id: str, meta: dict[str, Any]) -> None:
        # Before the state directory is removed: an overlay must be unmounted, or the
        # removal would walk into the mount (and fail on the mount point).
        release_rootfs(os.path.join(self.dir, container_id, "bundle", "rootfs"))


def oci_config(spec: ContainerSpec, image: dict[str, Any], cgroup_rel: str) -> dict[str, Any]:
    """config.json for one container. Kubernetes rules: command replaces the image's
    Entrypoint, args replace its Cmd; pod env is appended to (and overrides) the image's."""
    entrypoint = spec.command or image.get("Entrypoint") or []
    cmd = spec.args if (spec.args or spec.command) else image.get("Cmd") or []
    env = dict(e.split("=", 1) for e in image.get("Env") or [] if "=" in e)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(spec.env)
    resources: dict[str, Any] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "cpu": {"shares": cpu_shares(spec.cpu_request_millis)},
    }
    if spec.cpu_limit_millis:
        resources["cpu"].update(quota=cpu_quota_us(spec.cpu_limit_millis), period=100_000)
    if spec.cpuset:
        resources["cpu"]["cpus"] = spec.cpuset
    if spec.memory_limit_bytes is not None:
        resources["memory"] = {"limit": spec.memory_limit_bytes}
    linux: dict[str, Any] = {
        "resources": resources,
        # The pod's network namespace when it has one; else the host network (hostNetwork).
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + (
            [{"type": "network", "path": spec.netns_path}] if spec.netns_path else []),
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    }
    if cgroup_rel:
        linux["cgroupsPath"] = "/" + cgroup_rel
    else:
        # No pod cgroup to sit under: runc would put the container's own group at the top of
        # the hierarchy, where a request-sized cpu.shares (2 for no request) starves it
        # against the whole host. Without cgroups there are no limits, as for the process runtime.
        linux["resources"] = {"devices": resources["devices"]}
    return harden({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [*entrypoint, *cmd],
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": spec.working_dir or image.get("WorkingDir") or "/",
            "capabilities": {},  # harden(): the default set, or what the pod adds and drops
            "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "oomScoreAdj": spec.oom_score_adj if spec.oom_score_adj >= 0 else 0,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": spec.pod_name[:63] or "sigma",
        "mounts": [*_MOUNTS, *etc_mounts(spec), *volume_mounts(spec)],
        "linux": linux,
    }, spec)  # capabilities, seccomp, read-only rootfs, user ids and namespace (runtime/hardening.py)


def etc_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    """The pod's generated /etc files (resolv.conf, hosts), bound read-only over the image's."""
    return [{"destination": target, "type": "bind", "source": source, "options": ["rbind", "ro", "nosuid", "nodev"]}
            for target, source in spec.etc_files]


def volume_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    """The pod's volumes (sigma.agent.volumes), bound where its volumeMounts say."""
    return [{"destination": target, "type": "bind", "source": source,
             "options": ["rbind", "ro" if read_only else "rw", "nosuid", "nodev"]}
            for target, source, read_only in spec.volume_mounts]


_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
]
