"""The BatchJob spec: its shape, its validation (with field paths) and its parsing. Pure.

    apiVersion: sigma.io/v1
    kind: BatchJob
    metadata: {name: wordcount, namespace: default}
    spec:
      priorityClassName: sigma-batch   # default sigma-batch (band 5000-5999)
      queue: default                   # fair-share queue of fuxi-scheduler, default "default"
      deadline: "2026-11-11T00:00:00Z" # optional, RFC 3339: the job fails when it passes
      maxInFlight: 100                 # live instance pods at once, default 100
      tasks:
      - name: map                      # RFC 1123 label, unique in the job
        instances: 200                 # >= 1
        retryLimit: 3                  # 0..10, default 3 (failed attempts allowed per instance)
        dependencies: []               # names of tasks that must all succeed first
        template:                      # a pod template: {metadata, spec}
          spec:
            containers:
            - name: main
              command: [python3, -c, "..."]
              resources: {requests: {cpu: 500m, memory: 256Mi}}

Every container of a template must request cpu and memory (or set limits): they become the
instance's sigma.io/batch-cpu and sigma.io/batch-memory requests. restartPolicy must be
Never (the default): the job master retries, not the agent, so failures are counted.

The kind's API schema (sigma.api.colocation_schemas) refuses unknown fields with their
path (the template is a Pod template, checked field for field), keeps integers in their
bounds and publishes every field with its description (`kubectl explain batchjob.spec.tasks`).
This module checks the rest (a DAG, requests, restartPolicy) and reports each problem at
its path, e.g. `spec.tasks[2].dependencies[0]`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.colocation.dag import JobSpec, TaskSpec
from sigma.quantity import QuantityError, parse_quantity

DEFAULT_PRIORITY_CLASS = "sigma-batch"
DEFAULT_QUEUE = "default"
DEFAULT_MAX_IN_FLIGHT = 100
DEFAULT_RETRY_LIMIT = 3
MAX_RETRY_LIMIT = 10
MAX_INSTANCES = 1_000_000
MAX_IN_FLIGHT = 100_000
MAX_TASKS = 500  # keeps the cycle search's recursion well inside Python's limit
MAX_TASK_NAME = 40  # leaves room for "<job>-<task>-<index>-<attempt>" in a 253-char pod name
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUEUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")



@dataclass(frozen=True)
class FieldError:
    path: str
    message: str
    reason: str = "FieldValueInvalid"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_deadline(text: str) -> float:
    """RFC 3339 to seconds since the epoch; a time without an offset is UTC."""
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def validate_job_spec(spec: object) -> list[FieldError]:
    if not isinstance(spec, Mapping):
        return [FieldError("spec", "Required value", "FieldValueRequired")]
    errors = _validate_job_fields(spec)
    tasks = spec.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        return [*errors, FieldError("spec.tasks", "Required value: at least one task", "FieldValueRequired")]
    if len(tasks) > MAX_TASKS:
        return [*errors, FieldError("spec.tasks", f"Too many: {len(tasks)}: must have at most {MAX_TASKS} tasks",
                                    "FieldValueTooMany")]
    names: dict[str, int] = {}
    for i, task in enumerate(tasks):
        path = f"spec.tasks[{i}]"
        if not isinstance(task, Mapping):
            errors.append(FieldError(path, "Invalid value: a task must be an object"))
            continue
        errors += _validate_task(task, path)
        name = task.get("name")
        if isinstance(name, str):
            if name in names:
                errors.append(FieldError(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
            names.setdefault(name, i)
    errors += _validate_dependencies(tasks, names)
    return errors


def _validate_job_fields(spec: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    pcn = spec.get("priorityClassName", DEFAULT_PRIORITY_CLASS)
    if not isinstance(pcn, str) or not pcn:
        errors.append(FieldError("spec.priorityClassName", f"Invalid value: {pcn!r}: must be a non-empty string"))
    queue = spec.get("queue", DEFAULT_QUEUE)
    if not isinstance(queue, str) or len(queue) > 63 or not _QUEUE.match(queue):
        errors.append(FieldError("spec.queue", f"Invalid value: {queue!r}: a queue name must be a valid label "
                                 "value (alphanumerics, '-', '_' or '.', at most 63 characters)"))
    deadline = spec.get("deadline")
    if deadline is not None:
        try:
            if not isinstance(deadline, str):
                raise ValueError
            parse_deadline(deadline)
        except ValueError:
            errors.append(FieldError("spec.deadline", f"Invalid value: {deadline!r}: must be an RFC 3339 time "
                                     'such as "2026-11-11T00:00:00Z"'))
    in_flight = spec.get("maxInFlight", DEFAULT_MAX_IN_FLIGHT)
    if not _is_int(in_flight) or in_flight < 1:
        errors.append(FieldError("spec.maxInFlight", f"Invalid value: {in_flight!r}: must be an integer >= 1"))
    return errors


def _validate_task(task: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = task.get("name")
    if not isinstance(name, str) or not name:
        errors.append(FieldError(f"{path}.name", "Required value", "FieldValueRequired"))
    elif len(name) > MAX_TASK_NAME or not _LABEL.match(name):
        errors.append(FieldError(f"{path}.name", f'Invalid value: "{name}": a task name must be a lowercase '
                                 f"RFC 1123 label of at most {MAX_TASK_NAME} characters"))
    instances = task.get("instances")
    if not isinstance(instances, int) or isinstance(instances, bool) or not 1 <= instances <= MAX_INSTANCES:
        errors.append(FieldError(f"{path}.instances", f"Invalid value: {instances!r}: must be an integer "
                                 f"between 1 and {MAX_INSTANCES}"))
    retry = task.get("retryLimit", DEFAULT_RETRY_LIMIT)
    if not _is_int(retry) or not 0 <= retry <= MAX_RETRY_LIMIT:
        errors.append(FieldError(f"{path}.retryLimit", f"Invalid value: {retry!r}: must be an integer "
                                 f"between 0 and {MAX_RETRY_LIMIT}"))
    deps = task.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        errors.append(FieldError(f"{path}.dependencies", "Invalid value: must be a list of task names"))
    return errors + _validate_template(task.get("template"), f"{path}.template")


def _validate_template(template: object, path: str) -> list[FieldError]:
    if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
        return [FieldError(f"{path}.spec", "Required value: a pod template", "FieldValueRequired")]
    spec = template["spec"]
    errors: list[FieldError] = []
    policy = spec.get("restartPolicy", "Never")
    if policy != "Never":
        errors.append(FieldError(f"{path}.spec.restartPolicy", f'Unsupported value: "{policy}": supported '
                                 'values: "Never" (the job master retries failed instances)',
                                 "FieldValueNotSupported"))
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [*errors, FieldError(f"{path}.spec.containers", "Required value: at least one container",
                                    "FieldValueRequired")]
    for i, container in enumerate(containers):
        cpath = f"{path}.spec.containers[{i}]"
        if not isinstance(container, Mapping):
            errors.append(FieldError(cpath, "Invalid value: a container must be an object"))
            continue
        if not container.get("command") and not container.get("image"):
            errors.append(FieldError(f"{cpath}.command", "Required value: an instance needs a command (or an "
                                     "image)", "FieldValueRequired"))
        errors += _validate_requests(container.get("resources"), f"{cpath}.resources")
    return errors


def _validate_requests(resources: object, path: str) -> list[FieldError]:
    resources = resources if isinstance(resources, Mapping) else {}
    requests = _mapping(resources.get("requests"))
    limits = _mapping(resources.get("limits"))
    errors: list[FieldError] = []
    for name in ("cpu", "memory"):
        where, value = ("requests", requests[name]) if name in requests else ("limits", limits.get(name))
        if value is None:
            errors.append(FieldError(f"{path}.requests[{name}]", f"Required value: a batch instance must request "
                                     f"{name}: it becomes its sigma.io/batch-{name} request", "FieldValueRequired"))
            continue
        try:
            amount = parse_quantity(value)
        except QuantityError as err:
            errors.append(FieldError(f"{path}.{where}[{name}]", f"Invalid value: {value!r}: {err}"))
            continue
        if amount <= 0:
            errors.append(FieldError(f"{path}.{where}[{name}]", f"Invalid value: {value!r}: must be greater than 0"))
    return errors


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _validate_dependencies(tasks: list[Any], names: Mapping[str, int]) -> list[FieldError]:
    errors: list[FieldError] = []
    graph: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping) or not isinstance(task.get("name"), str):
            continue
        deps = task.get("dependencies") or []
        if not isinstance(deps, list):
            continue
        for j, dep in enumerate(deps):
            path = f"spec.tasks[{i}].dependencies[{j}]"
            if not isinstance(dep, str):
                continue
            if dep == task["name"]:
                errors.append(FieldError(path, f'Invalid value: "{dep}": a task cannot depend on itself'))
            elif dep not in names:
                errors.append(FieldError(path, f'Not found: "{dep}": no task of that name in spec.tasks',
                                         "FieldValueNotFound"))
            elif deps.index(dep) != j:
                errors.append(FieldError(path, f'Duplicate value: "{dep}"', "FieldValueDuplicate"))
            else:
                graph.setdefault(task["name"], []).append(dep)
    cycle = _find_cycle(graph)
    if cycle:
        start, dep = cycle[0], cycle[1]
        i = names[start]
        j = tasks[i]["dependencies"].index(dep)
        errors.append(FieldError(f"spec.tasks[{i}].dependencies[{j}]", f'Invalid value: "{dep}": dependency '
                                 f"cycle {' -> '.join(cycle)}: the tasks of a job must form a DAG"))
    return errors


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """One cycle as [a, b, ..., a] (a depends on b ...), or [] when the graph is a DAG."""
    color: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str]:
        color[node] = 1
        path.append(node)
        for dep in graph.get(node, []):
            if color.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in color:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        color[node] = 2
        return []

    for node in graph:
        if node not in color:
            found = visit(node)
            if found:
                return found
    return []


def parse_job_spec(spec: Mapping[str, Any]) -> JobSpec:
    """A validated spec with its defaults filled in (see the module docstring)."""
    tasks = tuple(
        TaskSpec(t["name"], int(t["instances"]), tuple(t.get("dependencies") or ()),
                 int(t.get("retryLimit", DEFAULT_RETRY_LIMIT)))
        for t in spec["tasks"]
    )
    deadline = spec.get("deadline")
    return JobSpec(tasks, int(spec.get("maxInFlight", DEFAULT_MAX_IN_FLIGHT)),
                   parse_deadline(deadline) if isinstance(deadline, str) else None)
