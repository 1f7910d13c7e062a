"""ClusterSnapshot: the cluster as numpy arrays, mutated only by assume/forget.

Resource arrays are resource-major, shape (resources, nodes), so that "free cpu on every
node" is one contiguous row: the fit check is one vectorised comparison per resource.
The scheduler reserves a placement by calling `assume`, which changes one column in place;
nothing is ever recomputed for the whole cluster between placements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sigma.scheduling.arrays import BoolArray, FloatArray, IntArray
from sigma.scheduling.labels import NodeLabelIndex
from sigma.scheduling.model import DEFAULT_RESOURCES, PODS, NodeSpec, PodSpec, Requests, Taint
from sigma.scheduling.priority import band_ceiling
from sigma.scheduling.topology import TopologyCounts


class UnknownResource(ValueError):
    """A pod requests a resource the snapshot does not track."""


class UnknownNode(KeyError):
    """A pod names a node the snapshot does not contain."""


@dataclass(frozen=True)
class RequestVector:
    """A pod's requests as a dense vector, plus the dimensions it actually asks for."""

    amounts: IntArray
    asked: tuple[int, ...]  # resource indices with a positive amount (pods always included)


class ClusterSnapshot:
    """Nodes, their allocatable/requested/usage per resource, and the pods bound to them."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        pods: Iterable[tuple[PodSpec, str]] = (),
        resources: Sequence[str] = DEFAULT_RESOURCES,
    ) -> None:
        if PODS not in resources:
            resources = (*resources, PODS)
        self.resources: tuple[str, ...] = tuple(resources)
        self.nodes: tuple[NodeSpec, ...] = tuple(nodes)
        self.node_index: dict[str, int] = {node.name: i for i, node in enumerate(self.nodes)}
        self.allocatable = self._matrix(lambda node: node.allocatable)
        self.usage = self._matrix(lambda node: node.usage)
        self.free: IntArray = self.allocatable.copy()
        # free / allocatable per node, maintained beside `free` so scores need no division.
        self.inverse_allocatable: FloatArray = np.divide(
            1.0, self.allocatable, out=np.zeros(self.allocatable.shape), where=self.allocatable > 0
        )
        self._free_fraction: FloatArray = self.free * self.inverse_allocatable
        # Batch charges (many instances at once, thousands of times between two reads in a
        # simulation) only mark it stale; the next read recomputes it whole, the same values.
        self._fraction_stale = False
        # Where each resource's row starts in `free` flattened (charge_many's indices).
        self._row_starts: IntArray = (np.arange(len(self.resources), dtype=np.int64) * len(self.nodes))[:, None]
        # An empty cluster (no node registered yet) is uniform in every resource.
        self.uniform_allocatable: list[bool] = [
            bool(row.size == 0 or (row == row[0]).all()) for row in self.allocatable
        ]
        self.unschedulable: BoolArray = np.array([n.unschedulable for n in self.nodes], dtype=bool)
        self.taint_masks = _taint_masks(self.nodes)
        self.labels = NodeLabelIndex([node.labels for node in self.nodes])
        self.topology = TopologyCounts(self.labels)
        self.pods_on_node: list[dict[str, PodSpec]] = [{} for _ in self.nodes]
        # Requests per priority band (keyed by the band's highest priority), so preemption
        # can bound "free if every lower band left" for all nodes in one vectorised sum.
        # Node-major (nodes x resources): each placement touches one contiguous row.
        self.requested_by_band: dict[int, IntArray] = {}
        self.pods_by_priority: Counter[int] = Counter()
        self._node_of_pod: dict[str, int] = {}
        # (protocol, port) -> node -> hostIPs taken there ("" for every address), with counts:
        # the NodePorts filter reads only the nodes holding the pod's ports.
        self.host_ports: dict[tuple[str, int], dict[int, Counter[str]]] = {}
        self._vectors: dict[Requests, RequestVector] = {}
        for pod, node_name in pods:
            if node_name not in self.node_index:
                raise UnknownNode(f"pod {pod.namespace}/{pod.name} is bound to unknown node {node_name}")
            self.assume(pod, self.node_index[node_name])

    @property
    def node_count(self) -> int:
        return len(self.nodes)

    @property
    def requested(self) -> IntArray:
        return self.allocatable - self.free

    @property
    def free_fraction(self) -> FloatArray:
        """free / allocatable per resource and node (0 where nothing is allocatable)."""
        if self._fraction_stale:
            np.multiply(self.free, self.inverse_allocatable, out=self._free_fraction)
            self._fraction_stale = False
        return self._free_fraction

    def _matrix(self, amounts_of: Callable[[NodeSpec], dict[str, int]]) -> IntArray:
        matrix = np.zeros((len(self.resources), len(self.nodes)), dtype=np.int64)
        for column, node in enumerate(self.nodes):
            amounts = amounts_of(node)
            for row, resource in enumerate(self.resources):
                matrix[row, column] = amounts.get(resource, 0)
        return matrix

    def resource_row(self, resource: str) -> int:
        return self.resources.index(resource)

    def request_vector(self, requests: Requests) -> RequestVector:
        """Dense requests (with one pod in the pods dimension); memoised per distinct tuple."""
        found = self._vectors.get(requests)
        if found is None:
            amounts = np.zeros(len(self.resources), dtype=np.int64)
            for name, amount in requests:
                if name not in self.resources:
                    raise UnknownResource(f"resource {name!r} is not one of {', '.join(self.resources)}")
                amounts[self.resources.index(name)] = amount
            amounts[self.resources.index(PODS)] = 1
            asked = tuple(int(i) for i in np.flatnonzero(amounts > 0))
            found = self._vectors[requests] = RequestVector(amounts, asked)
        return found

    def node_of(self, uid: str) -> int | None:
        return self._node_of_pod.get(uid)

    def assume(self, pod: PodSpec, node: int) -> None:
        """Reserve `pod` on `node`: its requests leave the node's free capacity now."""
        vector = self.request_vector(pod.requests)
        self._charge(vector, node, -1)
        self._charge_band(pod.priority, vector, node, +1)
        self.pods_by_priority[pod.priority] += 1
        self.pods_on_node[node][pod.uid] = pod
        self._node_of_pod[pod.uid] = node
        self.topology.on_pod(pod.namespace, pod.labels, node, 1)
        for protocol, ip, port in pod.host_ports:
            self.host_ports.setdefault((protocol, port), {}).setdefault(node, Counter())[ip] += 1

    def forget(self, uid: str) -> PodSpec:
        """Remove a pod (deleted, evicted or preempted) and give its capacity back."""
        node = self._node_of_pod.pop(uid)
        pod = self.pods_on_node[node].pop(uid)
        vector = self.request_vector(pod.requests)
        self._charge(vector, node, +1)
        self._charge_band(pod.priority, vector, node, -1)
        self.pods_by_priority[pod.priority] -= 1
        self.topology.on_pod(pod.namespace, pod.labels, node, -1)
        for protocol, ip, port in pod.host_ports:
            per_node = self.host_ports[(protocol, port)]
            per_node[node][ip] -= 1
            if per_node[node][ip] <= 0:
                del per_node[node][ip]
                if not per_node[node]:
                    del per_node[node]
                    if not per_node:
                        del self.host_ports[(protocol, port)]
        return pod

    def _charge(self, vector: RequestVector, node: int, sign: int) -> None:
        # Whole-column updates: two numpy calls beat a dozen scalar element accesses.
        column = self.free[:, node]
        if sign > 0:
            column += vector.amounts
        else:
            column -= vector.amounts
        # Written even when stale: the whole recompute on the next read gives the same values.
        np.multiply(column, self.inverse_allocatable[:, node], out=self._free_fraction[:, node])

    def _charge_band(self, priority: int, vector: RequestVector, node: int, sign: int) -> None:
        ceiling = band_ceiling(priority)
        per_band = self.requested_by_band.get(ceiling)
        if per_band is None:
            per_band = self.requested_by_band[ceiling] = np.zeros_like(self.free.T, order="C")
        if sign > 0:
            per_band[node] += vector.amounts
        else:
            per_band[node] -= vector.amounts

    def update_nodes(self, nodes: Sequence[NodeSpec]) -> bool:
        """Take new versions of known nodes in place when only their allocatable or usage
        changed (Level-0 republishing batch allocatable, a resize); False, with nothing
        changed, when any of them changed labels, taints or cordon: those feed the label
        index, the taint masks and the per-shape static masks, so the caller rebuilds."""
        indices = []
        for node in nodes:
            index = self.node_index.get(node.name)
            if index is None:
                raise UnknownNode(f"node {node.name} is not in the snapshot")
            old = self.nodes[index]
            if (old.labels, old.taints, old.unschedulable) != (node.labels, node.taints, node.unschedulable):
                return False
            indices.append(index)
        for index, node in zip(indices, nodes, strict=True):
            for row, resource in enumerate(self.resources):
                amount = node.allocatable.get(resource, 0)
                if self.allocatable[row, index] != amount:
                    self.set_allocatable(resource, amount, [index])
                self.usage[row, index] = node.usage.get(resource, 0)
        replaced = list(self.nodes)
        for index, node in zip(indices, nodes, strict=True):
            replaced[index] = node
        self.nodes = tuple(replaced)
        return True

    def set_allocatable(self, resource: str, amounts: IntArray | int,
                        nodes: IntArray | Sequence[int | str] | int | str | None = None) -> None:
        """Publish new allocatable of one resource on `nodes` (all nodes when None), keeping
        what is requested there: free = allocatable - requested. Free goes negative where the
        new value is below what bound pods already hold (Level-0 shrank batch allocatable):
        nothing more fits there, and the agent's ladder decides what to evict.

        Nodes are indices or names, each at most once; `amounts` is one value for all of them
        or one per node, in the same order.
        """
        if resource not in self.resources:
            raise UnknownResource(f"resource {resource!r} is not one of {', '.join(self.resources)}")
        row = self.resource_row(resource)
        # The whole row (Level-0 publishing every node each tick) is a slice: no gather/scatter.
        columns: slice | IntArray = slice(None)
        width = self.node_count
        if nodes is not None:
            columns = self._columns(nodes)
            width = columns.size
        values = np.broadcast_to(np.asarray(amounts, dtype=np.int64), (width,))
        if (values < 0).any():
            raise ValueError(f"allocatable of {resource} must be >= 0")
        allocatable = self.allocatable[row]  # a view: writes land in the snapshot
        requested = allocatable[columns] - self.free[row, columns]
        allocatable[columns] = values
        self.free[row, columns] = values - requested
        inverse = np.divide(1.0, values, out=np.zeros(width), where=values > 0)
        self.inverse_allocatable[row, columns] = inverse
        self._free_fraction[row, columns] = self.free[row, columns] * inverse
        # Scores skip the per-node division on a uniform row: that shortcut must stay true.
        self.uniform_allocatable[row] = bool(allocatable.size == 0 or (allocatable == allocatable[0]).all())

    def _columns(self, nodes: IntArray | Sequence[int | str] | int | str) -> IntArray:
        """Node indices for set_allocatable: one or several, by index or by name."""
        listed = [nodes] if isinstance(nodes, str | int | np.integer) else list(nodes)
        columns = np.array([self._index(n) for n in listed], dtype=np.int64)
        if np.unique(columns).size != columns.size:
            raise ValueError("set_allocatable: a node is named more than once")
        return columns

    def _index(self, node: int | str | np.integer) -> int:
        if isinstance(node, str):
            if node not in self.node_index:
                raise UnknownNode(f"node {node!r} is not in the snapshot")
            return self.node_index[node]
        if not 0 <= int(node) < self.node_count:
            raise UnknownNode(f"node index {int(node)} is out of range (0..{self.node_count - 1})")
        return int(node)

    def charge_many(self, vector: RequestVector, nodes: IntArray, counts: IntArray) -> None:
        """Reserve `counts[i]` copies of `vector` on `nodes[i]` in one vectorised step
        (batch placement; these instances are not tracked as individual pods)."""
        if nodes.size == 0:
            return
        delta = vector.amounts[:, None] * counts
        if self.free.flags.c_contiguous:
            # One gather and scatter on the flat view: indexing the columns of the 2-D array
            # costs several times more for the few nodes a batch placement touches.
            self.free.reshape(-1)[self._row_starts + nodes] -= delta
        else:
            self.free[:, nodes] -= delta
        self._fraction_stale = True


def _taint_masks(nodes: Sequence[NodeSpec]) -> dict[Taint, BoolArray]:
    """For each distinct taint, which nodes carry it (few distinct taints, many nodes)."""
    masks: dict[Taint, BoolArray] = {}
    for column, node in enumerate(nodes):
        for taint in node.taints:
            masks.setdefault(taint, np.zeros(len(nodes), dtype=bool))[column] = True
    return masks
