"""CreateContainerConfigError replaces ContainerCreating for a container held by its env."""

from __future__ import annotations

from sigma.agent.volumes.status import with_config_errors

STATUS = {"phase": "Pending", "containerStatuses": [
    {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}},
    {"name": "b", "state": {"running": {"startedAt": "t"}}}]}


def test_waiting_container_shows_the_config_error() -> None:
    out = with_config_errors(STATUS, {"a": ("CreateContainerConfigError", 'configmap "x" not found'),
                                      "b": ("CreateContainerConfigError", "stale")})
    assert out["containerStatuses"][0]["state"] == {"waiting": {"reason": "CreateContainerConfigError",
                                                                "message": 'configmap "x" not found'}}
    assert out["containerStatuses"][1] == STATUS["containerStatuses"][1]  # running: untouched
    assert STATUS["containerStatuses"][0]["state"]["waiting"] == {"reason": "ContainerCreating"}  # not mutated


def test_no_errors_is_the_same_status() -> None:
    assert with_config_errors(STATUS, {}) is STATUS
