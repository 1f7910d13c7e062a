"""Whether `sigma up` gives its pods their own network (`--pod-network auto|on|off`).

With it, each pod gets a network namespace and an address (CNI), Services get ClusterIPs
that the node's service proxy carries (nftables, table ip sigma), and pods resolve Service
names through the node's cluster DNS: the demo's web service is then reached at its
ClusterIP. It needs root, the CNI reference plugins, ip and nft, and a network namespace
whose pod network no other agent runs (sigma.agent.podnet.hostlock). `auto` (the default)
turns it on when all of that holds and says why not otherwise; `on` refuses to start
without it; `off` keeps pods on the host's network.
"""

from __future__ import annotations

from dataclasses import dataclass

CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class PodNetworkChoice:
    on: bool
    note: str  # a line for the user ("" when there is nothing to say)


def choose_pod_network(requested: str, problem: str | None, holder: str | None) -> PodNetworkChoice:
    """The decision, pure: ``problem`` is what this machine lacks (sigma.agent.podnet.network.
    network_problem), ``holder`` who already runs this namespace's pod network. Raises
    ValueError when ``on`` was asked for and cannot be had."""
    if requested not in CHOICES:
        raise ValueError(f"--pod-network must be one of {', '.join(CHOICES)}, got {requested!r}")
    if requested == "off":
        return PodNetworkChoice(False, "")
    why = problem or (f"another cluster runs this machine's pod network ({holder})" if holder else None)
    if why is None:
        return PodNetworkChoice(True, "")
    if requested == "on":
        raise ValueError(f"--pod-network on: {why}")
    return PodNetworkChoice(False, f"pods share the host's network: {why} (--pod-network off to say so)")
