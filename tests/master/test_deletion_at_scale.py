"""Deleting many objects: store batches, one scan per cascade level, and the owner index
that finds one object's dependents without reading every stored object."""

from __future__ import annotations

import time
from typing import Any

from sigma.api.objects import owner_reference
from sigma.api.registry_bulk import delete_objects, owner_index
from sigma.api.resources import resource
from sigma.client.local import LocalClient

NS = "default"


def pod(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def test_a_cascade_of_thousands_of_dependents_deletes_them_all_with_their_events(client: LocalClient) -> None:
    owner = client.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "big"}},
                 "template": {"metadata": {"labels": {"app": "big"}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}, NS)
    for i in range(1200):  # more than two store batches
        client.create("pods", pod(f"p{i}", owner), NS)
    client.create("pods", pod("bystander"), NS)
    rv = client.list("pods", NS)["metadata"]["resourceVersion"]
    deleted: list[str] = []
    watch = client.registry.watch(resource("pods"), NS, rv)
    client.delete("deployments", "big", NS)
    deadline = time.monotonic() + 10
    while len(deleted) < 1200 and time.monotonic() < deadline:
        deleted += [e.object["metadata"]["name"] for e in watch.wait(1.0) if e.type == "DELETED"]
    watch.close()
    assert sorted(deleted) == sorted(f"p{i}" for i in range(1200))  # one DELETED event each
    assert [p["metadata"]["name"] for p in client.list("pods", NS)["items"]] == ["bystander"]


def test_delete_collection_marks_bound_pods_and_removes_the_rest(client: LocalClient) -> None:
    client.create("nodes", {"metadata": {"name": "n1"}})
    for i in range(3):
        client.create("pods", pod(f"free{i}"), NS)
    bound = client.create("pods", {**pod("bound"), "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30,
                                                            "containers": [{"name": "main", "image": "busybox"}]}}, NS)
    items = client.list("pods", NS)["items"]
    out = delete_objects(client.registry, resource("pods"), items)
    assert len(out) == 4
    left = client.list("pods", NS)["items"]
    assert [p["metadata"]["name"] for p in left] == ["bound"]
    assert left[0]["metadata"]["deletionTimestamp"] and left[0]["metadata"]["deletionGracePeriodSeconds"] == 30
    assert left[0]["metadata"]["uid"] == bound["metadata"]["uid"]


def test_the_owner_index_knows_each_objects_dependents(client: LocalClient) -> None:
    store = client.registry.store
    index = owner_index(store)
    parent = client.create("pods", pod("parent"), NS)
    child = client.create("pods", pod("child", {**parent, "kind": "Pod", "apiVersion": "v1"}), NS)
    deadline = time.monotonic() + 5
    while index.keys_of(parent["metadata"]["uid"]) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index.keys_of(parent["metadata"]["uid"]) == {resource("pods").key(NS, "child")}
    client.delete("pods", "parent", NS)  # found through the index, deleted with its owner
    assert [p["metadata"]["name"] for p in client.list("pods", NS)["items"]] == []
    assert index.keys_of(child["metadata"]["uid"]) == set()
