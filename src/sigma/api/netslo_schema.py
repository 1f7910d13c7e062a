"""The schema of a NodeSLO's `spec.network`: batch pods' bandwidth and the network rung of
the agent's ladder (sigma.colocation.netladder, where the rules beyond bounds live)."""

from __future__ import annotations

from sigma.api.schema import Schema, int32, number, obj
from sigma.colocation.netladder import DEFAULT_FLOOR_MBPS, DEFAULT_LINK_MBPS, DEFAULT_NET_THRESHOLD, MAX_MBPS


def _mbps(description: str) -> Schema:
    return int32(f"{description} In megabits per second, 1 to {MAX_MBPS}.", minimum=1, maximum=MAX_MBPS)


NETWORK_SLO = obj(
    "Agent: the bandwidth of batch pods, shaped with tc on their host-side veths, and lowered while "
    "prod's traffic needs the link.",
    linkMbps=_mbps(f"The node's link per direction, shared by prod and batch; default {DEFAULT_LINK_MBPS}."),
    threshold=number(f"Prod + batch traffic stays under this share of the link; default {DEFAULT_NET_THRESHOLD}. "
                     "Greater than 0, at most 1.", minimum=0, maximum=1),
    batchEgressMbps=_mbps("The most one batch pod may send (a lower kubernetes.io/egress-bandwidth annotation "
                          "wins); default the link. At most linkMbps."),
    batchIngressMbps=_mbps("The most one batch pod may receive (a lower kubernetes.io/ingress-bandwidth "
                           "annotation wins); default the link. At most linkMbps."),
    batchFloorMbps=_mbps(f"A batch pod is never squeezed below this; default {DEFAULT_FLOOR_MBPS}. At most the "
                         "batch caps."),
)
