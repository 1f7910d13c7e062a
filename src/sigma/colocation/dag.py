"""BatchJob DAG progression: a pure state machine from what is observed to what to do next.

A BatchJob (a Fuxi job) is a DAG of tasks; each task runs N identical instances, numbered
0..N-1. `progress(spec, record, pods, now)` looks at the job's durable record and at the
instance pods that exist right now and returns a `Decision`: the job's phase, each task's
counts and state, the record to write back, and the instance pods to create or delete.

Why everything is derived from observations: the job master may restart at any moment
(or two masters may briefly overlap). Nothing it holds in memory matters; calling
`progress` again on the same inputs gives the same answer, so replaying is safe.

Durability. Pods of finished instances are garbage collected sooner or later, so what they
proved is copied into the job's status first (the `TaskRecord`): the indices that succeeded
(a compact range string such as "0-99,120") and, per index, the attempt numbers that failed.
The shell writes `Decision.record` before it creates or deletes anything, so an index that
is recorded as succeeded never runs again, and a failure is never forgotten.

Rules:
- A task is released only when every task it depends on has Succeeded.
- An index is (re)created only if it is not recorded as succeeded, has no live pod, and
  has not exhausted its retries. At most `max_in_flight` live pods per job.
- A failed attempt counts against `retry_limit` (retry_limit=3 allows 4 attempts). An
  evicted attempt (phase Failed with reason Evicted/Preempted) or a pod that vanished
  without finishing (deleted by an eviction, a person or a node drain) does not count:
  the instance simply runs again, because the failure was not the instance's fault.
- Re-runs go first (they are the oldest work), then fresh indices in ascending order.
- An exhausted index fails its task, which fails the job; a passed deadline fails the job.
  A failed job deletes its live pods and creates nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sigma.colocation.indices import decode_indices, encode_indices

LIVE_PHASES = frozenset({"Pending", "Running", "Unknown"})
NOT_INSTANCE_FAULT = frozenset({"Evicted", "Preempted", "Shutdown", "NodeLost"})
"""Pod status reasons that mean the platform stopped the instance: re-run it for free."""


class TaskState(StrEnum):
    WAITING = "Waiting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    instances: int
    dependencies: tuple[str, ...] = ()
    retry_limit: int = 3


@dataclass(frozen=True)
class JobSpec:
    """Tasks in a topological order is not required: `progress` orders them itself."""

    tasks: tuple[TaskSpec, ...]
    max_in_flight: int = 100
    deadline: float | None = None  # seconds since the epoch


@dataclass(frozen=True)
class InstancePod:
    """One observed pod of the job, read from its labels and status."""

    task: str
    index: int
    attempt: int
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    name: str = ""
    reason: str = ""  # status.reason, e.g. "Evicted"
    terminating: bool = False  # metadata.deletionTimestamp is set

    @property
    def live(self) -> bool:
        return self.phase in LIVE_PHASES

    @property
    def counts_as_failure(self) -> bool:
        return self.phase == "Failed" and self.reason not in NOT_INSTANCE_FAULT


@dataclass(frozen=True)
class TaskRecord:
    """What must survive the pods: succeeded indices and failed attempt numbers per index."""

    succeeded: frozenset[int] = frozenset()
    failed_attempts: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def to_status(self) -> dict[str, object]:
        out: dict[str, object] = {"succeeded": encode_indices(self.succeeded)}
        if self.failed_attempts:
            out["failedAttempts"] = {str(i): sorted(a) for i, a in sorted(self.failed_attempts.items())}
        return out

    @classmethod
    def from_status(cls, raw: Mapping[str, object]) -> TaskRecord:
        """Tolerant: a damaged record loses only what it cannot parse."""
        text = raw.get("succeeded")
        succeeded = decode_indices(text) if isinstance(text, str) else frozenset()
        failed: dict[int, frozenset[int]] = {}
        attempts = raw.get("failedAttempts")
        if isinstance(attempts, Mapping):
            for key, values in attempts.items():
                if str(key).isdigit() and isinstance(values, list):
                    failed[int(key)] = frozenset(v for v in values if isinstance(v, int))
        return cls(succeeded, failed)


@dataclass(frozen=True)
class CreateInstance:
    task: str
    index: int
    attempt: int
    rerun: bool
    reason: str


@dataclass(frozen=True)
class DeleteInstance:
    name: str
    reason: str


@dataclass(frozen=True)
class TaskProgress:
    pending: int
    running: int
    succeeded: int
    failed: int
    state: TaskState


@dataclass(frozen=True)
class Decision:
    phase: JobPhase
    reason: str
    message: str
    tasks: dict[str, TaskProgress]
    record: dict[str, TaskRecord]
    create: tuple[CreateInstance, ...] = ()
    delete: tuple[DeleteInstance, ...] = ()


@dataclass
class _TaskView:
    """One task's observations folded together (private working state of `progress`)."""

    spec: TaskSpec
    succeeded: set[int]
    failed_attempts: dict[int, set[int]]
    live: dict[int, InstancePod]
    highest_attempt: dict[int, int]
    interrupted: set[int]  # indices whose last attempt was stopped by the platform

    def exhausted(self) -> list[int]:
        return sorted(i for i, a in self.failed_attempts.items()
                      if len(a) > self.spec.retry_limit and i not in self.succeeded)

    def record(self) -> TaskRecord:
        return TaskRecord(frozenset(self.succeeded),
                          {i: frozenset(a) for i, a in self.failed_attempts.items() if i not in self.succeeded})


def topological_order(tasks: Iterable[TaskSpec]) -> list[TaskSpec]:
    """Kahn's algorithm, ties in spec order. Tasks on a cycle (rejected by validation, but
    be safe) are left out, so they are never released."""
    pending = list(tasks)
    done: set[str] = set()
    order: list[TaskSpec] = []
    progressed = True
    while pending and progressed:
        progressed = False
        for task in list(pending):
            if all(d in done for d in task.dependencies):
                order.append(task)
                done.add(task.name)
                pending.remove(task)
                progressed = True
    return order


def _fold(spec: TaskSpec, record: TaskRecord, pods: list[InstancePod]) -> _TaskView:
    view = _TaskView(spec, {i for i in record.succeeded if 0 <= i < spec.instances},
                     {i: set(a) for i, a in record.failed_attempts.items()}, {}, {}, set())
    latest: dict[int, InstancePod] = {}
    for pod in pods:
        if not 0 <= pod.index < spec.instances:
            continue  # left over from a different spec; never ours to count
        view.highest_attempt[pod.index] = max(view.highest_attempt.get(pod.index, -1), pod.attempt)
        if pod.phase == "Succeeded":
            view.succeeded.add(pod.index)
        elif pod.counts_as_failure:
            view.failed_attempts.setdefault(pod.index, set()).add(pod.attempt)
        elif pod.live:
            view.live[pod.index] = pod
        if pod.index not in latest or pod.attempt > latest[pod.index].attempt:
            latest[pod.index] = pod
    view.interrupted = {i for i, p in latest.items() if p.phase == "Failed" and not p.counts_as_failure}
    for i, attempts in view.failed_attempts.items():
        view.highest_attempt[i] = max(view.highest_attempt.get(i, -1), *attempts)
    return view


def progress(spec: JobSpec, record: Mapping[str, TaskRecord], pods: Iterable[InstancePod],
             now: float | None = None) -> Decision:
    by_task: dict[str, list[InstancePod]] = {}
    for pod in pods:
        by_task.setdefault(pod.task, []).append(pod)
    views = {t.name: _fold(t, record.get(t.name, TaskRecord()), by_task.get(t.name, []))
             for t in spec.tasks}
    order = topological_order(spec.tasks)  # once per call: it is quadratic in the tasks
    states = _states(order, views)
    new_record = {name: view.record() for name, view in views.items()}
    tasks = {name: _counts(view, states[name]) for name, view in views.items()}
    live = [p for v in views.values() for p in v.live.values()]

    failed = [name for name, state in states.items() if state is TaskState.FAILED]
    if failed or (spec.deadline is not None and now is not None and now > spec.deadline):
        if failed:
            view = views[failed[0]]
            index = view.exhausted()[0]
            reason, message = "TaskFailed", (
                f"task {failed[0]} instance {index} failed {len(view.failed_attempts[index])} times "
                f"(retry limit {view.spec.retry_limit})")
        else:
            reason, message = "DeadlineExceeded", "the job ran past spec.deadline"
        delete = tuple(DeleteInstance(p.name, f"job failed: {message}") for p in live if not p.terminating)
        return Decision(JobPhase.FAILED, reason, message, tasks, new_record, (), delete)
    if all(state is TaskState.SUCCEEDED for state in states.values()):
        return Decision(JobPhase.SUCCEEDED, "Completed", "every task succeeded", tasks, new_record)

    create = _creations(order, views, states, budget=spec.max_in_flight - len(live))
    started = bool(live or create or any(v.succeeded or v.failed_attempts for v in views.values()))
    phase = JobPhase.RUNNING if started else JobPhase.PENDING
    running = sum(1 for s in states.values() if s is TaskState.RUNNING)
    return Decision(phase, "Running" if started else "Pending", f"{running} task(s) running",
                    tasks, new_record, tuple(create))


def _states(order: list[TaskSpec], views: Mapping[str, _TaskView]) -> dict[str, TaskState]:
    states: dict[str, TaskState] = {name: TaskState.WAITING for name in views}
    for task in order:
        view = views[task.name]
        if view.exhausted():
            states[task.name] = TaskState.FAILED
        elif len(view.succeeded) >= task.instances:
            states[task.name] = TaskState.SUCCEEDED
        elif all(states.get(d) is TaskState.SUCCEEDED for d in task.dependencies):
            states[task.name] = TaskState.RUNNING
    return states


def _counts(view: _TaskView, state: TaskState) -> TaskProgress:
    succeeded = len(view.succeeded)
    running = sum(1 for p in view.live.values() if p.phase == "Running")
    failed = len(view.exhausted())
    pending = max(view.spec.instances - succeeded - running - failed, 0)
    return TaskProgress(pending, running, succeeded, failed, state)


def _creations(order: list[TaskSpec], views: Mapping[str, _TaskView], states: Mapping[str, TaskState],
               budget: int) -> list[CreateInstance]:
    out: list[CreateInstance] = []
    for task in order:
        if budget <= len(out):
            break
        if states[task.name] is not TaskState.RUNNING:
            continue
        view = views[task.name]
        # Indices that ran before (failed or interrupted) first, then fresh ones in order.
        ran = sorted(view.highest_attempt)
        fresh = (i for i in range(task.instances) if i not in view.highest_attempt)
        for index in [*ran, *fresh]:
            if budget <= len(out):
                break
            if index in view.succeeded or index in view.live:
                continue
            attempt = view.highest_attempt.get(index, -1) + 1
            failures = len(view.failed_attempts.get(index, ()))
            if attempt == 0:
                reason = "first attempt"
            elif index in view.interrupted or failures == 0:
                reason = f"re-run after the platform stopped attempt {attempt - 1} (no retry used)"
            else:
                reason = f"retry {failures}/{task.retry_limit} after attempt {attempt - 1} failed"
            out.append(CreateInstance(task.name, index, attempt, attempt > 0, reason))
    return out
