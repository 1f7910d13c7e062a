"""Run a function inside a pod's network namespace.

A network namespace belongs to a thread, not to a process, in Linux: a short-lived thread
enters the namespace (setns(2) with CLONE_NEWNET), opens its sockets there and ends, so
no other work of the agent ever runs in the pod's network. Python 3.11 has no os.setns:
libc's is called through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000

T = TypeVar("T")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(ctypes.c_int(fd), ctypes.c_int(CLONE_NEWNET)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def in_netns(path: str | None, fn: Callable[[], T], timeout: float | None = None) -> T:
    """``fn()`` run in the network namespace at ``path`` (None: here, in the caller's).

    Raises what ``fn`` raised, OSError when the namespace cannot be entered (then ``fn`` is
    not run at all: never in the host's namespace by mistake), TimeoutError past ``timeout``."""
    if path is None:
        return fn()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            _enter(path)
            box["value"] = fn()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=work, name="probe-netns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout}s in network namespace {path}")
    if "error" in box:
        error = box["error"]
        assert isinstance(error, BaseException)
        raise error
    return box["value"]  # type: ignore[return-value]
