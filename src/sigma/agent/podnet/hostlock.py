"""One pod network per network namespace: an flock on /run/sigma/podnet-<netns>.lock.

The pod bridge (``sigma0``), the service table (``table ip sigma``) and the route protocol
are names of the host's network namespace, not of one agent: two agents giving pods a
network in one namespace (two `sigma up` on one machine, each with its own state) would
hand out the same addresses on one bridge and rewrite each other's table. So the agent
that runs the pod network holds this lock for its lifetime (the kernel drops it with the
process, however it ends), a second one is refused with the holder's name, and `sigma up
--pod-network auto` asks first and falls back to the host's network. Agents in different
network namespaces (the multi-host test harness) each have their own lock.
"""

from __future__ import annotations

import fcntl
import os

LOCK_DIR = "/run/sigma"


class PodNetworkInUse(Exception):
    """Another agent runs the pod network of this network namespace: ``str()`` says who."""


def netns_id() -> int:
    """This process's network namespace (its inode: equal for processes that share it)."""
    return os.stat("/proc/self/ns/net").st_ino


def lock_path(lock_dir: str = LOCK_DIR) -> str:
    return os.path.join(lock_dir, f"podnet-{netns_id()}.lock")


def hold_pod_network(state_dir: str, lock_dir: str = LOCK_DIR) -> int:
    """The lock's descriptor, to keep open while the agent runs. Raises PodNetworkInUse."""
    os.makedirs(lock_dir, mode=0o755, exist_ok=True)
    fd = os.open(lock_path(lock_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise PodNetworkInUse(f"the pod network of this host is run by another agent ({holder}); one per "
                              "network namespace") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, state {state_dir}\n".encode(), 0)
    return fd


def pod_network_holder(lock_dir: str = LOCK_DIR) -> str | None:
    """Who holds the lock now (None: nobody), without keeping it."""
    try:
        fd = os.open(lock_path(lock_dir), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        return None
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
