from __future__ import annotations

import pytest

from sigma.scheduling import Code, Status, summarize_failures
from tests.scheduling.builders import node, pod, scheduler

SELECTOR = "node(s) didn't match Pod's node affinity/selector"


def rejected(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param(
            [rejected("Insufficient cpu")] * 31 + [rejected(SELECTOR)] * 9,
            f"0/40 nodes are available: 31 Insufficient cpu, 9 {SELECTOR}.",
            id="the issue's example",
        ),
        pytest.param(
            [rejected("Insufficient memory")] * 2 + [rejected("Insufficient cpu")] * 2,
            "0/4 nodes are available: 2 Insufficient cpu, 2 Insufficient memory.",
            id="entries are sorted as strings",
        ),
        pytest.param(
            [rejected("Insufficient cpu", "Insufficient memory")],
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
            id="one node may count for several reasons",
        ),
        pytest.param([], "0/0 nodes are available.", id="an empty cluster"),
        pytest.param(
            [rejected("Insufficient cpu")] * 10 + [rejected(SELECTOR)] * 9,
            f"0/19 nodes are available: 10 Insufficient cpu, 9 {SELECTOR}.",
            id="like kube-scheduler the count is part of the sorted string",
        ),
    ],
)
def test_summary_reads_like_kube_scheduler(statuses: list[Status], expected: str) -> None:
    assert summarize_failures(len(statuses), statuses) == expected


def test_a_node_failing_several_filters_reports_only_the_first() -> None:
    # Too small AND the wrong pool: the selector (earlier in the pipeline) is the reason.
    nodes = [node(f"small{i}", cpu=500) for i in range(3)]
    result = scheduler(nodes).schedule(pod("q", cpu=1000, node_selector={"pool": "cpu"}))
    assert result.message == "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def test_diagnosis_mixes_reasons_across_nodes() -> None:
    nodes = [node(f"small{i}", cpu=500, labels={"pool": "cpu"}) for i in range(31)] + [
        node(f"gpu{i}", labels={"pool": "gpu"}) for i in range(9)
    ]
    result = scheduler(nodes).schedule(pod("p", cpu=1000, node_selector={"pool": "cpu"}))
    assert result.message == (
        "0/40 nodes are available: 31 Insufficient cpu, 9 node(s) didn't match Pod's node affinity/selector."
    )
    assert result.status.code is Code.UNSCHEDULABLE
    assert result.diagnosis is not None and result.diagnosis.status_of(0).reasons == ("Insufficient cpu",)
