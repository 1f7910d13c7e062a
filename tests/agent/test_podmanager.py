"""The pod manager without I/O: observed containers in, instructions out."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent.podmanager import (
    BackOff,
    PodManager,
    PodTerminated,
    RemoveContainer,
    RemovePod,
    ReportStatus,
    StartContainer,
    StopContainer,
    WaitUntil,
    pod_phase,
)
from sigma.agent.runtime.base import EXITED, RUNNING, ContainerStatus

from .conftest import make_pod


def run(
    attempt: int,
    state: str = RUNNING,
    code: int | None = None,
    reason: str = "",
    started: float = 100.0,
    finished: float | None = None,
    uid: str = "u1",
) -> ContainerStatus:
    return ContainerStatus(
        id=f"{uid}_main_{attempt}",
        runtime="process",
        pod_uid=uid,
        name="main",
        attempt=attempt,
        state=state,
        pid=10 + attempt,
        exit_code=code,
        reason=reason,
        started_at=started,
        finished_at=finished,
    )


def kinds(instructions: list[Any]) -> list[str]:
    return [type(i).__name__ for i in instructions]


def status(instructions: list[Any]) -> dict[str, Any]:
    return next(i.status for i in instructions if isinstance(i, ReportStatus))


POD = make_pod("p", ["x"], uid="u1")


@pytest.mark.parametrize(
    ("case", "policy", "observed", "now", "expected"),
    [
        ("a new pod gets its container started", "Always", [], 0.0, ["StartContainer", "ReportStatus"]),
        ("a running container is left alone", "Always", [run(0)], 200.0, ["ReportStatus"]),
        (
            "the first restart is immediate",
            "Always",
            [run(0, EXITED, 1, "Error", finished=150.0)],
            150.0,
            ["StartContainer", "ReportStatus"],
        ),
        (
            "the second restart waits for the back-off",
            "Always",
            [run(0, EXITED, 1, "Error", finished=150.0), run(1, EXITED, 1, "Error", finished=160.0)],
            165.0,
            ["ReportStatus", "WaitUntil"],
        ),
        (
            "after the back-off the restart drops the older attempt",
            "Always",
            [run(0, EXITED, 1, "Error", finished=150.0), run(1, EXITED, 1, "Error", finished=160.0)],
            170.0,
            ["RemoveContainer", "StartContainer", "ReportStatus"],
        ),
        (
            "OnFailure does not restart a success",
            "OnFailure",
            [run(0, EXITED, 0, "Completed", finished=150.0)],
            200.0,
            ["ReportStatus"],
        ),
        (
            "Never does not restart a failure",
            "Never",
            [run(0, EXITED, 2, "Error", finished=150.0)],
            200.0,
            ["ReportStatus"],
        ),
        (
            "Always restarts even a success",
            "Always",
            [run(0, EXITED, 0, "Completed", finished=150.0)],
            150.0,
            ["StartContainer", "ReportStatus"],
        ),
    ],
)
def test_restart_rules(
    case: str, policy: str, observed: list[ContainerStatus], now: float, expected: list[str]
) -> None:
    pod = make_pod("p", ["x"], uid="u1", restart=policy)
    assert kinds(PodManager(BackOff(base=10)).handle([pod], observed, now)) == expected, case


@pytest.mark.parametrize(
    ("attempt", "ran", "delay"),
    [(0, 1, 0.0), (1, 1, 10.0), (2, 1, 20.0), (3, 1, 40.0), (9, 1, 300.0), (5, 601, 10.0)],
)
def test_back_off_doubles_to_the_cap_and_resets_after_a_long_run(
    attempt: int, ran: float, delay: float
) -> None:
    last = run(attempt, EXITED, 1, "Error", started=100.0, finished=100.0 + ran)
    assert BackOff(base=10, cap=300).delay(last) == delay


def test_crash_loop_is_reported_as_waiting_with_the_last_termination() -> None:
    observed = [run(0, EXITED, 1, "Error", finished=150.0), run(1, EXITED, 137, "OOMKilled", finished=160.0)]
    out = PodManager(BackOff(base=10)).handle([POD], observed, 161.0)
    c = status(out)["containerStatuses"][0]
    assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert c["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert c["restartCount"] == 1
    assert status(out)["phase"] == "Running"
    assert out[-1] == WaitUntil(170.0)


def test_status_is_reported_only_when_it_changes() -> None:
    pm = PodManager()
    assert kinds(pm.handle([POD], [run(0)], 200.0)) == ["ReportStatus"]
    assert pm.handle([POD], [run(0)], 201.0) == []


def test_deletion_stops_once_then_removes_everything_and_reports_terminated() -> None:
    pod = make_pod("p", ["x"], uid="u1")
    pod["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z", deletionGracePeriodSeconds=5)
    pm = PodManager()
    first = pm.handle([pod], [run(0)], 200.0)
    assert first[0] == StopContainer("u1_main_0", "process", 5.0)
    assert not any(isinstance(i, StopContainer) for i in pm.handle([pod], [run(0)], 201.0))
    done = pm.handle([pod], [run(0, EXITED, 143, "Error", finished=202.0)], 202.0)
    assert done == [
        RemoveContainer("u1_main_0", "process"),
        RemovePod("u1"),
        PodTerminated("u1", "default", "p"),
    ]


def test_an_orphan_container_is_stopped_and_cleaned_up() -> None:
    pm = PodManager(orphan_grace_seconds=3)
    assert pm.handle([], [run(0, uid="ghost")], 1.0) == [StopContainer("ghost_main_0", "process", 3.0)]
    assert pm.handle([], [run(0, EXITED, 137, uid="ghost")], 2.0) == [
        RemoveContainer("ghost_main_0", "process"),
        RemovePod("ghost"),
    ]


def test_a_pod_removed_from_the_master_at_once_is_stopped_with_its_own_grace() -> None:
    # Deleted with grace 0 (or its deletion missed): the pod is gone from one list to the
    # next, and its containers get the grace the pod had, not the orphans' longer one.
    pm = PodManager(orphan_grace_seconds=30)
    quick = make_pod("q", ["x"], uid="u1")
    quick["spec"]["terminationGracePeriodSeconds"] = 0
    pm.handle([quick], [run(0)], 1.0)
    assert pm.handle([], [run(0)], 2.0) == [StopContainer("u1_main_0", "process", 0.0)]
    assert pm.handle([], [run(0, EXITED, 137)], 3.0) == [RemoveContainer("u1_main_0", "process"), RemovePod("u1")]
    # Forgotten once nothing of it is left: the same uid seen again as an orphan gets the cap.
    pm.handle([], [], 4.0)
    assert pm.handle([], [run(1)], 5.0) == [StopContainer("u1_main_1", "process", 30.0)]


def test_an_orphan_never_gets_more_than_the_orphan_grace() -> None:
    pm = PodManager(orphan_grace_seconds=5)
    slow = make_pod("s", ["x"], uid="u1")
    slow["spec"]["terminationGracePeriodSeconds"] = 600
    pm.handle([slow], [run(0)], 1.0)
    assert pm.handle([], [run(0)], 2.0) == [StopContainer("u1_main_0", "process", 5.0)]


def test_a_start_instruction_carries_the_attempt_number() -> None:
    out = PodManager().handle([POD], [run(0, EXITED, 1, "Error", finished=1.0)], 1.0)
    start = next(i for i in out if isinstance(i, StartContainer))
    assert (start.attempt, start.container["name"]) == (1, "main")


@pytest.mark.parametrize(
    ("policy", "states", "phase"),
    [
        ("Always", [{"waiting": {}}], "Pending"),
        ("Always", [{"running": {}}], "Running"),
        ("Never", [{"terminated": {"exitCode": 0}}], "Succeeded"),
        ("Never", [{"terminated": {"exitCode": 1}}], "Failed"),
        ("OnFailure", [{"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 0}}], "Succeeded"),
        ("OnFailure", [{"terminated": {"exitCode": 1}}], "Running"),
        ("Always", [{"terminated": {"exitCode": 0}}], "Running"),
        ("Never", [{"running": {}}, {"terminated": {"exitCode": 1}}], "Running"),
    ],
)
def test_phase_follows_kubelet(policy: str, states: list[dict[str, Any]], phase: str) -> None:
    assert pod_phase(policy, [{"state": s, "lastState": {}} for s in states]) == phase


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    pm = PodManager()
    first = status(pm.handle([POD], [run(0)], 100.0))
    pm._reported.clear()
    second = status(pm.handle([POD], [run(0)], 500.0))
    ready = next(c for c in second["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert first["startTime"] == "1970-01-01T00:01:40Z"
