"""The pod manager: a pure state machine in the style of dask's worker state machine.

    PodManager.handle(desired_pods, observed_containers, now) -> list[Instruction]

Inputs are the pods bound to this node (Kubernetes pod dicts), what the runtimes report
(ContainerStatus from runtime.list(), which survives agent restarts) and the current time.
Output is what to do. No I/O and no clock reads happen here, so every rule below is
exercised by table tests in microseconds, and an agent restart loses nothing: restart
counts and back-off are derived from the observed containers (attempt numbers, finish
times), not from memory. The only memory kept is what was last reported (to report
changes only) and which stops were already requested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma.agent.podspec import Pod, grace_seconds, uid
from sigma.agent.probes.policy import Health, container_probes, initial_health
from sigma.agent.runtime.base import RUNNING, ContainerStatus


@dataclass(frozen=True)
class StartContainer:
    pod: Pod
    container: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class StopContainer:
    container_id: str
    runtime: str
    grace_seconds: float


@dataclass(frozen=True)
class RemoveContainer:
    container_id: str
    runtime: str


@dataclass(frozen=True)
class RemovePod:
    """Release the pod's node resources (cgroups, log files); its containers are gone."""

    pod_uid: str


@dataclass(frozen=True)
class PodTerminated:
    """A deleted pod has nothing left on the node: the master may drop the object now."""

    pod_uid: str
    namespace: str
    name: str


@dataclass(frozen=True)
class ReportStatus:
    pod_uid: str
    namespace: str
    name: str
    status: dict[str, Any]


@dataclass(frozen=True)
class PodError:
    """This pod could not be handled (a malformed spec, a failed start); the others were.
    The agent records it on the pod as an Event."""

    pod_uid: str
    namespace: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class WaitUntil:
    """Call handle() again at this time even if nothing else happens (back-off expiry)."""

    time: float


Instruction = (
    StartContainer | StopContainer | RemoveContainer | RemovePod | PodTerminated | ReportStatus | PodError
    | WaitUntil
)

TERMINAL = ("Succeeded", "Failed")


@dataclass
class BackOff:
    base: float = 10.0
    cap: float = 300.0
    # A container that ran this long before failing starts over at the base delay.
    reset_after: float = 600.0

    def delay(self, last: ContainerStatus) -> float:
        """kubelet's rule: the first restart is immediate, then base, 2*base, ... up to cap."""
        ran = (last.finished_at or 0.0) - (last.started_at or 0.0)
        if last.attempt == 0 or ran >= self.reset_after:
            return 0.0 if last.attempt == 0 else self.base
        return float(min(self.cap, self.base * 2 ** (last.attempt - 1)))


def rfc3339(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodManager:
    backoff: BackOff = field(default_factory=BackOff)
    orphan_grace_seconds: float = 30.0
    _reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    _first_seen: dict[str, float] = field(default_factory=dict)
    _stop_sent: set[str] = field(default_factory=set)
    # Each known pod's grace as last seen: a pod removed from the master at once (deleted
    # with grace 0, or its deletion missed) is stopped with its own grace, as kubelet's
    # HandlePodRemoves does, not with the longer orphan_grace_seconds kept for pods never seen.
    _graces: dict[str, float] = field(default_factory=dict)
    _health: Mapping[str, Health] = field(default_factory=dict)  # this handle() call's input

    def handle(self, desired: list[Pod], observed: list[ContainerStatus], now: float,
               health: Mapping[str, Health] | None = None) -> list[Instruction]:
        """``health``: started/ready of probed running containers by container id (the probe
        runner's results); a container without an entry shows its state before any probe."""
        self._health = health or {}
        by_pod: dict[str, dict[str, list[ContainerStatus]]] = defaultdict(lambda: defaultdict(list))
        for c in sorted(observed, key=lambda c: c.attempt):
            by_pod[c.pod_uid][c.name].append(c)
        out: list[Instruction] = []
        wanted = {uid(p) for p in desired}
        for pod in desired:
            try:
                out.extend(self._pod(pod, by_pod.get(uid(pod), {}), now))
            except Exception as err:  # one pod the manager cannot read must not stop the others
                out.append(pod_error(pod, "FailedSync", f"{type(err).__name__}: {err}"))
        for pod_uid, containers in by_pod.items():
            if pod_uid not in wanted:  # an orphan: its pod is gone from the master
                grace = min(self.orphan_grace_seconds, self._graces.get(pod_uid, self.orphan_grace_seconds))
                out.extend(self._teardown(pod_uid, containers, grace))
        for forgotten in set(self._graces) - wanted - set(by_pod):  # gone, and nothing of it left
            del self._graces[forgotten]
        for gone in set(self._reported) - wanted:
            del self._reported[gone]
            self._first_seen.pop(gone, None)
        waits = [i.time for i in out if isinstance(i, WaitUntil)]
        return [i for i in out if not isinstance(i, WaitUntil)] + ([WaitUntil(min(waits))] if waits else [])

    def _pod(self, pod: Pod, history: dict[str, list[ContainerStatus]], now: float) -> list[Instruction]:
        pod_uid, meta = uid(pod), pod.get("metadata", {})
        self._first_seen.setdefault(pod_uid, now)
        self._graces[pod_uid] = grace_seconds(pod)
        out: list[Instruction] = []
        if meta.get("deletionTimestamp"):
            out.extend(self._teardown(pod_uid, history, grace_seconds(pod)))
            if not any(isinstance(i, RemovePod) for i in out):
                out.extend(self._report(pod, history, {}, now))
            else:
                out.append(PodTerminated(pod_uid, meta.get("namespace", "default"), meta.get("name", "")))
            return out
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            # Finished work stays finished (kubelet never restarts a terminal pod): nothing is
            # started again, a container still running (an agent that lost track of it) is
            # stopped, and no status is reported, so the recorded outcome is never taken back.
            return self._stop_live(history, grace_seconds(pod))
        policy = pod.get("spec", {}).get("restartPolicy") or "Always"
        backing_off: dict[str, float] = {}
        for container in pod.get("spec", {}).get("containers") or []:
            runs = history.get(container["name"], [])
            if not runs:
                out.append(StartContainer(pod, container, 0))
                continue
            last = runs[-1]
            if last.state == RUNNING or not _should_restart(policy, last):
                continue
            ready_at = (last.finished_at or now) + self.backoff.delay(last)
            if now >= ready_at:
                out.extend(RemoveContainer(c.id, c.runtime) for c in runs[:-1])  # keep one for `previous`
                out.append(StartContainer(pod, container, last.attempt + 1))
            else:
                backing_off[container["name"]] = ready_at
                out.append(WaitUntil(ready_at))
        out.extend(self._report(pod, history, backing_off, now))
        return out

    def _stop_live(self, history: dict[str, list[ContainerStatus]], grace: float) -> list[Instruction]:
        out: list[Instruction] = []
        for c in (c for runs in history.values() for c in runs if c.state == RUNNING):
            if c.id not in self._stop_sent:
                self._stop_sent.add(c.id)
                out.append(StopContainer(c.id, c.runtime, grace))
        return out

    def _teardown(
        self, pod_uid: str, history: dict[str, list[ContainerStatus]], grace: float
    ) -> list[Instruction]:
        everything = [c for runs in history.values() for c in runs]
        live = [c for c in everything if c.state == RUNNING]
        out: list[Instruction] = []
        for c in live:
            if c.id not in self._stop_sent:
                self._stop_sent.add(c.id)
                out.append(StopContainer(c.id, c.runtime, grace))
        if live:
            return out
        self._stop_sent.difference_update(c.id for c in everything)
        out.extend(RemoveContainer(c.id, c.runtime) for c in everything)
        out.append(RemovePod(pod_uid))
        return out

    def _report(
        self, pod: Pod, history: dict[str, list[ContainerStatus]], backing_off: dict[str, float], now: float
    ) -> list[Instruction]:
        status = pod_status(
            pod, history, backing_off, self._first_seen[uid(pod)], now, self._reported.get(uid(pod)), self._health
        )
        if self._reported.get(uid(pod)) == status:
            return []
        self._reported[uid(pod)] = status
        meta = pod.get("metadata", {})
        return [ReportStatus(uid(pod), meta.get("namespace", "default"), meta.get("name", ""), status)]


def pod_error(pod: Pod, reason: str, message: str) -> PodError:
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return PodError(uid(pod), str(meta.get("namespace") or "default"), str(meta.get("name") or ""), reason,
                    message[:400])


# Start failures where the container never ran because its image is not there. kubelet keeps
# retrying those whatever the restart policy, shows them as waiting (the pod stays Pending)
# and backs off as ImagePullBackOff.
IMAGE_REASONS = frozenset({"ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "InvalidImagePullPolicy"})


def _should_restart(policy: str, last: ContainerStatus) -> bool:
    if last.reason in IMAGE_REASONS:
        return True
    if policy == "Never":
        return False
    return policy == "Always" or last.exit_code != 0


def terminated(c: ContainerStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": c.exit_code if c.exit_code is not None else 255,
        "reason": c.reason or "Error",
        "startedAt": rfc3339(c.started_at),
        "finishedAt": rfc3339(c.finished_at),
        "containerID": f"{c.runtime}://{c.id}",
    }
    if c.message:
        out["message"] = c.message
    return out


def container_status(
    container: dict[str, Any], runs: list[ContainerStatus], backoff_until: float | None, now: float,
    health: Health | None = None,
) -> dict[str, Any]:
    """``health``: what the probes say of the running attempt (None: no probe ran yet)."""
    name = container["name"]
    base: dict[str, Any] = {
        "name": name,
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "lastState": {},
    }
    if not runs:
        return {**base, "state": {"waiting": {"reason": "ContainerCreating"}}}
    last = runs[-1]
    base.update(restartCount=last.attempt, containerID=f"{last.runtime}://{last.id}")
    if len(runs) > 1 and runs[-2].state != RUNNING:
        base["lastState"] = {"terminated": terminated(runs[-2])}
    if last.state == RUNNING:
        seen = health or initial_health(container_probes(container))
        return {
            **base,
            "ready": seen.ready,
            "started": seen.started,
            "state": {"running": {"startedAt": rfc3339(last.started_at)}},
        }
    if last.reason in IMAGE_REASONS:
        return {**base, **_image_waiting(container, runs, backoff_until)}
    if backoff_until is not None:
        wait = round(backoff_until - (last.finished_at or now))
        return {
            **base,
            "lastState": {"terminated": terminated(last)},
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {wait}s restarting failed container={name}",
                }
            },
        }
    return {**base, "state": {"terminated": terminated(last)}}


def _image_waiting(
    container: dict[str, Any], runs: list[ContainerStatus], backoff_until: float | None
) -> dict[str, Any]:
    """state and lastState of a container whose image could not be pulled: waiting, with
    the pull's reason and message; lastState is the last run that did run, if any."""
    last = runs[-1]
    reason = last.reason
    if backoff_until is not None and reason == "ErrImagePull":
        reason = "ImagePullBackOff"
    ran = [r for r in runs[:-1] if r.reason not in IMAGE_REASONS and r.state != RUNNING]
    return {
        "lastState": {"terminated": terminated(ran[-1])} if ran else {},
        "state": {"waiting": {"reason": reason, "message": last.message}},
    }


def pod_phase(policy: str, statuses: list[dict[str, Any]]) -> str:
    """kubelet's getPhase for pods without init containers."""
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif s["lastState"].get("terminated"):
            stopped += 1  # waiting to restart after a run: counts as having run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


def pod_status(
    pod: Pod,
    history: dict[str, list[ContainerStatus]],
    backing_off: dict[str, float],
    start_time: float,
    now: float,
    previous: dict[str, Any] | None,
    health: Mapping[str, Health] | None = None,
) -> dict[str, Any]:
    containers = pod.get("spec", {}).get("containers") or []
    health = health or {}

    def probed(name: str) -> Health | None:
        runs = history.get(name, [])
        return health.get(runs[-1].id) if runs else None

    statuses = [
        container_status(c, history.get(c["name"], []), backing_off.get(c["name"]), now, probed(c["name"]))
        for c in containers
    ]
    phase = pod_phase(pod.get("spec", {}).get("restartPolicy") or "Always", statuses)
    unready = [s["name"] for s in statuses if not s["ready"]]
    containers_ready = bool(statuses) and not unready
    old = {c["type"]: c for c in (previous or {}).get("conditions", [])}
    # Conditions the agent does not own (a readiness gate's, set by some controller) are kept.
    current = [c for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    gates_unmet = readiness_gates_unmet(pod, {c.get("type"): c for c in current})

    def condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        value = "True" if ok else "False"
        prior = old.get(kind)
        since = prior["lastTransitionTime"] if prior and prior["status"] == value else rfc3339(now)
        out = {"type": kind, "status": value, "lastTransitionTime": since}
        if not ok and reason:
            out.update(reason=reason, message=message)
        return out

    not_ready = ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    ready_why = not_ready if not containers_ready else ("ReadinessGatesNotReady", "; ".join(gates_unmet))
    owned = ("PodScheduled", "Initialized", "ContainersReady", "Ready")

    return {
        "phase": phase,
        "startTime": rfc3339(start_time),
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", True),
            condition("ContainersReady", containers_ready, *not_ready),
            condition("Ready", containers_ready and not gates_unmet, *ready_why),
            *[c for c in current if c.get("type") not in owned],
        ],
        "containerStatuses": statuses,
    }


def readiness_gates_unmet(pod: Pod, conditions: Mapping[Any, dict[str, Any]]) -> list[str]:
    """Why the pod's readinessGates hold Ready False, in kubelet's words (empty: all met)."""
    out = []
    for gate in (pod.get("spec") or {}).get("readinessGates") or []:
        kind = gate.get("conditionType") if isinstance(gate, dict) else None
        if not kind:
            continue
        found = conditions.get(kind)
        if found is None:
            out.append(f'corresponding condition of pod readiness gate "{kind}" does not exist.')
        elif found.get("status") != "True":
            out.append(f'the status of pod readiness gate "{kind}" is not "True", but {found.get("status")}')
    return out
