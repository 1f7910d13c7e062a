"""The python a process-runtime pod can run, for the demo's and the benchmarks' pods.

The agent runs process-runtime pods as nobody, who can neither run the venv's python (under
/root) nor count on reading sigma's own checkout: these pods run a system python, with their
source (stdlib only) passed in with -c. Without a python nobody can run, the pods ask for
root, which the default namespace's pod-security level (baseline) allows.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any


def workload_python() -> tuple[str, dict[str, Any]]:
    """The python the pods run, and the securityContext they need to run it."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if others_can_run(candidate):
            return candidate, {}
    return sys.executable, {"runAsUser": 0}


def others_can_run(path: str) -> bool:
    """True if a user other than the owner (nobody) can execute `path`: the file and every
    directory above it, for the link and for its target, are open to others."""
    real = os.path.realpath(path)
    if not os.path.isfile(real) or not os.stat(real).st_mode & stat.S_IXOTH:
        return False
    dirs = set()
    for p in (path, real):  # the link's directories and the target's must both be open
        while p != "/":
            p = os.path.dirname(p)
            dirs.add(p)
    return all(os.stat(d).st_mode & stat.S_IXOTH for d in dirs)


def hash_for(seconds: float, label: str) -> str:
    """A batch instance's program: hash for ``seconds`` of wall time with whatever CPU the
    batch tier gets (the count it prints says how much that was), then succeed. It runs as
    PID 1 of its own pid namespace, where a signal with no handler is ignored: an eviction's
    SIGTERM must stop it at once."""
    return f"""\
import hashlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
h, n, end = b"sigma", 0, time.time() + {seconds:g}
while time.time() < end:
    for _ in range(1000):
        h = hashlib.sha256(h).digest()
    n += 1000
print(f"{label}{{n}} hashes in {seconds:g}s", flush=True)
"""
