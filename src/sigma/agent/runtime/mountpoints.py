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


def host_only_token(mounts: Iterable[tuple[str, str, bool]], token_path: str) -> bool:
    """True when no mount but the ServiceAccount token's is asked for."""
    return all(target == token_path for target, _s, _r in mounts)
