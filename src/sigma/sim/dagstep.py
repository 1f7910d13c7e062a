"""DAG progression for simulated jobs, by the BatchJob job master's own state machine.

`sigma.colocation.dag.progress` decides, from a job's record and its live pods, which
instances to create next. The simulator groups a task's N identical instances (they are
released together, because release depends only on the task's dependencies), so it asks
`progress` about a one-instance view of each task: "succeeded" is the task being complete,
a live pod is the task being in flight. The decision that comes back (which tasks to
create, and whether the job succeeded) is exactly the one the live job master would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma.colocation.dag import InstancePod, JobPhase, JobSpec, TaskRecord, TaskSpec, progress

_DONE = TaskRecord(succeeded=frozenset({0}))
_NO_LIMIT = 1 << 30


@dataclass
class DagJobState:
    """One job's task-level view: `tasks` maps a task name to its index in the workload."""

    spec: JobSpec
    tasks: dict[str, int]
    done: set[str] = field(default_factory=set)
    in_flight: set[str] = field(default_factory=set)
    needed_by: set[str] = field(default_factory=set)  # tasks some other task depends on

    @classmethod
    def of(cls, names: list[str], deps: list[tuple[str, ...]], indices: list[int]) -> DagJobState:
        spec = JobSpec(tuple(TaskSpec(n, 1, d) for n, d in zip(names, deps, strict=True)),
                       max_in_flight=_NO_LIMIT)
        return cls(spec, dict(zip(names, indices, strict=True)), needed_by={d for ds in deps for d in ds})

    def step(self, now: float) -> tuple[list[int], bool]:
        """Ask the job master what to release now: (workload task indices, job succeeded)."""
        record = {name: _DONE for name in self.done}
        pods = [InstancePod(name, 0, 0, "Running") for name in self.in_flight]
        decision = progress(self.spec, record, pods, now)
        released = []
        for create in decision.create:
            self.in_flight.add(create.task)
            released.append(self.tasks[create.task])
        return released, decision.phase is JobPhase.SUCCEEDED

    def complete(self, name: str) -> bool:
        """Record a task's success; False when asking the job master again cannot change
        anything (no task waits on this one and others are still unfinished): every task
        whose dependencies were done has been released already, at the step that did it."""
        self.in_flight.discard(name)
        self.done.add(name)
        return name in self.needed_by or len(self.done) == len(self.tasks)
