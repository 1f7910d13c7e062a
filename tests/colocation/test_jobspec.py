from __future__ import annotations

from typing import Any

import pytest

from sigma.colocation.jobspec import parse_job_spec, validate_job_spec


def task(name: str, deps: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name, "instances": 2, "dependencies": deps or [],
        "template": {"spec": {"containers": [{"name": "main", "command": ["true"],
                                              "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}]}},
    }
    out.update(fields)
    return out


def paths(spec: dict[str, Any]) -> list[str]:
    return [e.path for e in validate_job_spec(spec)]


def test_a_valid_dag_has_no_errors_and_parses_with_defaults() -> None:
    spec = {"tasks": [task("map"), task("reduce", ["map"])]}
    assert validate_job_spec(spec) == []
    job = parse_job_spec(spec)
    assert [t.name for t in job.tasks] == ["map", "reduce"]
    assert job.max_in_flight == 100 and job.tasks[1].retry_limit == 3 and job.deadline is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({"tasks": [task("a", ["b"]), task("b", ["c"]), task("c", ["a"])]},
                     ["spec.tasks[0].dependencies[0]"], id="a cycle is reported at the edge that closes it"),
        pytest.param({"tasks": [task("a"), task("b"), task("c", ["a", "nope"])]},
                     ["spec.tasks[2].dependencies[1]"], id="a dependency on a missing task"),
        pytest.param({"tasks": [task("a", ["a"])]}, ["spec.tasks[0].dependencies[0]"],
                     id="a task depending on itself"),
        pytest.param({"tasks": [task("a", instances=0)]}, ["spec.tasks[0].instances"], id="zero instances"),
        pytest.param({"tasks": [task("a", instances=-3)]}, ["spec.tasks[0].instances"], id="negative instances"),
        pytest.param({"tasks": [task("a", retryLimit=11)]}, ["spec.tasks[0].retryLimit"],
                     id="a retry limit above 10"),
        pytest.param({"tasks": [task("a", retryLimit=-1)]}, ["spec.tasks[0].retryLimit"],
                     id="a negative retry limit"),
        pytest.param({"tasks": [task("a", template=None)]}, ["spec.tasks[0].template.spec"],
                     id="a missing template"),
        pytest.param({"tasks": [task("a", template={"spec": {"containers": [
            {"name": "m", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})]},
            ["spec.tasks[0].template.spec.containers[0].command"], id="a container without a command"),
        pytest.param({"tasks": [task("a", template={"spec": {"containers": [
            {"name": "m", "command": ["x"], "resources": {"requests": {"cpu": "lots", "memory": "0"}}}]}})]},
            ["spec.tasks[0].template.spec.containers[0].resources.requests[cpu]",
             "spec.tasks[0].template.spec.containers[0].resources.requests[memory]"],
            id="an unparsable cpu and a zero memory request"),
        pytest.param({"tasks": [task("a", template={"spec": {"containers": [{"name": "m", "command": ["x"]}]}})]},
                     ["spec.tasks[0].template.spec.containers[0].resources.requests[cpu]",
                      "spec.tasks[0].template.spec.containers[0].resources.requests[memory]"],
                     id="no requests at all"),
        pytest.param({"tasks": [task("a"), task("a")]}, ["spec.tasks[1].name"], id="a duplicate task name"),
        pytest.param({"tasks": []}, ["spec.tasks"], id="no tasks"),
        pytest.param({"tasks": [task("a")], "deadline": "tomorrow"}, ["spec.deadline"], id="a bad deadline"),
        pytest.param({"tasks": [task("a")], "maxInFlight": 0}, ["spec.maxInFlight"], id="zero in flight"),
        pytest.param({"tasks": [task("A_b")]}, ["spec.tasks[0].name"], id="a task name that is not a label"),
    ],
)
def test_invalid_specs_are_reported_at_their_field_path(spec: dict[str, Any], expected: list[str]) -> None:
    assert paths(spec) == expected


def test_the_cycle_message_names_the_whole_cycle() -> None:
    errors = validate_job_spec({"tasks": [task("a", ["b"]), task("b", ["a"])]})
    assert "a -> b -> a" in errors[0].message


def test_a_deadline_parses_as_utc() -> None:
    spec = {"tasks": [task("a")], "deadline": "1970-01-01T00:01:40Z"}
    assert parse_job_spec(spec).deadline == 100.0
