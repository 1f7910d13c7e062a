"""The probe state machine with explicit times (no clock)."""

from __future__ import annotations

from typing import Any

from sigma.agent.probes.policy import (
    LIVENESS,
    READINESS,
    STARTUP,
    Health,
    Restart,
    begin,
    container_probes,
    due,
    failure_message,
    next_wake,
    observe,
    parse_probe,
    should_report_failure,
)

HTTP = {"httpGet": {"port": 8080, "path": "/healthz"}}


def probes(**fields: dict[str, Any]) -> dict[str, Any]:
    return container_probes({"name": "main", **{k: {**HTTP, **v} for k, v in fields.items()}})


def test_defaults_are_kubernetes_and_zero_means_default() -> None:
    p = parse_probe(LIVENESS, {**HTTP, "periodSeconds": 0, "successThreshold": 5})
    assert p is not None
    assert (p.initial_delay, p.period, p.timeout, p.success_threshold, p.failure_threshold) == (0, 10, 1, 1, 3)
    assert p.handler == "httpGet" and p.action["port"] == 8080
    r = parse_probe(READINESS, {**HTTP, "successThreshold": 2, "terminationGracePeriodSeconds": 5})
    assert r is not None and r.success_threshold == 2 and r.termination_grace == 5
    assert parse_probe(LIVENESS, {"periodSeconds": 1}) is None  # no handler: no probe


def test_without_probes_a_running_container_is_started_and_ready() -> None:
    assert begin({}, 100.0).health == Health(started=True, ready=True)
    assert next_wake(begin({}, 100.0)) is None


def test_readiness_waits_for_the_initial_delay_then_turns_ready_on_first_success() -> None:
    ps = probes(readinessProbe={"initialDelaySeconds": 5, "periodSeconds": 2})
    s = begin(ps, 100.0)
    assert s.health == Health(started=True, ready=False)
    assert due(s, 104.9) == [] and next_wake(s) == 105.0
    assert due(s, 105.0) == [READINESS]
    s, restart = observe(ps, s, READINESS, True, 105.0)
    assert s.health.ready and restart is None and next_wake(s) == 107.0


def test_readiness_turns_false_after_failure_threshold_and_back_after_success_threshold() -> None:
    ps = probes(readinessProbe={"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 2})
    s = begin(ps, 0.0)
    s, _ = observe(ps, s, READINESS, True, 1.0)
    assert not s.health.ready  # one success of two
    s, _ = observe(ps, s, READINESS, True, 2.0)
    assert s.health.ready
    s, _ = observe(ps, s, READINESS, False, 3.0)
    assert s.health.ready  # one failure of two: the published result holds
    s, _ = observe(ps, s, READINESS, True, 4.0)
    s, _ = observe(ps, s, READINESS, False, 5.0)
    assert s.health.ready  # the run of failures started over
    s, restart = observe(ps, s, READINESS, False, 6.0)
    assert not s.health.ready and restart is None  # readiness never restarts


def test_liveness_restarts_after_failure_threshold_and_stops_probing() -> None:
    ps = probes(livenessProbe={"periodSeconds": 1, "failureThreshold": 3, "terminationGracePeriodSeconds": 4})
    s = begin(ps, 0.0)
    assert s.health == Health(True, True)
    for t in (1.0, 2.0):
        s, restart = observe(ps, s, LIVENESS, False, t)
        assert restart is None
    s, restart = observe(ps, s, LIVENESS, False, 3.0)
    assert restart == Restart(LIVENESS, 4.0)
    assert restart.message("main", "Always") == "Container main failed liveness probe, will be restarted"
    assert restart.message("main", "Never") == "Container main failed liveness probe"
    assert s.killed and due(s, 100.0) == [] and next_wake(s) is None


def test_a_success_between_failures_resets_the_count() -> None:
    ps = probes(livenessProbe={"failureThreshold": 2})
    s = begin(ps, 0.0)
    s, _ = observe(ps, s, LIVENESS, False, 1.0)
    s, _ = observe(ps, s, LIVENESS, True, 2.0)
    s, restart = observe(ps, s, LIVENESS, False, 3.0)
    assert restart is None and not s.killed


def test_startup_probe_gates_liveness_and_readiness_until_it_succeeds() -> None:
    ps = probes(startupProbe={"periodSeconds": 1, "failureThreshold": 30},
                livenessProbe={"periodSeconds": 10, "initialDelaySeconds": 0},
                readinessProbe={"periodSeconds": 1})
    s = begin(ps, 0.0)
    assert s.health == Health(started=False, ready=False)
    assert due(s, 0.0) == [STARTUP]  # liveness and readiness wait
    s, _ = observe(ps, s, STARTUP, False, 0.0)
    assert due(s, 1.0) == [STARTUP]
    s, _ = observe(ps, s, STARTUP, True, 1.0)
    assert s.health == Health(started=True, ready=False)
    assert sorted(due(s, 1.0)) == [LIVENESS, READINESS]  # they begin now
    assert STARTUP not in due(s, 1000.0)  # never again for this container
    s, _ = observe(ps, s, READINESS, True, 1.5)
    assert s.health == Health(started=True, ready=True)


def test_startup_probe_failure_restarts_the_container() -> None:
    ps = probes(startupProbe={"failureThreshold": 2}, livenessProbe={})
    s = begin(ps, 0.0)
    s, restart = observe(ps, s, STARTUP, False, 1.0)
    assert restart is None
    s, restart = observe(ps, s, STARTUP, False, 11.0)
    assert restart is not None and restart.kind == STARTUP and restart.grace is None
    assert restart.message("app", "OnFailure") == "Container app failed startup probe, will be restarted"


def test_without_readiness_probe_the_container_is_ready_once_started() -> None:
    ps = probes(startupProbe={})
    s, _ = observe(ps, begin(ps, 0.0), STARTUP, True, 1.0)
    assert s.health == Health(started=True, ready=True)


def test_unhealthy_events_are_throttled_and_worded_as_kubelet() -> None:
    assert should_report_failure(None, 5.0)
    assert not should_report_failure(5.0, 10.0)
    assert should_report_failure(5.0, 35.0)
    assert failure_message(LIVENESS, "HTTP probe failed with statuscode: 500") == \
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
