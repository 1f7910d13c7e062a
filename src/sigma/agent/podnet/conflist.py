"""The node's CNI network configuration list, pure: a bridge ``sigma0`` whose address is the
gateway of the node's podCIDR, host-local IPAM over that block, traffic shaping through the
``bandwidth`` capability, and the pod's loopback.

No ``ipMasq``: packets between pods keep their addresses (host-gw routes carry them between
nodes), and masquerading towards the outside is the service proxy's nft table, not
iptables. No ``portmap`` either: the Debian plugins (1.1.x) implement hostPort with iptables
only, in the host's chains: Sigma maps hostPorts in a table of its own instead (podnet.hostports).
"""

from __future__ import annotations

import ipaddress
from typing import Any

CNI_VERSION = "1.0.0"
NETWORK_NAME = "sigma"
BRIDGE = "sigma0"
IFNAME = "eth0"
CONFLIST_NAME = "10-sigma.conflist"
PLUGINS = ("bridge", "host-local", "bandwidth", "loopback")  # the binaries this list runs


def gateway(pod_cidr: str) -> str:
    """The node's address on its pod bridge: the first host address of its podCIDR (the
    cluster DNS server listens there too)."""
    net = ipaddress.ip_network(pod_cidr, strict=False)
    return str(net.network_address + 1)


def conflist(pod_cidr: str, ipam_data_dir: str) -> dict[str, Any]:
    """The configuration list for a node whose podCIDR is ``pod_cidr``; host-local keeps its
    allocations (one file per address, naming the sandbox) under ``ipam_data_dir``."""
    net = ipaddress.ip_network(pod_cidr, strict=False)
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,  # the bridge holds the gateway address: the pods' default route
                "ipMasq": False,
                "hairpinMode": True,  # a pod reaching itself through a service address
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(net), "gateway": gateway(pod_cidr)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_data_dir,
                },
            },
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
            {"type": "loopback"},
        ],
    }
