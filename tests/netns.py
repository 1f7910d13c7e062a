"""Separate hosts for tests: the network namespaces of sigma.lab.netlab (hosts joined by a bridge
in a switch namespace, 169.254.77.x link-local addresses, ``nsenter --net``; see there),
plus what an agent on such a host needs in a test: a cgroup subtree of its own.

- ``cgroup_root(i)`` names a cgroup subtree for host i's agent; ``close()`` removes it, after
  killing what runs inside the hosts and deleting the namespaces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from sigma.agent.cgroups import CgroupTree
from sigma.lab import netlab
from sigma.lab.netlab import NETNS_DIR, SUBNET_PREFIX, netns_available

__all__ = ["CGROUP_MOUNT", "NETNS_DIR", "SUBNET_PREFIX", "Network", "netns_available", "remove_cgroup_tree"]

CGROUP_MOUNT = "/sys/fs/cgroup"


class Network(netlab.Network):
    def __init__(self, hosts: int) -> None:
        super().__init__(hosts, prefix="sigma-t")

    def cgroup_root(self, host: int) -> str:
        """A cgroup subtree (relative to each hierarchy) for host ``host``'s agent."""
        return f"{self.hosts[host]}-cg"

    def close(self) -> None:
        super().close()
        for i in range(len(self.hosts)):
            for top in CgroupTree(root=self.cgroup_root(i)).own_roots:  # the batch parent sits beside
                remove_cgroup_tree(top)


def remove_cgroup_tree(rel: str, mount: str = CGROUP_MOUNT) -> None:
    """Remove ``rel`` from every hierarchy under ``mount`` (v1 and the unified one),
    deepest groups first; processes still inside are killed first."""
    if not os.path.isdir(mount):
        return
    tops = [os.path.join(mount, rel)]
    tops += [os.path.join(mount, entry.name, rel) for entry in os.scandir(mount) if entry.is_dir()]
    for top in tops:
        if not os.path.isdir(top):
            continue
        groups = [dirpath for dirpath, _dirs, _files in os.walk(top)]
        for group in reversed(groups):  # os.walk is top-down: reversed, children come first
            with contextlib.suppress(OSError), open(os.path.join(group, "cgroup.procs")) as procs:
                for pid in procs.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    os.rmdir(group)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # killed processes take a moment to leave the group
