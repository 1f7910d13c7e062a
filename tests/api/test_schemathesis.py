"""Schemathesis against a real master: every operation of the /openapi/v3 documents, with
generated requests, must answer without a 5xx, with a status code the document declares, and
with a body that matches the document's schema (the kind, its List, Scale or a metav1.Status).

The requests go to a namespace made for the test; list requests never watch (a watch is a
stream, not a response to validate). Examples are derandomised, so a run is reproducible.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.harness import MasterProcess

EXAMPLES_PER_OPERATION = 6
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@schemathesis.serializer("application/apply-patch+yaml")
def _apply_yaml(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    return yaml.safe_dump(value).encode()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    proc = MasterProcess(Path(tmp_path_factory.mktemp("master")), extra_args=("--no-controllers",)).start()
    try:
        yield proc
    finally:
        proc.stop()


def _run_operation(operation: Any, base_url: str, namespace: str, failures: list[str]) -> int:
    path_params = {"namespace": namespace} if "{namespace}" in operation.path else None
    names = {p.name for p in operation.query}
    query = {"watch": "false"} if "watch" in names else None
    calls = [0]

    @given(case=operation.as_strategy(path_parameters=path_params, query=query))
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        calls[0] += 1
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)
        except FailureGroup as err:
            failures.append(f"{operation.method.upper()} {operation.path}:\n{err}")

    run()
    return calls[0]


def test_schemathesis_finds_no_server_errors_and_no_schema_violations(master: MasterProcess) -> None:
    namespace = f"st-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=master.url, timeout=10) as http:
        r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": namespace}})
        assert r.status_code == 201, r.text
        index = http.get("/openapi/v3").json()["paths"]
    failures: list[str] = []
    operations = calls = 0
    for entry in index.values():
        schema = schemathesis.openapi.from_url(f"{master.url}{entry['serverRelativeURL']}")
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            calls += _run_operation(operation, master.url, namespace, failures)
    print(f"{operations} operations, {calls} requests")
    assert operations >= 100, operations
    assert not failures, f"{len(failures)} failing requests out of {calls}:\n\n" + "\n\n".join(failures[:20])
