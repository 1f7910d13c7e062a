"""The pivot DAG-job files (v2018/derived/pivot_dag_jobs/jobs-*.yaml): 5,000 real jobs each.

The files are a YAML list written in one fixed block layout (checked over all 1.25 M lines
of the shared copies):

    - finish_time: 164419
      id: j_21868
      submit_time: 100401
      tasks:
      - cpus: 0.5
        dependencies: []        (or `dependencies:` followed by `    - 1` lines)
        id: 1
        ...

We read that layout line by line instead of with a YAML library: PyYAML, even with libyaml,
spends ~4 s per file building generic nodes, this reader ~0.3 s, and it knows the line of
every value, so an error can name it. A file in another YAML layout is refused with the line
it could not follow (load it with yaml.safe_load and convert it if that ever matters).
Units: cpus in cores (plan_cpu / 100), mem normalised [0, 100], runtime seconds (one observed
instance of the task, not a mean).

Bad input, decided per case (all TraceError naming file, line and field; nothing skipped):
a line outside the layout, a missing or unknown field, an unparsable number, a negative time
or resource, finish before submit, and a job whose tasks are not a DAG (DagError).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigma.sim.traces.dag import DagError, dag_depth, job_dag
from sigma.sim.traces.errors import TraceError, check_file

_JOB_KEYS = ("finish_time", "id", "submit_time", "tasks")
_TASK_KEYS = ("cpus", "dependencies", "id", "mem", "n_instances", "runtime")


@dataclass(frozen=True)
class DagTask:
    index: int
    cpus: float  # cores per instance
    mem: float  # per instance, normalised [0, 100]
    instances: int
    runtime: float  # seconds, one observed instance of this task
    depends_on: tuple[int, ...]


@dataclass(frozen=True)
class DagJob:
    name: str
    submit_time: int
    finish_time: int
    tasks: tuple[DagTask, ...]  # in a topological order (ties by task number)
    depth: int  # longest chain of tasks


# A field as read: its text and the line it came from.
_Fields = dict[str, tuple[str, int]]


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: list[DagJob] = []
        self.job: _Fields | None = None
        self.tasks: list[tuple[_Fields, list[tuple[str, int]]]] = []
        self.last_key = ""  # `    - N` lines belong to a `dependencies:` just above them

    def feed(self, line: int, text: str) -> None:
        if text.startswith("- "):
            self.finish_job()
            self.job = {}
            self._put(self.job, _JOB_KEYS, text[2:], line)
        elif text.startswith("  - ") and self.job is not None and "tasks" in self.job:
            self.tasks.append(({}, []))
            self._put(self.tasks[-1][0], _TASK_KEYS, text[4:], line)
        elif text.startswith("    - ") and self.tasks and self._open_dependencies():
            self.tasks[-1][1].append((text[6:], line))
        elif text.startswith("    ") and self.tasks:
            self._put(self.tasks[-1][0], _TASK_KEYS, text[4:], line)
        elif text.startswith("  ") and self.job is not None and not self.tasks:
            self._put(self.job, _JOB_KEYS, text[2:], line)
        else:
            raise TraceError(self.path, f"line does not fit the DAG-job layout: {text[:60]!r}", line=line)

    def _open_dependencies(self) -> bool:
        return self.last_key == "dependencies" and self.tasks[-1][0]["dependencies"][0] == ""

    def _put(self, fields: _Fields, keys: tuple[str, ...], text: str, line: int) -> None:
        key, sep, value = text.partition(":")
        if not sep or key not in keys:
            raise TraceError(self.path, f"unexpected field {key!r}", line=line, column=key)
        if key in fields:
            raise TraceError(self.path, f"field {key!r} given twice", line=line, column=key)
        fields[key] = (value.strip(), line)
        self.last_key = key

    def finish_job(self) -> None:
        if self.job is None:
            return
        name = self._need(self.job, "id")[0]
        submit, finish = self._int(self.job, "submit_time"), self._int(self.job, "finish_time")
        if finish < submit:
            raise TraceError(self.path, f"job {name}: finish_time before submit_time",
                             line=self.job["finish_time"][1], column="finish_time")
        tasks = [self._task(fields, deps) for fields, deps in self.tasks]
        by_index = {t.index: t for t in tasks}
        if len(by_index) != len(tasks):
            raise DagError(self.path, f"job {name}: two tasks share an id", line=self.job["id"][1])
        graph = {t.index: t.depends_on for t in tasks}
        order = job_dag(self.path, name, graph)
        self.jobs.append(DagJob(name, submit, finish, tuple(by_index[i] for i in order),
                                dag_depth(graph, order)))
        self.job, self.tasks = None, []

    def _task(self, fields: _Fields, deps: list[tuple[str, int]]) -> DagTask:
        inline = self._need(fields, "dependencies")[0]
        if inline not in ("", "[]") and not (inline.startswith("[") and inline.endswith("]")):
            raise TraceError(self.path, f"dependencies must be a list, got {inline!r}",
                             line=fields["dependencies"][1], column="dependencies")
        if inline.startswith("[") and inline != "[]":
            deps = [(d.strip(), fields["dependencies"][1]) for d in inline[1:-1].split(",")]
        return DagTask(self._int(fields, "id"), self._float(fields, "cpus"), self._float(fields, "mem"),
                       self._int(fields, "n_instances"), self._float(fields, "runtime"),
                       tuple(int(self._number(text, line, "dependencies", int)) for text, line in deps))

    def _need(self, fields: _Fields, key: str) -> tuple[str, int]:
        if key not in fields:
            first = min((line for _, line in fields.values()), default=None)
            raise TraceError(self.path, f"missing field {key!r}", line=first, column=key)
        return fields[key]

    def _int(self, fields: _Fields, key: str) -> int:
        text, line = self._need(fields, key)
        return int(self._number(text, line, key, int))

    def _float(self, fields: _Fields, key: str) -> float:
        text, line = self._need(fields, key)
        return float(self._number(text, line, key, float))

    def _number(self, text: str, line: int, key: str, kind: type[int] | type[float]) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise TraceError(self.path, f"expected {kind.__name__}, got {text!r}", line=line,
                             column=key) from None
        if not 0 <= value < float("inf"):
            raise TraceError(self.path, f"{key} must be a finite number >= 0, got {text}", line=line,
                             column=key)
        return value


def load_v2018_dag_jobs(path: Path) -> list[DagJob]:
    """All jobs of one pivot jobs-*.yaml file, in file order."""
    check_file(path)
    reader = _Reader(path)
    with path.open() as f:
        for line, text in enumerate(f, start=1):
            reader.feed(line, text.rstrip("\n"))
    reader.finish_job()
    if not reader.jobs:
        raise TraceError(path, "no jobs in file")
    return reader.jobs
