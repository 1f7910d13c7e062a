"""v2018 batch DAGs: task names as the trace defines them, and checking a job's DAG.

The v2018 doc (trace_2018.md §2.3): a task name is a letter prefix, the task's number, then
`_`-separated numbers of the tasks it depends on. `M1` is task 1 with no dependencies,
`R2_1` is task 2 after task 1, `J3_1_2` task 3 after tasks 1 and 2. Only the numbers matter;
the letters carry no dependency meaning. Tasks named `task_<random>` have no DAG information
and are independent.

Bad input, decided per case:
- parse_task_name: a name that is neither form → TaskName with index None and
  recognised=False (the task still runs, independently); callers count these.
- job_dag / job_dag_from_names: two tasks with one number, a dependency on a task not in the
  job, a task depending on itself, or a cycle → DagError (a TraceError): no order exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sigma.sim.traces.errors import TraceError

_DAG_NAME = re.compile(r"^([A-Za-z]+)(\d+)((?:_\d+)*)$")


class DagError(TraceError):
    """A job's tasks do not form a DAG."""


@dataclass(frozen=True)
class TaskName:
    name: str
    index: int | None  # the task's number in its job; None when the name has no DAG info
    depends_on: tuple[int, ...]
    recognised: bool  # False for a name in neither documented form

    @property
    def in_dag(self) -> bool:
        return self.index is not None


def parse_task_name(name: str) -> TaskName:
    match = _DAG_NAME.match(name)
    if match:
        deps = tuple(int(d) for d in match.group(3).split("_")[1:])
        return TaskName(name, int(match.group(2)), deps, recognised=True)
    return TaskName(name, None, (), recognised=name.startswith("task_"))


def job_dag(path: Path | str, job: str, deps: Mapping[int, Iterable[int]]) -> list[int]:
    """Check one job's dependencies and return its task numbers in a topological order.

    Ties are broken by task number, so the order is deterministic for replay.
    """
    remaining = {task: set(d) for task, d in deps.items()}
    for task, d in remaining.items():
        if task in d:
            raise DagError(path, f"job {job}: task {task} depends on itself")
        missing = d - remaining.keys()
        if missing:
            raise DagError(path, f"job {job}: task {task} depends on tasks {sorted(missing)} "
                           "that are not in the job")
    order: list[int] = []
    ready = sorted(t for t, d in remaining.items() if not d)
    dependents: dict[int, list[int]] = {t: [] for t in remaining}
    for task, d in remaining.items():
        for parent in d:
            dependents[parent].append(task)
    while ready:
        task = ready.pop(0)
        order.append(task)
        for child in dependents[task]:
            remaining[child].discard(task)
            if not remaining[child]:
                ready.append(child)
        ready.sort()
    if len(order) != len(remaining):
        stuck = sorted(set(remaining) - set(order))
        raise DagError(path, f"job {job}: dependency cycle among tasks {stuck}")
    return order


def dag_depth(deps: Mapping[int, Iterable[int]], order: list[int]) -> int:
    """Longest chain of tasks (1 for a job without dependencies)."""
    depth: dict[int, int] = {}
    for task in order:
        depth[task] = 1 + max((depth[p] for p in deps[task]), default=0)
    return max(depth.values(), default=0)


def job_dag_from_names(path: Path | str, job: str, names: Iterable[str]) -> tuple[list[TaskName], list[int]]:
    """Parse one job's task names (as in v2018 batch_task) into its DAG.

    Returns the parsed names (in the given order) and the DAG tasks' numbers in a topological
    order. Tasks without DAG information are independent and not in that order.
    """
    parsed = [parse_task_name(n) for n in names]
    deps: dict[int, tuple[int, ...]] = {}
    for task in parsed:
        if task.index is None:
            continue
        if task.index in deps:
            raise DagError(path, f"job {job}: two tasks are numbered {task.index} ({task.name})")
        deps[task.index] = task.depends_on
    return parsed, job_dag(path, job, deps)
