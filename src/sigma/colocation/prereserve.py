"""Level-0 pre-reservation: prod capacity held back on nodes before a predicted rush. Pure.

How it flows, and why this way:

- Each PredictiveScaler publishes, in its own status, the *extra* prod usage its target is
  predicted to need on each node within the lead window, on top of what it uses now:

      status.reservation: {cpuMillis, memoryBytes, peakTime, until, reason,
                           nodes: [{node, cpuMillis, memoryBytes}]}

  Not in NodeMetric (the agents rewrite it every few seconds and would erase it) and not on
  the Node (an annotation would outlive a deleted scaler). In the scaler's status it goes
  away with the scaler, and `until` is a lease: the controller renews it every step, so a
  stopped controller's reservation lapses within a few steps instead of starving batch.
- Level-0 sums the live reservations per node (`reserved_by_node`) and raises the node's
  predicted prod usage to "prod now + extra" (`raise_predicted`), which its pure
  batch_allocatable already subtracts. So batch allocatable shrinks by about the extra,
  the agent's ladder evicts batch above it, and batch has drained when the rush arrives.

Spreading a scaler's predicted CPU over nodes (`spread`): the load is assumed to be shared
evenly by the replicas there will be (a Service balances per pod). Each existing pod on a
node will carry peak / replicas, so the node's extra is its pods' share minus what they use
now. Replicas that do not exist yet are placed where the sigma-scheduler would have room:
one at a time on the node with the most free prod CPU (requests), which is also where its
spreading score sends them. A replica that fits nowhere reserves nothing: it will pend, and
Level-0 cannot free capacity prod cannot use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sigma.colocation.level0 import ProdUsage, Resources
from sigma.colocation.slo import metric_timestamp


@dataclass(frozen=True)
class TargetOnNode:
    pods: int  # the target's pods bound to this node
    cpu_millis: int  # what they use now (NodeMetric pod entries)
    free_cpu_millis: int  # node cpu allocatable - prod requests, for placing new replicas


def spread(peak_cpu_millis: float, replicas: int, nodes: Mapping[str, TargetOnNode], pod_cpu_request_millis: int,
           pod_memory_bytes: int) -> tuple[dict[str, Resources], int]:
    """Extra prod usage per node for a predicted peak shared by `replicas` pods, and how many
    new replicas found no room."""
    existing = sum(n.pods for n in nodes.values())
    replicas = max(replicas, existing)
    if replicas <= 0 or peak_cpu_millis <= 0:
        return {}, 0
    share = peak_cpu_millis / replicas
    extra: dict[str, Resources] = {}
    for name, node in nodes.items():
        cpu = round(node.pods * share) - node.cpu_millis
        if cpu > 0:
            extra[name] = Resources(cpu, 0)
    free = {name: node.free_cpu_millis for name, node in nodes.items()}
    unplaced = 0
    for _ in range(replicas - existing):
        fits = [name for name, room in free.items() if room >= pod_cpu_request_millis]
        if not fits:
            unplaced += 1
            continue
        name = max(sorted(fits), key=lambda n: free[n])  # sorted: ties go to the first name
        free[name] -= pod_cpu_request_millis
        have = extra.get(name, Resources())
        extra[name] = Resources(have.cpu_millis + round(share), have.memory_bytes + pod_memory_bytes)
    return extra, unplaced


def reservation_nodes(extra: Mapping[str, Resources]) -> list[dict[str, Any]]:
    """The per-node list as written in status.reservation.nodes (a list, so a merge patch
    replaces it whole and a node that no longer needs a reservation drops out)."""
    return [{"node": name, "cpuMillis": r.cpu_millis, "memoryBytes": r.memory_bytes}
            for name, r in sorted(extra.items())]


def reserved_by_node(scalers: Iterable[Mapping[str, Any]], now: float) -> dict[str, Resources]:
    """Summed live reservations per node across PredictiveScalers (lapsed ones ignored)."""
    out: dict[str, Resources] = {}
    for scaler in scalers:
        reservation = (scaler.get("status") or {}).get("reservation")
        if not isinstance(reservation, Mapping):
            continue
        until = metric_timestamp(reservation.get("until"))
        if until is None or until <= now:
            continue
        for entry in reservation.get("nodes") or []:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("node"), str):
                continue
            have = out.get(entry["node"], Resources())
            out[entry["node"]] = Resources(have.cpu_millis + _amount(entry, "cpuMillis"),
                                           have.memory_bytes + _amount(entry, "memoryBytes"))
    return out


def raise_predicted(predicted: Resources | None, usage: ProdUsage | None, prod_requests: Resources,
                    extra: Resources | None, now: float, staleness_s: float) -> Resources | None:
    """The node's predicted prod usage with the pre-reservation on top of what prod uses now
    (its peak if the report is fresh, its requests if not: the same basis Level-0 uses)."""
    if extra is None or (extra.cpu_millis <= 0 and extra.memory_bytes <= 0):
        return predicted
    if usage is not None and now - usage.timestamp <= staleness_s:
        base = Resources(max(usage.cpu_millis, usage.cpu_peak_millis), max(usage.memory_bytes,
                                                                          usage.memory_peak_bytes))
    else:
        base = prod_requests
    total = Resources(base.cpu_millis + extra.cpu_millis, base.memory_bytes + extra.memory_bytes)
    if predicted is None:
        return total
    return Resources(max(total.cpu_millis, predicted.cpu_millis), max(total.memory_bytes, predicted.memory_bytes))


def _amount(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key, 0)
    return max(int(value), 0) if isinstance(value, int | float) and not isinstance(value, bool) else 0
