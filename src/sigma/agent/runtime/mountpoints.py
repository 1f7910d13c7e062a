"""Mount points of a process-runtime pod's volumes in its view of the host.

The sandbox's root is the host's / bound read-only, so runc cannot create a missing mount
point inside it: the agent creates it on the host first, an empty root-owned directory (or
empty file, for a subPath file) that shows nothing of its own. Paths under the pod's private
/tmp need nothing: runc creates them in the pod's tmpfs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

PRIVATE = ("/tmp",)  # the pod's own tmpfs in the sandbox


def ensure_mount_points(mounts: Iterable[tuple[str, str, bool]]) -> None:
    for target, source, _ro in mounts:
        if any(target == p or target.startswith(p + "/") for p in PRIVATE):
            continue
        real = os.path.realpath(target)  # /var/run/... lands in /run, as runc resolves it
        if os.path.lexists(real):
            continue
        if os.path.isdir(source):
            os.makedirs(real, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(real), mode=0o755, exist_ok=True)
            os.close(os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def ensure_rootfs_parents(rootfs: str, mounts: Iterable[tuple[str, str, bool]]) -> None:
    """The directories above each volume's mount point in an image's rootfs, made 0755 here:
    runc, run by the shim under umask 077, would make them 0700 root's, which a pod that runs
    as another user could not cross (an image without /etc hides /etc/app from it). The image
    is not trusted: a symlink on the way is left for runc, which resolves it inside the rootfs."""
    for target, _source, _ro in mounts:
        path = rootfs
        for part in [p for p in os.path.dirname(target).split("/") if p]:
            path = os.path.join(path, part)
            if os.path.islink(path):
                break
            if not os.path.lexists(path):
                os.mkdir(path, 0o755)
                os.chmod(path, 0o755)  # not the umask's
            elif not os.path.isdir(path):
                break


def host_only_token(mounts: Iterable[tuple[str, str, bool]], token_path: str) -> bool:
    """True when no mount but the ServiceAccount token's is asked for."""
    return all(target == token_path for target, _s, _r in mounts)
