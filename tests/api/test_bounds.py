"""Kubernetes' bounds on integers, names, labels, annotations and finalizers: table-driven
tests of the validation functions, then the same rules through a real master with the
kubernetes client (422 Invalid with the field path, nothing stored, no pod created)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sigma.api.schema import INT32_MAX, INT64_MAX, KIND_SCHEMAS, Schema, bound_errors, int32, int64, range_error
from sigma.api.validation import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    validate,
    validate_annotations,
    validate_metadata,
)
from tests.harness import MasterProcess

# -- the validation functions ------------------------------------------------------------------


@pytest.mark.parametrize(("key", "ok"), [
    ("app", True),
    ("app.kubernetes.io/name", True),
    ("A_b.c-9", True),
    ("x" * 63, True),
    ("x" * 64, False),  # the name part is at most 63
    ("example.com/" + "x" * 63, True),
    (("a" * 63 + ".") * 3 + "a" * 61 + "/name", True),  # a 253-character prefix
    (("a" * 63 + ".") * 3 + "a" * 62 + "/name", False),  # 254
    ("Example.com/name", False),  # the prefix is a lowercase DNS subdomain
    ("/name", False),
    ("example.com/", False),
    ("a/b/c", False),
    ("-app", False),
    ("app-", False),
    ("", False),
    ("with space", False),
])
def test_qualified_names(key: str, ok: bool) -> None:
    assert (is_qualified_name(key) == []) is ok


def test_qualified_name_messages_are_apimachinerys() -> None:
    assert is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]
    assert is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert is_qualified_name("-x")[0].startswith(
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is")


@pytest.mark.parametrize(("value", "ok"), [
    ("", True), ("v1", True), ("My_value.2", True), ("x" * 63, True),
    ("x" * 64, False), ("-v", False), ("v-", False), ("a/b", False), ("é", False),
])
def test_label_values(value: str, ok: bool) -> None:
    assert (is_valid_label_value(value) == []) is ok


@pytest.mark.parametrize(("name", "label", "subdomain"), [
    ("web", True, True),
    ("web.example", False, True),
    ("x" * 63, True, True),
    ("x" * 64, False, True),
    ("x" * 253, False, True),
    ("x" * 254, False, False),
    ("Web", False, False),
    ("web_1", False, False),
    ("-web", False, False),
])
def test_dns1123_names(name: str, label: bool, subdomain: bool) -> None:
    assert (is_dns1123_label(name) == []) is label
    assert (is_dns1123_subdomain(name) == []) is subdomain


@pytest.mark.parametrize(("kind", "name", "ok"), [
    ("Namespace", "team-a", True),
    ("Namespace", "team.a", False),  # a namespace is a DNS label
    ("Namespace", "x" * 64, False),
    ("Pod", "web.1", True),  # a pod a DNS subdomain
    ("Pod", "x" * 253, True),
    ("Pod", "x" * 254, False),
    ("Deployment", "x" * 254, False),
    ("PriorityClass", "Prod", False),
])
def test_object_names_per_kind(kind: str, name: str, ok: bool) -> None:
    causes = [c for c in validate(kind, {"metadata": {"name": name}}) if c.field == "metadata.name"]
    assert (causes == []) is ok


def test_generate_name_may_end_in_a_dash_but_must_otherwise_be_a_valid_prefix() -> None:
    assert validate_metadata({"metadata": {"name": "web-abcde", "generateName": "web-"}}) == []
    causes = validate_metadata({"metadata": {"name": "web-abcde", "generateName": "Web_"}})
    assert [c.field for c in causes] == ["metadata.generateName"]


def test_annotations_are_limited_to_256_kib_of_utf8_keys_and_values() -> None:
    limit = 262144
    assert validate_annotations({"k": "v" * (limit - 1)}, "metadata.annotations") == []
    over = validate_annotations({"k": "v" * limit}, "metadata.annotations")
    assert [(c.field, c.reason, c.message) for c in over] == [
        ("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes")]
    # Bytes, not characters: 131072 two-byte characters are 262144 bytes, plus the key.
    assert validate_annotations({"k": "é" * (limit // 2)}, "metadata.annotations") != []
    bad_key = validate_annotations({"a/b/c": ""}, "metadata.annotations")
    assert [c.field for c in bad_key] == ["metadata.annotations"]


@pytest.mark.parametrize(("finalizers", "ok"), [
    (["example.com/cleanup"], True),
    (["kubernetes"], True),
    (["a/b/c"], False),
    (["example.com/" + "x" * 64], False),
    (["orphan", "foregroundDeletion"], False),
])
def test_finalizers(finalizers: list[str], ok: bool) -> None:
    causes = validate_metadata({"metadata": {"name": "x", "finalizers": finalizers}})
    assert (causes == []) is ok
    assert all(c.field == "metadata.finalizers" for c in causes)


@pytest.mark.parametrize(("schema", "value", "message"), [
    (int32(), INT32_MAX, ""),
    (int32(), INT32_MAX + 1, "must be less than or equal to 2147483647"),
    (int32(), -(2**31) - 1, "must be greater than or equal to -2147483648"),
    (int32(minimum=0), -1, "must be greater than or equal to 0"),
    (int32(minimum=1, maximum=65535), 0, "must be between 1 and 65535, inclusive"),
    (int32(minimum=1, maximum=65535), 65536, "must be between 1 and 65535, inclusive"),
    (int64(), INT64_MAX, ""),
    (int64(), INT64_MAX + 1, "must be less than or equal to 9223372036854775807"),
    (int64(minimum=0), 3_000_000_000, ""),
    (Schema("number", minimum=0, maximum=1), 1.5, "must be between 0 and 1, inclusive"),
])
def test_integer_and_number_ranges(schema: Schema, value: int, message: str) -> None:
    assert range_error(value, schema) == message


def _pod(**spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox"}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container], **spec}}


@pytest.mark.parametrize(("change", "field"), [
    ({"terminationGracePeriodSeconds": -1}, "spec.terminationGracePeriodSeconds"),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
    ({"activeDeadlineSeconds": INT32_MAX + 1}, "spec.activeDeadlineSeconds"),
    ({"priority": INT32_MAX + 1}, "spec.priority"),
    ({"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]}, "spec.containers[0].ports[0].containerPort"),
    ({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 65536}]}]},
     "spec.containers[0].ports[0].hostPort"),
    ({"containers": [{"name": "c", "livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": -1}}]},
     "spec.containers[0].livenessProbe.periodSeconds"),
    ({"containers": [{"name": "c", "readinessProbe": {"httpGet": {"port": 70000}}}]},
     "spec.containers[0].readinessProbe.httpGet.port"),
    ({"containers": [{"name": "c", "startupProbe": {"tcpSocket": {"port": 80},
                                                     "terminationGracePeriodSeconds": 0}}]},
     "spec.containers[0].startupProbe.terminationGracePeriodSeconds"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": INT64_MAX + 1}]},
     "spec.tolerations[0].tolerationSeconds"),
    ({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew"),
    ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 101, "preference": {}}]}}},
     "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"),
])
def test_pod_integer_bounds(change: dict[str, Any], field: str) -> None:
    pod = _pod(**change)
    for c in pod["spec"]["containers"]:
        c.setdefault("image", "busybox")
    assert [c.field for c in validate("Pod", pod)] == [field]


def _deployment(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "d"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        **spec}}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"replicas": 3_000_000_000}, "spec.replicas",
     "Invalid value: 3000000000: must be less than or equal to 2147483647"),
    ({"replicas": -1}, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
    ({"minReadySeconds": -1}, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
    ({"revisionHistoryLimit": INT32_MAX + 1}, "spec.revisionHistoryLimit",
     "Invalid value: 2147483648: must be less than or equal to 2147483647"),
    ({"progressDeadlineSeconds": 10, "minReadySeconds": 10}, "spec.progressDeadlineSeconds",
     "Invalid value: 10: must be greater than minReadySeconds"),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1}}},
     "spec.strategy.rollingUpdate.maxSurge", "Invalid value: -1: must be greater than or equal to 0"),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "ten"}}},
     "spec.strategy.rollingUpdate.maxSurge", 'Invalid value: "ten": a valid percent string must be a numeric '
     "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}},
     "spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "150%": must not be greater than 100%'),
    ({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
     "spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "0%": may not be 0 when `maxSurge` is 0'),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}, "spec.strategy.rollingUpdate",
     "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
])
def test_deployment_bounds(change: dict[str, Any], field: str, message: str) -> None:
    causes = validate("Deployment", _deployment(**change))
    assert [(c.field, c.message) for c in causes] == [(field, message)]


def test_the_largest_valid_values_pass() -> None:
    assert validate("Deployment", _deployment(replicas=INT32_MAX, revisionHistoryLimit=0,
                                              strategy={"rollingUpdate": {"maxSurge": "25%",
                                                                          "maxUnavailable": 0}})) == []
    pod = _pod(terminationGracePeriodSeconds=INT64_MAX, activeDeadlineSeconds=INT32_MAX, priority=-(2**31))
    assert validate("Pod", pod) == []


def test_every_integer_of_the_built_in_kinds_is_bounded() -> None:
    """No integer field is left without an int32/int64 format: each has a range."""
    def walk(schema: Schema, path: str) -> list[str]:
        if schema.type == "integer":
            return [] if schema.format in ("int32", "int64") else [path]
        out = []
        for key, sub in schema.properties.items():
            out += walk(sub, f"{path}.{key}")
        for sub in (schema.items, schema.values):
            if sub is not None:
                out += walk(sub, path + "[]")
        return out

    assert [p for kind, s in KIND_SCHEMAS.items() for p in walk(s, kind)] == []
    assert bound_errors({"spec": {"replicas": 2**40}}, KIND_SCHEMAS["Scale"], "") != []


# -- through a real master ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_master(controlled_master: MasterProcess) -> MasterProcess:
    # With the controllers: a Deployment that got through would get its pods.
    return controlled_master


@pytest.fixture
def api(live_master: MasterProcess) -> Iterator[client.ApiClient]:
    config = client.Configuration()
    config.host = live_master.url
    with client.ApiClient(config) as c:
        yield c


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _causes(err: pytest.ExceptionInfo[ApiException]) -> list[tuple[str, str]]:
    assert err.value.status == 422, err.value.body
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    return [(c["field"], c["reason"]) for c in body["details"]["causes"]]


def _deployment_body(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


@pytest.mark.e2e
def test_a_deployment_of_3000000000_replicas_is_refused_and_creates_no_pod(api: client.ApiClient,
                                                                           namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment(namespace, _deployment_body("huge", 3_000_000_000))
    assert _causes(err) == [("spec.replicas", "FieldValueInvalid")]
    assert "must be less than or equal to 2147483647" in err.value.body
    # A valid Deployment next to it gets its pods: the controller is running, and the
    # refused one has none.
    apps.create_namespaced_deployment(namespace, _deployment_body("small", 2))
    deadline = time.monotonic() + 60
    while len(core.list_namespaced_pod(namespace, label_selector="app=small").items) < 2:
        assert time.monotonic() < deadline, "the deployment controller created no pod"
        time.sleep(0.2)
    assert core.list_namespaced_pod(namespace, label_selector="app=huge").items == []
    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == ["small"]


@pytest.mark.e2e
def test_scaling_or_patching_a_deployment_past_int32_is_refused(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment_body("grow", 0))
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("grow", namespace, {"spec": {"replicas": 3_000_000_000}})
    assert _causes(err) == [("spec.replicas", "FieldValueInvalid")]
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment_scale("grow", namespace, {"spec": {"replicas": 3_000_000_000}})
    assert err.value.status == 422
    assert apps.read_namespaced_deployment("grow", namespace).spec.replicas == 0


def _pod_body(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.mark.e2e
@pytest.mark.parametrize(("meta", "field", "reason"), [
    ({"annotations": {"big": "x" * (300 * 1024)}}, "metadata.annotations", "FieldValueTooLong"),
    ({"labels": {"app": "v" * 64}}, "metadata.labels", "FieldValueInvalid"),
    ({"labels": {"x" * 64: "v"}}, "metadata.labels", "FieldValueInvalid"),
    ({"labels": {"a" * 254 + "/name": "v"}}, "metadata.labels", "FieldValueInvalid"),
    ({"annotations": {"a/b/c": "v"}}, "metadata.annotations", "FieldValueInvalid"),
    ({"finalizers": ["a/b/c"]}, "metadata.finalizers", "FieldValueInvalid"),
], ids=["annotations-300KiB", "label-value-64", "label-name-64", "label-prefix-254", "annotation-key",
        "finalizer"])
def test_metadata_limits_through_the_api(api: client.ApiClient, namespace: str, meta: dict[str, Any], field: str,
                                         reason: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, _pod_body("meta", **meta))
    assert _causes(err) == [(field, reason)]
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("meta", namespace)
    assert missing.value.status == 404


@pytest.mark.e2e
def test_names_through_the_api(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": "team.a"}})  # a namespace is a DNS label
    assert _causes(err) == [("metadata.name", "FieldValueInvalid")]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, _pod_body("x" * 254))
    assert _causes(err) == [("metadata.name", "FieldValueInvalid")]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, {**_pod_body(""), "metadata": {"generateName": "Bad_"}})
    assert ("metadata.generateName", "FieldValueInvalid") in _causes(err)
    assert core.list_namespaced_pod(namespace).items == []
    created = core.create_namespaced_pod(namespace, _pod_body("web.1", labels={"a" * 63: "v" * 63}))
    assert created.metadata.name == "web.1"


@pytest.mark.e2e
@pytest.mark.parametrize(("spec", "field"), [
    ({"terminationGracePeriodSeconds": -1}, "spec.terminationGracePeriodSeconds"),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
    ({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 70000}]}]},
     "spec.containers[0].ports[0].containerPort"),
    ({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": -1}]}]},
     "spec.containers[0].ports[0].hostPort"),
    ({"containers": [{"name": "c", "image": "busybox", "livenessProbe": {
        "tcpSocket": {"port": 8080}, "failureThreshold": -3}}]}, "spec.containers[0].livenessProbe.failureThreshold"),
], ids=["grace", "deadline", "container-port", "host-port", "probe"])
def test_pod_integer_bounds_through_the_api(api: client.ApiClient, namespace: str, spec: dict[str, Any],
                                            field: str) -> None:
    body = _pod_body("ints")
    body["spec"].update(spec)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).create_namespaced_pod(namespace, body)
    assert _causes(err) == [(field, "FieldValueInvalid")]
