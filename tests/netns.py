"""Separate hosts for tests: the network namespaces of sigma.lab.netlab (hosts joined by a bridge
in a switch namespace, 169.254.77.x link-local addresses, ``nsenter --net``; see there),
plus what an agent on such a host needs in a test: a cgroup subtree of its own
(sigma.lab.netcluster.HostNetwork: ``cgroup_root(i)``, removed on ``close()``), named
``sigma-t-…`` here.
"""

from __future__ import annotations

from sigma.lab import netcluster
from sigma.lab.netcluster import CGROUP_MOUNT, remove_cgroup_tree
from sigma.lab.netlab import NETNS_DIR, SUBNET_PREFIX, netns_available

__all__ = ["CGROUP_MOUNT", "NETNS_DIR", "SUBNET_PREFIX", "Network", "netns_available", "remove_cgroup_tree"]


class Network(netcluster.HostNetwork):
    def __init__(self, hosts: int) -> None:
        super().__init__(hosts, prefix="sigma-t")
