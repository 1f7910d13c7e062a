"""The pod manager never restarts a finished pod, and an agent holds its state directory
alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sigma.agent.agent import StateDirBusy, instance_id, lock_state_dir
from sigma.agent.podmanager import PodManager, ReportStatus, StartContainer, StopContainer
from sigma.agent.runtime.base import RUNNING, ContainerStatus


def pod(phase: str | None, restart: str = "Never") -> dict[str, object]:
    p: dict[str, object] = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
                            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 3,
                                     "containers": [{"name": "main", "command": ["true"]}]}}
    if phase:
        p["status"] = {"phase": phase}
    return p


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
@pytest.mark.parametrize("restart", ["Never", "OnFailure", "Always"])
def test_a_finished_pod_with_no_container_left_is_not_started_again(phase: str, restart: str) -> None:
    # What an agent restarted on state whose containers are gone sees.
    out = PodManager().handle([pod(phase, restart)], [], 100.0)  # type: ignore[list-item]
    assert not [i for i in out if isinstance(i, StartContainer | ReportStatus)]


def test_a_container_still_running_for_a_finished_pod_is_stopped_not_reported() -> None:
    running = ContainerStatus(id="c1", runtime="process", pod_uid="u1", name="main", attempt=0, state=RUNNING,
                              started_at=50.0)
    out = PodManager().handle([pod("Succeeded")], [running], 100.0)  # type: ignore[list-item]
    assert out == [StopContainer("c1", "process", 3.0)]


def test_a_pod_not_yet_finished_is_started() -> None:
    out = PodManager().handle([pod("Pending")], [], 100.0)  # type: ignore[list-item]
    assert any(isinstance(i, StartContainer) for i in out)


def test_one_agent_per_state_directory(tmp_path: Path) -> None:
    first = lock_state_dir(str(tmp_path), 1.0)
    try:
        with pytest.raises(StateDirBusy):
            lock_state_dir(str(tmp_path), 0.3)
    finally:
        os.close(first)
    os.close(lock_state_dir(str(tmp_path), 0.3))  # free again once the first let go


def test_the_instance_id_is_kept_with_the_state(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = instance_id(str(tmp_path / "a"))
    assert one == instance_id(str(tmp_path / "a"))  # a restart on the same state: the same agent
    assert instance_id(str(tmp_path / "b")) != one  # another state directory: another agent
