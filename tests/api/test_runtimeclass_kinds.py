"""RuntimeClass in the registry (in process): the built-in classes, 422s naming the field,
pod admission (403 for an unknown class or the sandbox policy, overhead and node selector set)
and the overhead charged by ResourceQuota."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api import admission, runtimeclass_kinds
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.client.local import LocalClient
from sigma.store.sqlite import SqliteStore


@pytest.fixture
def client() -> Iterator[LocalClient]:
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    runtimeclass_kinds.bootstrap(registry)
    yield LocalClient(registry)
    store.close()


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1", "resources": {"requests": {"cpu": "100m"},
                                                                                     "limits": {"cpu": "100m"}}}],
                     **spec}}


def test_builtin_classes_select_nodes_by_handler_label(client: LocalClient) -> None:
    classes = {rc["metadata"]["name"]: rc for rc in client.list("runtimeclasses")["items"]}
    assert {"runc", "crun", "runsc", "lxc", "process"} <= set(classes)
    assert classes["runsc"]["handler"] == "runsc"
    assert classes["runsc"]["scheduling"]["nodeSelector"] == {"sigma.io/runtime-handler.runsc": "true"}


def test_invalid_class_is_422_naming_the_field(client: LocalClient) -> None:
    with pytest.raises(ApiError) as refused:
        client.create("runtimeclasses", {"metadata": {"name": "bad"}, "handler": "Not_A_Label"})
    assert refused.value.code == 422
    assert [c.field for c in refused.value.causes] == ["handler"]
    client.create("runtimeclasses", {"metadata": {"name": "ok"}, "handler": "runsc"})
    stored = client.get("runtimeclasses", "ok")
    with pytest.raises(ApiError) as immutable:
        client.update("runtimeclasses", {**stored, "handler": "runc"})
    assert immutable.value.code == 422 and "field is immutable" in str(immutable.value)


def test_pod_of_unknown_class_is_forbidden(client: LocalClient) -> None:
    with pytest.raises(ApiError) as refused:
        client.create("pods", pod(runtimeClassName="nope"), "default")
    assert refused.value.code == 403
    assert str(refused.value.message) == 'pods "p" is forbidden: pod rejected: RuntimeClass "nope" not found'


def test_class_sets_overhead_and_selector_and_quota_charges_overhead(client: LocalClient) -> None:
    client.create("runtimeclasses", {"metadata": {"name": "gvisor"}, "handler": "runsc",
                                     "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
                                     "scheduling": {"nodeSelector": {"sigma.io/runtime-handler.runsc": "true"}}})
    client.create("resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "1",
                                                                                   "limits.cpu": "1"}}}, "default")
    created = client.create("pods", pod("a", runtimeClassName="gvisor"), "default")
    assert created["spec"]["overhead"] == {"cpu": "250m", "memory": "64Mi"}
    assert created["spec"]["nodeSelector"] == {"sigma.io/runtime-handler.runsc": "true"}
    used = client.get("resourcequotas", "q", "default")["status"]["used"]
    assert used["requests.cpu"] == "350m" and used["limits.cpu"] == "350m"  # 100m + 250m overhead
    client.create("pods", pod("b", runtimeClassName="gvisor"), "default")  # 700m
    with pytest.raises(ApiError) as over:
        client.create("pods", pod("c", runtimeClassName="gvisor"), "default")  # 1050m > 1
    assert over.value.code == 403 and "requested: limits.cpu=350m,requests.cpu=350m" in over.value.message


def test_sandbox_policy_of_the_namespace(client: LocalClient) -> None:
    client.create("namespaces", {"metadata": {"name": "tenant", "labels": {
        "sigma.io/require-sandbox": "true", "sigma.io/runtime-class-default": "runsc"}}})
    with pytest.raises(ApiError) as refused:
        client.create("pods", pod(runtimeClassName="runc"), "tenant")
    assert refused.value.code == 403 and "sigma.io/require-sandbox=true" in refused.value.message
    admitted = client.create("pods", pod("d"), "tenant")
    assert admitted["spec"]["runtimeClassName"] == "runsc"


def test_dry_run_admission_decides_the_same(client: LocalClient) -> None:
    with pytest.raises(ApiError) as refused:
        client.registry.create(resource("pods"), "default", pod(runtimeClassName="nope"), dry_run=True)
    assert refused.value.code == 403
