"""ClusterSnapshot.set_allocatable: Level-0's new allocatable, with every derived array in step."""

from __future__ import annotations

import numpy as np
import pytest

from sigma.scheduling import BATCH_CPU, CPU, ClusterSnapshot, LeastAllocated, instances_per_node, requests
from sigma.scheduling.snapshot import UnknownNode, UnknownResource
from tests.scheduling.builders import node, pod, scheduler


def batch_nodes() -> ClusterSnapshot:
    nodes = [node(f"n{i}", allocatable={BATCH_CPU: 4000}) for i in range(3)]
    snapshot = ClusterSnapshot(nodes, [(pod("b", cpu=0, memory=0, requests={BATCH_CPU: 1000}), "n1")])
    return snapshot


def assert_consistent(s: ClusterSnapshot) -> None:
    """What the constructor derives from allocatable must still hold after any update."""
    expected_inverse = np.divide(1.0, s.allocatable, out=np.zeros(s.allocatable.shape), where=s.allocatable > 0)
    np.testing.assert_allclose(s.inverse_allocatable, expected_inverse)
    np.testing.assert_allclose(s.free_fraction, s.free * expected_inverse)
    assert s.uniform_allocatable == [bool((row == row[0]).all()) for row in s.allocatable]


def test_every_node_at_once_keeps_what_is_requested() -> None:
    s = batch_nodes()
    row = s.resource_row(BATCH_CPU)
    s.set_allocatable(BATCH_CPU, np.array([3000, 2500, 0]))
    assert s.allocatable[row].tolist() == [3000, 2500, 0]
    assert s.requested[row].tolist() == [0, 1000, 0]
    assert s.free[row].tolist() == [3000, 1500, 0]
    assert_consistent(s)


def test_one_node_by_name_or_index_leaves_the_others_alone() -> None:
    s = batch_nodes()
    row = s.resource_row(BATCH_CPU)
    s.set_allocatable(BATCH_CPU, 2000, "n0")
    s.set_allocatable(BATCH_CPU, 3000, 2)
    assert s.allocatable[row].tolist() == [2000, 4000, 3000]
    assert s.uniform_allocatable[row] is False
    s.set_allocatable(BATCH_CPU, 4000, ["n0", 2])
    assert s.uniform_allocatable[row] is True
    assert_consistent(s)


def test_shrinking_below_what_is_bound_leaves_negative_free_and_nothing_fits() -> None:
    s = batch_nodes()
    s.set_allocatable(BATCH_CPU, 500, "n1")
    assert s.free[s.resource_row(BATCH_CPU), 1] == -500
    fits = instances_per_node(s.free, s.request_vector(requests({BATCH_CPU: 1})))
    assert fits[1] == 0 and (fits[[0, 2]] > 0).all()
    # Giving the capacity back restores free exactly (requested never moved).
    s.set_allocatable(BATCH_CPU, 4000, "n1")
    assert s.free[s.resource_row(BATCH_CPU), 1] == 3000
    assert_consistent(s)


def test_scores_see_the_new_allocatable() -> None:
    # Two equal nodes, the same pod on each; shrink n0's cpu: LeastAllocated now prefers n1.
    sched = scheduler([node("n0"), node("n1")], [(pod("a", cpu=1000), "n0"), (pod("b", cpu=1000), "n1")],
                      scores=((LeastAllocated(), 1.0),))
    sched.snapshot.set_allocatable(CPU, 2000, "n0")
    assert sched.schedule(pod("new", cpu=500, memory=0)).node_name == "n1"


@pytest.mark.parametrize(("args", "error"), [
    pytest.param(("sigma.io/gpu", 1), UnknownResource, id="an untracked resource is refused"),
    pytest.param((BATCH_CPU, 1, "nope"), UnknownNode, id="an unknown node name is refused"),
    pytest.param((BATCH_CPU, 1, 7), UnknownNode, id="an index past the last node is refused"),
    pytest.param((BATCH_CPU, -1), ValueError, id="a negative amount is refused"),
    pytest.param((BATCH_CPU, 1, ["n0", 0]), ValueError, id="a node named twice is refused"),
])
def test_bad_updates_change_nothing(args: tuple[object, ...], error: type[Exception]) -> None:
    s = batch_nodes()
    before = s.allocatable.copy(), s.free.copy()
    with pytest.raises(error):
        s.set_allocatable(*args)
    assert (s.allocatable == before[0]).all() and (s.free == before[1]).all()


def test_update_nodes_takes_new_allocatable_in_place_and_keeps_what_is_requested() -> None:
    s = batch_nodes()
    before = s.nodes
    changed = node("n1", allocatable={BATCH_CPU: 2500})
    assert s.update_nodes([changed]) is True
    row = s.resource_row(BATCH_CPU)
    assert s.allocatable[row].tolist() == [4000, 2500, 4000]
    assert s.free[row].tolist() == [4000, 1500, 4000]
    assert s.nodes[1] is changed and s.nodes[0] is before[0]
    assert_consistent(s)


def test_update_nodes_refuses_a_label_or_cordon_change_and_changes_nothing() -> None:
    s = batch_nodes()
    allocatable = s.allocatable.copy()
    relabelled = node("n0", allocatable={BATCH_CPU: 1000}, labels={"zone": "b"})
    cordoned = node("n2", allocatable={BATCH_CPU: 1000}, unschedulable=True)
    assert s.update_nodes([node("n1", allocatable={BATCH_CPU: 1000}), relabelled]) is False
    assert s.update_nodes([cordoned]) is False
    assert (s.allocatable == allocatable).all()


def test_update_nodes_of_an_unknown_node_raises() -> None:
    with pytest.raises(UnknownNode):
        batch_nodes().update_nodes([node("elsewhere")])
