"""Pod networking: a network namespace and an address per pod, through CNI.

- ``conflist``: the node's CNI configuration list (bridge ``sigma0`` holding the gateway
  address, the first host address of the node's ``spec.podCIDR``; host-local IPAM with its
  store in the agent's state directory; bandwidth; loopback). Pure.
- ``cni``: running a list per the CNI spec (ADD, CHECK, DEL) and reading its result.
- ``netns``: named network namespaces ``/var/run/netns/sigma-<pod uid>``.
- ``dns``: the pod's /etc/resolv.conf (dnsPolicy, dnsConfig) and /etc/hosts. Pure.
- ``routes``: host-gw, a route to every other node's podCIDR via its InternalIP.
- ``network.PodNetwork``: the agent's sandboxes; the record written before the ADD makes
  an agent killed mid-ADD leak nothing once restarted.

For other parts of the agent (probes, exec): ``PodNetwork.netns_path(pod_uid) -> str | None``
is the network namespace a pod's containers share (None: the host's, a hostNetwork pod or
no sandbox yet); ``netns_path_of(pod_uid)`` is the same path computed without the agent.
"""

from __future__ import annotations

from sigma.agent.podnet.netns import name_of, path_of
from sigma.agent.podnet.network import PodNetwork, PodNetworkError, Sandbox

__all__ = ["PodNetwork", "PodNetworkError", "Sandbox", "netns_path_of"]


def netns_path_of(pod_uid: str) -> str:
    """Where the pod's network namespace is bound (whether or not it exists)."""
    return path_of(name_of(pod_uid))
