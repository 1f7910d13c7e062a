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


def test_an_untolerated_prefer_no_schedule_taint_lowers_the_score() -> None:
    soft = Taint("draining", "soon", TaintEffect.PREFER_NO_SCHEDULE)
    assert placed_on(TaintPreference(), [node("tainted", taints=(soft,)), node("clean")]) == "clean"


def test_a_tolerated_prefer_no_schedule_taint_costs_nothing() -> None:
    soft = Taint("draining", "soon", TaintEffect.PREFER_NO_SCHEDULE)
    tolerant = pod("p", tolerations=(Toleration("draining", "Exists"),))
    sched = scheduler([node("tainted", taints=(soft,)), node("clean")], scores=((TaintPreference(), 1.0),))
    profile = sched.profile(tolerant)
    assert profile.static_score[0] - profile.static_score[1] == pytest.approx(0, abs=1e-5)


def test_least_allocated_spreads_identical_pods_over_identical_nodes() -> None:
    sched = scheduler([node(f"n{i}") for i in range(4)])
    names = [sched.schedule(pod(f"p{i}")).node_name for i in range(8)]
    assert sorted(names) == sorted([f"n{i}" for i in range(4)] * 2)  # type: ignore[type-var]
