"""One master per state directory: an flock on STATE/master.lock, taken at start without
waiting, held until the process ends (the kernel drops it with the process, however it
ends, so a crash leaves nothing to clean up).

`sigma up` takes it for its state directory, `sigma master` for the directory of its
SQLite store: a second `sigma up` (or `sigma master`) on the same state would share the
store, the CA and the agent's state with the first, so it is refused with a message naming
the holder. Two states, two clusters: `sigma up --state-dir A` and `--state-dir B` coexist.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "master.lock"


class StateInUse(Exception):
    """Another process holds the state directory: ``str()`` is the message to print."""


def lock_master_state(state: Path, command: str, flag: str) -> int:
    """The lock's descriptor (keep it open; it is not inherited by children). Raises
    StateInUse when another process holds ``state``."""
    path = state / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StateInUse(f"{state} is in use by another Sigma ({holder}): one master per state directory. Stop "
                         f"that one first, or give this one its own state with {flag}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, {command}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"
