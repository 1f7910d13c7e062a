from __future__ import annotations

import pytest

from sigma.scheduling import LeastAllocated, MostAllocated, Taint, TaintEffect, TaintPreference, Toleration
from tests.scheduling.builders import GIB, node, pod, scheduler


def placed_on(policy: object, nodes: list, placed: list | None = None, p=None) -> str:  # type: ignore[type-arg, no-untyped-def]
    sched = scheduler(nodes, placed, scores=((policy, 1.0),))
    result = sched.schedule(p or pod("new"))
    assert result.node_name is not None
    return result.node_name


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(LeastAllocated(), "empty", id="least allocated prefers the emptier node"),
        pytest.param(MostAllocated(), "busy", id="most allocated packs onto the busier node"),
    ],
)
def test_allocation_scores(policy: object, expected: str) -> None:
    nodes = [node("busy"), node("empty")]
    assert placed_on(policy, nodes, [(pod("old", cpu=2000, memory=4 * GIB), "busy")]) == expected


def test_least_allocated_accounts_for_different_node_sizes() -> None:
    # 1 core used of 2 (50%) versus 3 used of 8 (37.5%): the big node is emptier in share.
    nodes = [node("small", cpu=2000, memory=8 * GIB), node("large", cpu=8000, memory=8 * GIB)]
    placed = [(pod("a", cpu=1000, memory=0), "small"), (pod("b", cpu=3000, memory=0), "large")]
    assert placed_on(LeastAllocated(), nodes, placed, pod("new", cpu=500, memory=0)) == "large"


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        pytest.param((), "clean", id="an untolerated PreferNoSchedule taint lowers the score"),
        pytest.param((Toleration("draining", "Exists"),), "either", id="a tolerated one does not"),
    ],
)
def test_taint_preference(tolerations: tuple[Toleration, ...], expected: str) -> None:
    soft = Taint("draining", "soon", TaintEffect.PREFER_NO_SCHEDULE)
    nodes = [node("tainted", taints=(soft,)), node("clean")]
    chosen = placed_on(TaintPreference(), nodes, p=pod("p", tolerations=tolerations))
    assert chosen == "clean" if expected == "clean" else chosen in ("clean", "tainted")


def test_least_allocated_spreads_identical_pods_over_identical_nodes() -> None:
    sched = scheduler([node(f"n{i}") for i in range(4)])
    names = [sched.schedule(pod(f"p{i}")).node_name for i in range(8)]
    assert sorted(names) == sorted([f"n{i}" for i in range(4)] * 2)  # type: ignore[type-var]
