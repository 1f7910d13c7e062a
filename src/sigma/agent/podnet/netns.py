"""Named network namespaces (``ip netns``): a file under /var/run/netns the namespace is bound
to, so it lives without any process in it, from the pod's start to its removal."""

from __future__ import annotations

import os
import subprocess

NETNS_DIR = "/var/run/netns"
PREFIX = "sigma-"


def name_of(pod_uid: str) -> str:
    return f"{PREFIX}{pod_uid}"


def path_of(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def create(name: str) -> str:
    """The namespace's path; an existing one is kept (a restart finishing a half-made sandbox)."""
    path = path_of(name)
    if not os.path.exists(path):
        done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
        if done.returncode != 0 and not os.path.exists(path):
            raise OSError(f"ip netns add {name}: {done.stderr.strip()}")
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], capture_output=True, check=False)
    return path


def delete(name: str) -> None:
    if os.path.exists(path_of(name)):
        done = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, check=False)
        if done.returncode != 0 and os.path.exists(path_of(name)):
            raise OSError(f"ip netns del {name}: {done.stderr.strip()}")
