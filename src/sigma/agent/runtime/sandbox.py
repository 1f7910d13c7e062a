"""The sandbox of a process-runtime pod: a host command run by runc in a read-only view of
the host.

A process-runtime pod has no image; its filesystem is the host's, so the agent hands it a
view, not the host itself: the host's / bind-mounted recursively read-only, nosuid and
nodev, with the directories that hold secrets masked by empty
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
from sigma.agent.runtime.hardening import USERNS_HOST_BASE
from sigma.agent.runtime.runc import etc_mounts, oci_config, volume_mounts

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
    userns = in_user_namespace(spec, uid, gid)
    as_pod = dataclasses.replace(spec, run_as_user=uid, run_as_group=gid, user_namespace=userns)
    config = oci_config(as_pod, {}, cgroup_rel)
    config["root"] = {"path": ROOTFS_PLACEHOLDER, "readonly": False}  # the host view below is rro
    config["mounts"] = [*host_view_mounts(hidden), *etc_mounts(spec), *volume_mounts(spec)]
    config["process"]["cwd"] = spec.working_dir or "/"
    return config


def in_user_namespace(spec: ContainerSpec, uid: int, gid: int) -> bool:
    """Root's ids (or a pod that asks, hostUsers: false) are mapped to unprivileged host ids."""
    return spec.user_namespace or uid == 0 or gid == 0


def host_view_mounts(hidden: list[str]) -> list[dict[str, Any]]:
    """The mounts of the host view, in order: the host's / read-only, the pod's own /tmp, the
    masks, then its own /proc and /dev on top."""
    # nosuid even where the pod may escalate (allowPrivilegeEscalation: true lifts only
    # no_new_privs): a setuid-root binary of the host would make it host root, with the
    # default capabilities, in front of the host's files.
    host_options = ["rbind", "rro", "rnodev", "rnosuid"]
    mounts: list[dict[str, Any]] = [{"destination": "/", "type": "bind", "source": "/", "options": host_options}]
    # /tmp first: it is the pod's own, so nothing under it needs a mask (and runc's final
    # read-only remount of a mask it had covered would fail).
    mounts.append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]})
    for path in _outermost(hidden, covered=["/tmp"]):
        mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                       "options": ["ro", "nosuid", "nodev", "noexec", "size=4k", "mode=755"]})
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


def _outermost(paths: list[str], covered: list[str]) -> list[str]:
    """The existing directories among ``paths``, without those inside another one or inside
    ``covered``: one mask hides what lies below it."""
    real = sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})
    kept: list[str] = []
    for path in real:
        if path != "/" and not any(_inside(path, outer) for outer in [*covered, *kept]):
            kept.append(path)
    return kept


def _inside(path: str, outer: str) -> bool:
    return path == outer or path.startswith(outer.rstrip("/") + "/")


def start_error(spec: ContainerSpec, uid: int, gid: int, hidden: list[str]) -> str | None:
    """Why the pod's command or working directory cannot be reached in its view, in the
    words the process runtime reports (kubelet's), or None. runc would fail later and less
    clearly: it tries to create a missing working directory (read-only here) and runs a
    script it may not read."""
    userns = in_user_namespace(spec, uid, gid)
    host_uid, host_gid = (uid + USERNS_HOST_BASE, gid + USERNS_HOST_BASE) if userns else (uid, gid)
    covered = ["/tmp", *_outermost(hidden, covered=["/tmp"])]
    cwd = spec.working_dir
    if cwd and (not os.path.isdir(cwd) or any(_inside(os.path.realpath(cwd), c) and os.path.realpath(cwd) != c
                                               for c in covered)):
        return f"chdir {cwd}: no such file or directory"
    argv = [*spec.command, *spec.args]
    if not argv:
        return "no command specified"
    name = argv[0]
    if "/" not in name:
        return None  # looked up in $PATH by runc, which says so when it is not found
    real = os.path.realpath(name)
    if not os.path.isfile(real) or any(_inside(real, c) for c in covered):
        return f'exec: "{name}": executable file not found in $PATH'
    if not _may_execute(name, host_uid, host_gid):
        return f'exec: "{name}": permission denied (running as uid {uid})'
    return None


def _may_execute(path: str, uid: int, gid: int) -> bool:
    """True if a process with these host ids (no groups, no capabilities over the host's
    files) can search every directory above ``path`` and execute it."""
    checks = [(os.path.dirname(p), 0o1) for p in _prefixes(path)] + [(path, 0o1)]
    for target, bit in checks:
        try:
            info = os.stat(target)
        except OSError:
            return False
        shift = 6 if info.st_uid == uid else 3 if info.st_gid == gid else 0
        if not (info.st_mode >> shift) & bit:
            return False
    return True


def _prefixes(path: str) -> list[str]:
    out, p = [], os.path.abspath(path)
    while p != "/":
        out.append(p)
        p = os.path.dirname(p)
    return out
