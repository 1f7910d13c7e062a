"""The filter table: every path of the core (feasibility, the cached static mask, the
diagnosis, preemption's candidates) reads it, so one entry is all a new filter needs."""

from __future__ import annotations

import numpy as np
import pytest

from sigma.scheduling import pipeline
from sigma.scheduling.filters import Rejections
from sigma.scheduling.pipeline import FILTERS, FilterEntry, Stage
from sigma.scheduling.profile import PodProfile
from sigma.scheduling.snapshot import ClusterSnapshot
from sigma.scheduling.status import Code, Status
from tests.scheduling.builders import GIB, node, pod, scheduler

PROD, FREE = 9500, 3500


class NotNamed:
    """A filter for the test: rejects the node whose name it is given."""

    def __init__(self, name: str) -> None:
        self.name = f"NotNamed({name})"
        self.refused = name

    def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> np.ndarray:
        return np.array([n.name != self.refused for n in snapshot.nodes], dtype=bool)

    def rejections(self, snapshot: ClusterSnapshot, profile: PodProfile) -> Rejections:
        return [(~self.feasible(snapshot, profile), Status(Code.UNRESOLVABLE, (f"node is {self.refused}",)))]


@pytest.mark.parametrize("stage", [Stage.STATIC, Stage.LIVE])
def test_one_table_entry_reaches_every_path(monkeypatch: pytest.MonkeyPatch, stage: Stage) -> None:
    monkeypatch.setattr(pipeline, "FILTERS", (*FILTERS, FilterEntry(NotNamed("a"), stage)))
    # Node a is empty but refused by the new filter; node b is full of low-priority pods.
    placed = [(pod(f"fb{i}", cpu=2000, memory=0, priority=FREE), "b") for i in (1, 2)]
    s = scheduler([node("a", cpu=4000, memory=8 * GIB), node("b", cpu=4000, memory=8 * GIB)], placed)

    result = s.schedule(pod("p", cpu=3000, memory=0, priority=PROD))

    assert result.node is None
    assert result.diagnosis is not None and "node is a" in result.diagnosis.message()
    assert result.preemption is not None and result.preemption.node_name == "b"
    monkeypatch.setattr(pipeline, "FILTERS", FILTERS)  # without the entry, node a takes the pod
    assert scheduler([node("a", cpu=4000), node("b", cpu=4000)], placed).schedule(
        pod("p", cpu=3000, memory=0, priority=PROD)).node_name == "a"


def test_a_filter_that_does_not_apply_to_the_pod_is_never_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding(NotNamed):
        def feasible(self, snapshot: ClusterSnapshot, profile: PodProfile) -> np.ndarray:
            raise AssertionError("evaluated for a pod it does not apply to")

    monkeypatch.setattr(pipeline, "FILTERS", (*FILTERS, FilterEntry(Exploding("a"), Stage.LIVE,
                                                                    applies=lambda profile: False)))
    s = scheduler([node("a"), node("b")], [])
    assert s.schedule(pod("p")).node is not None
