from __future__ import annotations

import pytest

from sigma.scheduling import BANDS, Scheduler, band_of, may_preempt, select_victims_on_node
from tests.scheduling.builders import GIB, node, pod, scheduler

PROD, MID, BATCH, FREE = 9500, 7500, 5500, 3500


@pytest.mark.parametrize(
    ("preemptor", "victim", "allowed"),
    [
        pytest.param(9500, 5500, True, id="prod preempts batch"),
        pytest.param(9999, 9000, False, id="never within the prod band"),
        pytest.param(5500, 5000, False, id="never within the batch band"),
        pytest.param(7000, 3999, True, id="mid preempts free"),
        pytest.param(5500, 9500, False, id="never a higher priority"),
        pytest.param(5500, 5500, False, id="never an equal priority"),
        pytest.param(101, 100, True, id="custom values are each their own band"),
        pytest.param(100, 100, False, id="a custom value never preempts itself"),
    ],
)
def test_who_may_preempt_whom(preemptor: int, victim: int, allowed: bool) -> None:
    assert may_preempt(preemptor, victim) is allowed


def test_bands_are_the_documented_table() -> None:
    assert [(b.name, b.low, b.high) for b in BANDS] == [
        ("sigma-prod", 9000, 9999),
        ("sigma-mid", 7000, 7999),
        ("sigma-batch", 5000, 5999),
        ("sigma-free", 3000, 3999),
    ]
    assert band_of(8500) == "priority-8500"


def full_node(*pods_on_it: tuple[str, int, int]) -> Scheduler:
    """One 4-core node holding (name, cpu, priority) pods."""
    placed = [(pod(name, cpu=cpu, memory=0, priority=prio), "n") for name, cpu, prio in pods_on_it]
    return scheduler([node("n", cpu=4000, memory=8 * GIB)], placed)


@pytest.mark.parametrize(
    ("on_node", "needed_cpu", "victims"),
    [
        pytest.param(
            [("big", 2000, FREE), ("s1", 1000, FREE), ("s2", 1000, FREE)],
            2000,
            ["big"],
            id="one big victim rather than two small ones",
        ),
        pytest.param([("b", 2000, BATCH), ("f", 2000, FREE)], 2000, ["f"], id="the lower priority goes first"),
        pytest.param(
            [("b", 2000, BATCH), ("f", 1000, FREE), ("f2", 1000, FREE)],
            3000,
            ["b", "f2"],
            id="pods are reprieved most important first while the pod still fits",
        ),
        pytest.param(
            [("p", 3000, 9100), ("f", 1000, FREE)],
            2000,
            None,
            id="a same-band pod is never a victim, so it does not fit",
        ),
    ],
)
def test_victims_on_a_node(on_node: list[tuple[str, int, int]], needed_cpu: int, victims: list[str] | None) -> None:
    sched = full_node(*on_node)
    chosen = select_victims_on_node(sched.snapshot, pod("new", cpu=needed_cpu, memory=0, priority=PROD), 0)
    assert (sorted(v.name for v in chosen) if chosen is not None else None) == (sorted(victims) if victims else None)


def test_preemption_picks_the_node_with_the_fewest_then_lowest_victims() -> None:
    nodes = [node(f"n{i}", cpu=4000) for i in range(3)]
    placed = [
        (pod("a1", cpu=2000, priority=BATCH, memory=0), "n0"),
        (pod("a2", cpu=2000, priority=BATCH, memory=0), "n0"),
        (pod("b1", cpu=4000, priority=BATCH, memory=0), "n1"),
        (pod("c1", cpu=4000, priority=FREE, memory=0), "n2"),
    ]
    sched = scheduler(nodes, placed)
    result = sched.schedule(pod("new", cpu=3000, memory=0, priority=PROD))
    assert result.node_name is None and result.preemption is not None
    assert result.preemption.node_name == "n2"
    assert [v.name for v in result.preemption.victims] == ["c1"]
    applied = sched.preempt(result.pod, result.preemption)
    assert applied.node_name == "n2" and sched.snapshot.node_of("c1") is None


def test_ties_between_equal_victim_sets_go_to_the_first_node() -> None:
    nodes = [node(f"n{i}", cpu=1000) for i in range(3)]
    placed = [(pod(f"f{i}", cpu=1000, memory=0, priority=FREE), f"n{i}") for i in range(3)]
    result = scheduler(nodes, placed).schedule(pod("new", cpu=1000, memory=0, priority=PROD))
    assert result.preemption is not None and result.preemption.node_name == "n0"


@pytest.mark.parametrize(
    ("victim_priority",),
    [
        pytest.param(9000, id="same band"),
        pytest.param(PROD, id="equal priority"),
        pytest.param(9900, id="higher"),
    ],
)
def test_no_preemption_when_only_same_band_or_higher_pods_run(victim_priority: int) -> None:
    sched = scheduler([node("n", cpu=1000)], [(pod("old", cpu=1000, memory=0, priority=victim_priority), "n")])
    result = sched.schedule(pod("new", cpu=1000, memory=0, priority=PROD))
    assert result.preemption is None
    assert result.message == "0/1 nodes are available: 1 Insufficient cpu."


def test_no_preemption_on_nodes_rejected_for_other_reasons() -> None:
    placed = [(pod("f", cpu=1000, memory=0, priority=FREE), "n")]
    sched = scheduler([node("n", cpu=1000, labels={"pool": "gpu"})], placed)
    result = sched.schedule(pod("new", cpu=1000, memory=0, priority=PROD, node_selector={"pool": "cpu"}))
    assert result.preemption is None
