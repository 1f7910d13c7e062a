"""The probe state machine of one container, kubelet's rules field for field. Pure: the
probe specs, what was observed so far and the time go in; the next probe times, the
container's started/ready flags and a restart decision come out. No clock, no I/O.

kubelet's rules (pkg/kubelet/prober/worker.go):
- Defaults: initialDelaySeconds 0, periodSeconds 10, timeoutSeconds 1, successThreshold 1,
  failureThreshold 3 (0 means the default, as the API server defaults it).
- Results published before any probe: readiness Failure (not ready), liveness Success,
  startup none (not started). Without a startup probe a running container is started;
  without a readiness probe a started container is ready.
- No probe runs before initialDelaySeconds after the container started.
- Until the startup probe succeeds, liveness and readiness do not run. Once it succeeded
  it never runs again for that container.
- A result is published only after `successThreshold` consecutive successes or
  `failureThreshold` consecutive failures; until then the previous one holds.
- A published liveness or startup failure kills the container (restarted under the pod's
  restartPolicy); its probes stop until the container is replaced by a new attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

STARTUP, LIVENESS, READINESS = "startup", "liveness", "readiness"
KINDS = (STARTUP, LIVENESS, READINESS)
FIELD = {STARTUP: "startupProbe", LIVENESS: "livenessProbe", READINESS: "readinessProbe"}
TITLE = {STARTUP: "Startup", LIVENESS: "Liveness", READINESS: "Readiness"}
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
            "failureThreshold": 3}
# One Unhealthy Event per probe of a container at most this often: a probe failing every
# second must not write an Event every second (the count is kept, the writes are not).
EVENT_INTERVAL_S = 30.0


@dataclass(frozen=True)
class Probe:
    kind: str  # STARTUP | LIVENESS | READINESS
    handler: str  # exec | httpGet | tcpSocket | grpc
    action: Mapping[str, Any]  # the handler's own fields (command, port, path...)
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None  # terminationGracePeriodSeconds of this probe


def _number(raw: Mapping[str, Any], name: str) -> int:
    """A field's value; unset, 0 (the API server's "default me") or nonsense is the default."""
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value == 0:
        return DEFAULTS[name]
    return value


def parse_probe(kind: str, raw: Any) -> Probe | None:
    """The probe of a container spec's ``<kind>Probe`` field; None when absent or without a
    handler (validation refuses those; an old stored pod is treated as having no probe)."""
    if not isinstance(raw, Mapping):
        return None
    handler = next((h for h in HANDLERS if isinstance(raw.get(h), Mapping)), None)
    if handler is None:
        return None
    grace = raw.get("terminationGracePeriodSeconds")
    success = _number(raw, "successThreshold")
    return Probe(
        kind=kind, handler=handler, action=dict(raw[handler]),
        initial_delay=float(_number(raw, "initialDelaySeconds")),
        period=float(max(1, _number(raw, "periodSeconds"))),
        timeout=float(max(1, _number(raw, "timeoutSeconds"))),
        success_threshold=success if kind == READINESS else 1,
        failure_threshold=_number(raw, "failureThreshold"),
        termination_grace=float(grace) if isinstance(grace, int) and not isinstance(grace, bool) else None,
    )


def container_probes(container: Mapping[str, Any]) -> dict[str, Probe]:
    out = {}
    for kind in KINDS:
        probe = parse_probe(kind, container.get(FIELD[kind]))
        if probe is not None:
            out[kind] = probe
    return out


@dataclass(frozen=True)
class Health:
    """What the pod status shows of a running container: containerStatuses[].started/ready."""

    started: bool
    ready: bool


def initial_health(probes: Mapping[str, Probe]) -> Health:
    """Before any probe ran (and for a container without probes)."""
    started = STARTUP not in probes
    return Health(started=started, ready=started and READINESS not in probes)


@dataclass(frozen=True)
class Tally:
    """One probe's memory: the last raw result, how many times in a row, when to run next."""

    next_at: float
    last: bool | None = None
    run: int = 0


@dataclass(frozen=True)
class Restart:
    """Kill the container: its liveness (or startup) probe failed failureThreshold times."""

    kind: str
    grace: float | None  # the probe's terminationGracePeriodSeconds; None: the pod's

    def message(self, container: str, restart_policy: str) -> str:
        """kubelet's Killing message (kuberuntime_manager computePodActions)."""
        text = f"Container {container} failed {self.kind} probe"
        return text + (", will be restarted" if restart_policy != "Never" else "")


@dataclass(frozen=True)
class Probing:
    """The probe state of one running container (one attempt)."""

    health: Health
    tallies: Mapping[str, Tally] = field(default_factory=dict)
    killed: bool = False  # a restart was decided: nothing more to probe


def begin(probes: Mapping[str, Probe], started_at: float) -> Probing:
    """The state of a container that started running at ``started_at``."""
    return Probing(initial_health(probes),
                   {k: Tally(next_at=started_at + p.initial_delay) for k, p in probes.items()})


def _active(kind: str, state: Probing) -> bool:
    if state.killed:
        return False
    if kind == STARTUP:
        return not state.health.started  # done once it succeeded
    return state.health.started  # gated by the startup probe


def due(state: Probing, now: float) -> list[str]:
    """The probes to run now."""
    return [k for k, t in state.tallies.items() if _active(k, state) and t.next_at <= now]


def next_wake(state: Probing) -> float | None:
    """When the next probe is due (None: nothing left to probe)."""
    times = [t.next_at for k, t in state.tallies.items() if _active(k, state)]
    return min(times) if times else None


def observe(probes: Mapping[str, Probe], state: Probing, kind: str, ok: bool,
            now: float) -> tuple[Probing, Restart | None]:
    """Record one probe result (obtained at ``now``); the new state and a restart if due."""
    probe, tally = probes[kind], state.tallies[kind]
    run = tally.run + 1 if tally.last == ok else 1
    tallies = {**state.tallies, kind: Tally(next_at=now + probe.period, last=ok, run=run)}
    state = replace(state, tallies=tallies)
    if run < (probe.success_threshold if ok else probe.failure_threshold):
        return state, None  # not enough in a row: the published result holds
    health = state.health
    if kind == READINESS:
        return replace(state, health=replace(health, ready=ok)), None
    if ok:
        if kind == STARTUP and not health.started:
            # Started: liveness and readiness begin now (or at their initial delay).
            tallies = {k: replace(t, next_at=max(t.next_at, now)) if k != STARTUP else t for k, t in tallies.items()}
            ready = READINESS not in probes
            return replace(state, health=Health(started=True, ready=ready), tallies=tallies), None
        return state, None
    return replace(state, health=replace(health, ready=False), killed=True), Restart(kind, probe.termination_grace)


def should_report_failure(last_reported: float | None, now: float) -> bool:
    """Whether this failed probe is written as an Unhealthy Event (throttled per probe)."""
    return last_reported is None or now - last_reported >= EVENT_INTERVAL_S


def failure_message(kind: str, output: str) -> str:
    """kubelet's words: `Liveness probe failed: HTTP probe failed with statuscode: 500`."""
    return f"{TITLE[kind]} probe failed: {output}".strip()[:1024]
