"""The pod CIDR allocator: each Node gets ``spec.podCIDR`` (and ``spec.podCIDRs``), a block of
the cluster CIDR its agent hands out pod addresses from (kube-controller-manager's range
allocator, ``--allocate-node-cidrs``).

The allocation lives only on the Nodes: what is taken is read from them at every pass, so a
master restart loses nothing and a deleted Node's block is free again at the next pass. A
Node that already carries a podCIDR (set by an admin, or at creation) keeps it; blocks are
handed out lowest first, to nodes in name order, so a pass is deterministic.

    allocate(cluster, mask, nodes) -> {node name: block}   pure
    PodCidrController                                     lists Nodes, writes the blocks
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.guard import guarded

log = logging.getLogger("sigma.podcidr")

COMPONENT = "node-ipam-controller"
DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_MASK = 24
PERIOD_S = 1.0

Network = ipaddress.IPv4Network


def parse_cluster_cidrs(text: str, mask: int, service_cidr: str = "") -> list[Network]:
    """The cluster CIDRs of ``--cluster-cidr`` (comma-separated IPv4 blocks), checked against
    ``--node-cidr-mask-size``; a ValueError that names the flag otherwise."""
    cidrs: list[Network] = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        try:
            net = ipaddress.ip_network(part, strict=True)
        except ValueError as err:
            raise ValueError(f"--cluster-cidr: {part!r} is not a network address/prefix ({err})") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"--cluster-cidr: {part}: only IPv4 pod networks are supported")
        if not net.prefixlen <= mask <= 30:
            raise ValueError(f"--node-cidr-mask-size {mask} must be between the prefix of --cluster-cidr "
                             f"{part} (/{net.prefixlen}) and 30 (a node needs room for its gateway and pods)")
        for other in cidrs:
            if net.overlaps(other):
                raise ValueError(f"--cluster-cidr: {part} overlaps {other}")
        cidrs.append(net)
    if not cidrs:
        raise ValueError("--cluster-cidr: at least one IPv4 network is needed")
    if service_cidr:
        service = ipaddress.ip_network(service_cidr, strict=False)
        for net in cidrs:
            if net.overlaps(service):
                raise ValueError(f"--cluster-cidr {net} overlaps the service CIDR {service}")
    return cidrs


def cluster_cidrs_of(options: dict[str, Any]) -> tuple[list[Network], int]:
    """The master options' ``cluster_cidr`` and ``node_cidr_mask_size`` (flags of `sigma
    master`), defaults filled in and checked."""
    mask = int(options.get("node_cidr_mask_size", DEFAULT_NODE_MASK))
    text = str(options.get("cluster_cidr") or DEFAULT_CLUSTER_CIDR)
    return parse_cluster_cidrs(text, mask, str(options.get("service_cluster_ip_range") or "")), mask


def node_pod_cidr(node: dict[str, Any]) -> str:
    spec = node.get("spec") or {}
    return str(spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or []), "") or "")


def _blocks(cluster: list[Network], mask: int) -> Iterator[Network]:
    for net in cluster:
        yield from net.subnets(new_prefix=mask)


def allocate(cluster: list[Network], mask: int, nodes: list[dict[str, Any]]) -> dict[str, str | None]:
    """For every Node without a podCIDR: the lowest free block, or None when the cluster
    CIDR is exhausted. Pure."""
    taken: list[Network] = []
    for node in nodes:
        with_cidr = node_pod_cidr(node)
        if with_cidr:
            try:
                net = ipaddress.ip_network(with_cidr, strict=False)
            except ValueError:
                continue  # validation refuses these; an old bad one occupies nothing
            if isinstance(net, ipaddress.IPv4Network):
                taken.append(net)
    wanting = sorted(str(n["metadata"]["name"]) for n in nodes
                     if not node_pod_cidr(n) and not n["metadata"].get("deletionTimestamp"))
    out: dict[str, str | None] = {}
    free = (b for b in _blocks(cluster, mask) if not any(b.overlaps(t) for t in taken))
    for name in wanting:
        block = next(free, None)
        out[name] = str(block) if block is not None else None
    return out


class PodCidrController:
    name = "podcidr"

    def __init__(self, client: ApiClient, cluster: list[Network], mask: int, period_s: float = PERIOD_S) -> None:
        self.client, self.cluster, self.mask, self.period_s = client, cluster, mask, period_s
        self._exhausted: set[str] = set()  # nodes already told, so the Event is not repeated every pass

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sync()
            except ApiError as err:
                log.warning("pod CIDR allocation: %s", err)
            except Exception:
                log.exception("pod CIDR allocation failed")
            stop.wait(self.period_s)

    def sync(self) -> dict[str, str | None]:
        """One pass; returns what it decided (node -> block, None when none was left)."""
        nodes = self.client.list("nodes")["items"]
        decided = allocate(self.cluster, self.mask, nodes)
        by_name = {n["metadata"]["name"]: n for n in nodes}
        for name, block in decided.items():
            node = {"kind": "Node", "apiVersion": "v1", **by_name[name]}
            if block is None:
                if name not in self._exhausted:
                    self._exhausted.add(name)
                    log.warning("no pod CIDR left for node %s in %s", name, ",".join(map(str, self.cluster)))
                    record_event(self.client, node, "Normal", "CIDRNotAvailable",
                                 f"Node {name} status is now: CIDRNotAvailable", COMPONENT)
                continue
            guarded(self.client, node, COMPONENT, "CIDRAssignmentFailed", partial(self._assign, node, block),
                    "assigning a pod CIDR to")
        self._exhausted &= set(by_name)
        return decided

    def _assign(self, node: dict[str, Any], block: str) -> None:
        # resourceVersion from the list: a Node changed since (or one that took a block by
        # itself) makes this a conflict, and the next pass decides again.
        spec = {**(node.get("spec") or {}), "podCIDR": block, "podCIDRs": [block]}
        self.client.update("nodes", {**node, "spec": spec})
        self._exhausted.discard(node["metadata"]["name"])
        log.info("node %s: podCIDR %s", node["metadata"]["name"], block)
