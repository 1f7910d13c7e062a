"""Sigma's own kinds (BatchJob, NodeSLO, NodeMetric, PredictiveScaler) have real schemas:
unknown fields are refused with their path (or dropped with fieldValidation=Ignore/Warn),
integers are bounded, and every field is documented for `kubectl explain`. Against a real
master, with the kubernetes client's CustomObjectsApi and kubectl."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sigma.api import colocation_kinds, predict_kinds
from sigma.api.schema import KIND_SCHEMAS, Schema
from tests.harness import MasterProcess

GROUP, VERSION = "sigma.io", "v1"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

colocation_kinds.install()  # the schemas of BatchJob, NodeSLO, NodeMetric, as the API installs them
predict_kinds.install()  # and PredictiveScaler


def batch_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": name},
        "spec": {"maxInFlight": 10, "tasks": [{
            "name": "map", "instances": 2, "retryLimit": 1,
            "template": {"spec": {"containers": [{
                "name": "main", "command": ["true"], "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}}}]}}}]},
    }


def scaler(name: str) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "metric": {"type": "cpu"}, "targetPerReplica": 500, "maxReplicas": 5}}


@pytest.fixture
def custom(master: MasterProcess) -> Iterator[client.CustomObjectsApi]:
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api:
        yield client.CustomObjectsApi(api)


def _status(err: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.value.body)
    return body


def _fields(status: dict[str, Any]) -> dict[str, str]:
    return {c["field"]: c["reason"] for c in status["details"]["causes"]}


def _absent(custom: client.CustomObjectsApi, ns: str | None, plural: str, name: str) -> bool:
    try:
        if ns is None:
            custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        else:
            custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
    except ApiException as err:
        return err.status == 404
    return False


# -- unknown fields -------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(("where", "path"), [
    (("spec",), "spec.maxInflight"),
    (("spec", "tasks", 0), "spec.tasks[0].retrylimit"),
    (("spec", "tasks", 0, "template", "spec", "containers", 0), "spec.tasks[0].template.spec.containers[0]"
                                                                ".imagePullPolcy"),
    (("spec", "tasks", 0, "template", "spec"), "spec.tasks[0].template.spec.restartPolcy"),
], ids=["job", "task", "container-in-template", "pod-spec-in-template"])
def test_a_batchjob_with_an_unknown_field_is_refused_with_its_path(
        custom: client.CustomObjectsApi, ns: str, where: tuple[Any, ...], path: str) -> None:
    job = batch_job("typo")
    node: Any = job
    for key in where:
        node = node[key]
    node[path.rsplit(".", 1)[1]] = 3
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", job)
    assert err.value.status == 422
    status = _status(err)
    assert status["reason"] == "Invalid"
    assert _fields(status) == {path: "FieldValueInvalid"}
    assert f'unknown field "{path}"' in status["details"]["causes"][0]["message"]
    assert _absent(custom, ns, "batchjobs", "typo")


@pytest.mark.e2e
def test_field_validation_ignore_and_warn_drop_unknown_fields_of_a_batchjob(
        custom: client.CustomObjectsApi, ns: str) -> None:
    for mode in ("Ignore", "Warn"):
        job = batch_job(f"lenient-{mode.lower()}")
        job["spec"]["maxInflight"] = 5
        job["spec"]["tasks"][0]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
        created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", job, field_validation=mode)
        assert "maxInflight" not in created["spec"]
        assert "imagePullPolcy" not in created["spec"]["tasks"][0]["template"]["spec"]["containers"][0]
        assert created["spec"]["maxInFlight"] == 10


@pytest.mark.e2e
def test_replace_and_patch_of_a_batchjob_refuse_unknown_fields(custom: client.CustomObjectsApi, ns: str) -> None:
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", batch_job("edit"))
    replaced = copy.deepcopy(created)
    replaced["spec"]["queueName"] = "fast"
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", "edit", replaced)
    assert err.value.status == 422 and _fields(_status(err)) == {"spec.queueName": "FieldValueInvalid"}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", "edit", {"spec": {"maxInflight": 3}})
    assert err.value.status == 422 and _fields(_status(err)) == {"spec.maxInflight": "FieldValueInvalid"}
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", "edit")
    assert stored["spec"] == created["spec"]


@pytest.mark.e2e
def test_nodeslo_nodemetric_and_predictivescaler_refuse_unknown_fields(
        custom: client.CustomObjectsApi, ns: str) -> None:
    slo = {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": "slo-typo"},
           "spec": {"cpuThreshhold": 0.5}}
    with pytest.raises(ApiException) as err:
        custom.create_cluster_custom_object(GROUP, VERSION, "nodeslos", slo)
    assert err.value.status == 422 and _fields(_status(err)) == {"spec.cpuThreshhold": "FieldValueInvalid"}
    assert _absent(custom, None, "nodeslos", "slo-typo")

    metric = {"apiVersion": "sigma.io/v1", "kind": "NodeMetric", "metadata": {"name": "nm-typo"},
              "status": {"timestamp": 1.0, "prod": {"cpu_millis": 1, "cpu_milis": 2}}}
    with pytest.raises(ApiException) as err:
        custom.create_cluster_custom_object(GROUP, VERSION, "nodemetrics", metric)
    assert err.value.status == 422 and _fields(_status(err)) == {"status.prod.cpu_milis": "FieldValueInvalid"}
    assert _absent(custom, None, "nodemetrics", "nm-typo")

    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "predictivescalers", scaler("ps"))
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, "predictivescalers", "ps",
                                                     {"status": {"desiredReplica": 4}})
    assert err.value.status == 422 and _fields(_status(err)) == {"status.desiredReplica": "FieldValueInvalid"}
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "predictivescalers", "ps")
    assert "desiredReplica" not in (stored.get("status") or {})


@pytest.mark.e2e
def test_what_the_agent_and_the_controllers_write_fits_the_schemas(custom: client.CustomObjectsApi, ns: str) -> None:
    """The shapes the agent (NodeMetric) and the controllers (BatchJob, PredictiveScaler
    status) write are accepted: the schemas describe them whole."""
    from sigma.agent.nodemetric import NodeMetricBuilder
    from sigma.agent.usage_metrics import PodUsage, Usage

    usage = Usage(cpu_cores=0.5, memory_working_set_bytes=1 << 20)
    pods = [PodUsage("default", "web-1", "u1", "LS", usage), PodUsage("default", "job-1", "u2", "BE", usage)]
    metric = NodeMetricBuilder("nm-agent", 4000, 8 << 30).build(1000.0, usage, pods)
    custom.create_cluster_custom_object(GROUP, VERSION, "nodemetrics", metric)

    job = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", batch_job("status"))
    job["status"] = {"phase": "Running", "reason": "Started", "message": "", "observedGeneration": 1,
                     "tasks": {"map": {"instances": 2, "pending": 1, "running": 1, "succeeded": 0, "failed": 1,
                                       "state": "Running"}},
                     "progress": {"map": {"succeeded": "", "failedAttempts": {"0": [0]}}},
                     "startTime": "2026-12-06T00:00:00Z"}
    custom.replace_namespaced_custom_object_status(GROUP, VERSION, ns, "batchjobs", "status", job)

    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "predictivescalers", scaler("ps-status"))
    status = {"desiredReplicas": 3, "currentReplicas": 2, "currentMetric": 812.5, "forecastNow": 790.0,
              "readyReplicas": 2, "reason": "forecast", "source": "forecast", "lastStepTime": 1000.5,
              "stabilization": {"any": ["opaque"]}, "lastScaleTime": "2026-12-06T00:00:00Z",
              "actual": [[1000.0, 812.5]], "forecastError": 0.1, "forecast": [[1060.0, 800.0]],
              "forecastUpper": [[1060.0, 900.0]], "nextPeak": {"time": 1060.0, "value": 900.0},
              "reservation": {"cpuMillis": 500, "memoryBytes": 1024, "peakTime": 1060.0, "reason": "peak",
                              "nodes": [{"node": "n1", "cpuMillis": 500, "memoryBytes": 1024}], "until": 1180.0},
              "history": "opaque"}
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, "predictivescalers", "ps-status",
                                                 {"status": status})
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "predictivescalers", "ps-status")
    assert stored["status"]["reservation"]["nodes"][0]["node"] == "n1"


# -- bounds -----------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(("change", "field", "message"), [
    ({"maxInFlight": 0}, "spec.maxInFlight", "must be between 1 and 100000, inclusive"),
    ({"maxInFlight": 3_000_000_000}, "spec.maxInFlight", "must be between 1 and 100000, inclusive"),
    ({"retryLimit": 11}, "spec.tasks[0].retryLimit", "must be between 0 and 10, inclusive"),
    ({"retryLimit": -1}, "spec.tasks[0].retryLimit", "must be between 0 and 10, inclusive"),
    ({"instances": 3_000_000_000}, "spec.tasks[0].instances", "must be between 1 and 1000000, inclusive"),
    ({"terminationGracePeriodSeconds": -5}, "spec.tasks[0].template.spec.terminationGracePeriodSeconds",
     "must be greater than or equal to 0"),
], ids=["inflight-0", "inflight-huge", "retry-11", "retry-negative", "instances-huge", "template-grace"])
def test_a_batchjob_out_of_bounds_is_refused(custom: client.CustomObjectsApi, ns: str, change: dict[str, Any],
                                             field: str, message: str) -> None:
    job = batch_job("bounds")
    if "maxInFlight" in change:
        job["spec"].update(change)
    elif "terminationGracePeriodSeconds" in change:
        job["spec"]["tasks"][0]["template"]["spec"].update(change)
    else:
        job["spec"]["tasks"][0].update(change)
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "batchjobs", job)
    assert err.value.status == 422
    causes = _status(err)["details"]["causes"]
    assert [c["field"] for c in causes] == [field]
    assert causes[0]["message"].endswith(message) and causes[0]["reason"] == "FieldValueInvalid"
    assert _absent(custom, ns, "batchjobs", "bounds")


@pytest.mark.e2e
def test_nodeslo_and_predictivescaler_bounds(custom: client.CustomObjectsApi, ns: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cpuThreshold": 1.5}, "spec.cpuThreshold"),
        ({"batchMemoryBandwidthPercent": 101}, "spec.batchMemoryBandwidthPercent"),
        ({"batchCpuFloorMillis": -1}, "spec.batchCpuFloorMillis"),
        ({"memoryEvictHigh": 0.5, "memoryEvictLow": 0.8}, "spec.memoryEvictLow"),
    ]
    for spec, field in cases:
        slo = {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": "slo-bounds"}, "spec": spec}
        with pytest.raises(ApiException) as err:
            custom.create_cluster_custom_object(GROUP, VERSION, "nodeslos", slo)
        assert err.value.status == 422 and list(_fields(_status(err))) == [field], spec
    assert _absent(custom, None, "nodeslos", "slo-bounds")

    body = scaler("ps-bounds")
    body["spec"]["maxReplicas"] = 3_000_000_000
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "predictivescalers", body)
    causes = _status(err)["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.maxReplicas"]
    assert causes[0]["message"] == "Invalid value: 3000000000: must be less than or equal to 2147483647"


# -- kubectl ----------------------------------------------------------------------------------


def kubectl(master: MasterProcess, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                          input=input, timeout=60)


@pytest.mark.e2e
@needs_kubectl
def test_kubectl_apply_of_a_batchjob_with_a_typo_names_the_field(master: MasterProcess, ns: str) -> None:
    job = batch_job("applied")
    job["spec"]["tasks"][0]["retrylimit"] = 2
    result = kubectl(master, "apply", "-n", ns, "-f", "-", input=json.dumps(job))
    assert result.returncode != 0
    assert "spec.tasks[0].retrylimit" in result.stderr and "unknown field" in result.stderr
    assert kubectl(master, "get", "batchjob", "applied", "-n", ns).returncode != 0


@pytest.mark.e2e
@needs_kubectl
@pytest.mark.parametrize(("path", "fields"), [
    ("batchjob.spec", ("maxInFlight", "queue", "deadline", "tasks", "priorityClassName")),
    ("batchjob.spec.tasks", ("instances", "retryLimit", "dependencies", "template", "name")),
    ("batchjob.spec.tasks.template.spec.containers", ("imagePullPolicy", "livenessProbe", "resources")),
    ("nodeslo.spec", ("cpuThreshold", "batchMemoryBandwidthPercent", "cpuSuppressPolicy")),
    ("predictivescaler.spec", ("scaleTargetRef", "targetPerReplica", "minReplicas", "quantile", "timeScale")),
    ("nodemetric.status", ("timestamp", "prod", "batch", "pods")),
])
def test_kubectl_explain_documents_sigma_kinds(master: MasterProcess, path: str, fields: tuple[str, ...]) -> None:
    result = kubectl(master, "explain", path)
    assert result.returncode == 0, result.stderr
    assert "<empty>" not in result.stdout.split("FIELDS:")[0]  # the field itself is described
    for name in fields:
        assert f"  {name}\t<" in result.stdout, (name, result.stdout)


# -- the schemas themselves ------------------------------------------------------------------


def _undocumented(schema: Schema, path: str, skip: str) -> list[str]:
    missing = []
    for key, sub in schema.properties.items():
        where = f"{path}.{key}"
        if where == skip:
            continue
        if not sub.description:
            missing.append(where)
        node = sub.items if sub.type == "array" and sub.items is not None else sub
        node = node.values if node.values is not None else node
        missing += _undocumented(node, where, skip)
    return missing


@pytest.mark.parametrize("kind", ["BatchJob", "NodeSLO", "NodeMetric", "PredictiveScaler"])
def test_every_field_of_sigma_kinds_is_described(kind: str) -> None:
    schema = KIND_SCHEMAS[kind]
    assert schema.properties["spec"].type == "object" and schema.properties["status"].type == "object"
    # The pod template is the Pod's own schema, described by Kubernetes' documentation.
    missing = [p for part in ("spec", "status")
               for p in _undocumented(schema.properties[part], part, "spec.tasks.template")]
    assert missing == []


def test_the_batchjob_template_is_the_pod_template_schema() -> None:
    from sigma.api.schema import POD_SPEC

    tasks = KIND_SCHEMAS["BatchJob"].properties["spec"].properties["tasks"]
    assert tasks.items is not None
    assert tasks.items.properties["template"].properties["spec"].properties == POD_SPEC.properties


def test_the_openapi_documents_carry_the_descriptions_and_bounds() -> None:
    from sigma.api.openapi import openapi_v2, openapi_v3_group

    v3 = openapi_v3_group("apis/sigma.io/v1")
    assert v3 is not None
    for defs in (openapi_v2()["definitions"], v3["components"]["schemas"]):
        job = defs["io.sigma.sigma.io.v1.BatchJob"]["properties"]["spec"]
        task = job["properties"]["tasks"]["items"]["properties"]
        assert task["retryLimit"]["minimum"] == 0 and task["retryLimit"]["maximum"] == 10
        assert task["retryLimit"]["format"] == "int32" and task["retryLimit"]["description"]
        containers = task["template"]["properties"]["spec"]["properties"]["containers"]["items"]["properties"]
        assert "imagePullPolicy" in containers
        assert "x-kubernetes-preserve-unknown-fields" not in job
