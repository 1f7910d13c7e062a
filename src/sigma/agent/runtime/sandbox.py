"""The sandbox of a process-runtime pod: a host command run by runc in a read-only view of
the host.

A process-runtime pod has no image; its filesystem is the host's, so the agent hands it a
view, not the host itself: the host's / bind-mounted recursively read-only (and nosuid
unless the pod may escalate), with the directories that hold secrets masked by empty
read-only tmpfs (the agent's and the master's state, the image store, /root, /home), a
private /tmp, its own /dev, and a fresh /proc of its own pid namespace. It gets the same
hardening as an image container (hardening.py): the default capability set, the default
seccomp profile (which, with no CAP_SYS_ADMIN, refuses umount: the host's /proc under the
pod's cannot be uncovered), no_new_privs, masked /proc paths. A pod that runs as root (uid
or gid 0) runs in a user namespace where 0 is host uid 100000: root in the pod owns nothing
on the host, so host files are only what "others" may read.

runc wants a rootfs directory the container's root can reach; the agent's state directory
is closed (0700), so the host's / is mounted onto a shared empty directory under /run,
inside each container's own mount namespace: the directory itself never changes.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from typing import Any

from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.runc import oci_config

ROOTFS_PLACEHOLDER = "/run/sigma/sandbox-rootfs"
# Directories no pod may read, whoever runs the agent: the usual homes of credentials, and
# Sigma's default state directories. The agent adds its own state and image directories.
HIDDEN_PATHS = ("/root", "/home", "/var/lib/sigma", "/etc/sigma")
# The master's state directory holds these; a directory above the agent's that has them is the
# master's (`sigma up` keeps the agent's state inside the master's).
MASTER_MARKERS = ("auth/ca.key", "auth/tokens.csv")


def placeholder_rootfs(path: str = ROOTFS_PLACEHOLDER) -> str | None:
    """The empty directory runc mounts the host view onto, created root-owned 0755; None if it
    cannot be had safely (then there is no sandbox)."""
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022 or os.listdir(path):
        return None
    return path


def master_state_above(state_dir: str) -> list[str]:
    """Directories above ``state_dir`` that are a master's state (sigma up's layout)."""
    found = []
    path = os.path.abspath(state_dir)
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if any(os.path.exists(os.path.join(path, marker)) for marker in MASTER_MARKERS):
            found.append(path)
    return found


def sandbox_config(
    spec: ContainerSpec, uid: int, gid: int, cgroup_rel: str, hidden: list[str]
) -> dict[str, Any]:
    """config.json for a process-runtime pod running as ``uid``:``gid`` (pod ids, which a user
    namespace maps when they are root's)."""
    as_pod = dataclasses.replace(
        spec, run_as_user=uid, run_as_group=gid,
        user_namespace=spec.user_namespace or uid == 0 or gid == 0,
    )
    config = oci_config(as_pod, {}, cgroup_rel)
    config["root"] = {"path": ROOTFS_PLACEHOLDER, "readonly": False}  # the host view below is rro
    config["mounts"] = host_view_mounts(hidden, allow_setuid=not spec.no_new_privs)
    config["process"]["cwd"] = spec.working_dir or "/"
    return config


def host_view_mounts(hidden: list[str], allow_setuid: bool = False) -> list[dict[str, Any]]:
    """The mounts of the host view, in order: the host's / read-only, the masks, then the
    pod's own /tmp, /dev and /proc on top."""
    host_options = ["rbind", "rro", "rnodev"] + ([] if allow_setuid else ["rnosuid"])
    mounts: list[dict[str, Any]] = [{"destination": "/", "type": "bind", "source": "/", "options": host_options}]
    for path in sorted({os.path.realpath(p) for p in hidden}):
        if path != "/" and os.path.isdir(path):
            mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                           "options": ["ro", "nosuid", "nodev", "noexec", "size=4k", "mode=755"]})
    mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]})
    mounts += [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "nodev", "noexec"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    ]
    return mounts
