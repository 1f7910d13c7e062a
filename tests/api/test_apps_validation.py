"""ReplicaSet and DaemonSet defaults and validation, with Kubernetes' field paths and messages,
through the registry (422 Invalid with causes) as a client sees them."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api import admission
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.store.sqlite import SqliteStore


@pytest.fixture
def client() -> Any:
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    yield LocalClient(registry)
    store.close()


def workload(kind: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "m", "image": "x:1"}]}}, **spec}}


def causes(client: LocalClient, resource: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ApiError) as err:
        client.create(resource, obj, "default")
    assert err.value.code == 422
    return [(c.field, c.message) for c in err.value.causes]


def test_defaults(client: LocalClient) -> None:
    rs = client.create("replicasets", workload("ReplicaSet"), "default")
    assert rs["spec"]["replicas"] == 1 and rs["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    ds = client.create("daemonsets", workload("DaemonSet"), "default")
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10


def test_replica_set_rules(client: LocalClient) -> None:
    assert ("spec.replicas", "Invalid value: -1: must be greater than or equal to 0") in causes(
        client, "replicasets", workload("ReplicaSet", replicas=-1))
    bad = workload("ReplicaSet")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "y"}
    assert [f for f, _ in causes(client, "replicasets", bad)] == ["spec.template.metadata.labels"]
    client.create("replicasets", workload("ReplicaSet"), "default")
    with pytest.raises(ApiError) as err:
        client.patch("replicasets", "x", {"spec": {"selector": {"matchLabels": {"app": "x", "v": "2"}},
                                                   "template": {"metadata": {"labels": {"v": "2"}}}}}, "default")
    assert err.value.code == 422 and "immutable" in str(err.value)


def test_daemon_set_rules(client: LocalClient) -> None:
    assert causes(client, "daemonsets", workload("DaemonSet", updateStrategy={"type": "Sometimes"})) == [
        ("spec.updateStrategy.type", 'Unsupported value: "Sometimes": supported values: "OnDelete", "RollingUpdate"')]
    assert causes(client, "daemonsets", workload("DaemonSet", updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})) == [
        ("spec.updateStrategy.rollingUpdate.maxUnavailable", "Invalid value: 0: cannot be 0 when maxSurge is 0")]
    assert causes(client, "daemonsets", workload("DaemonSet", updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}}))[0][1].endswith(
        "must not be greater than 100%")
    bad = workload("DaemonSet")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert causes(client, "daemonsets", bad) == [
        ("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]
