"""The garbage collector's sweep over a real registry: what a crash mid-cascade leaves."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.api.resources import resource
from sigma.client.local import LocalClient
from sigma.master.controllers.gc import GarbageCollector

NS = "default"


def ref(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}


def pod(client: LocalClient, name: str, *refs: dict[str, Any]) -> None:
    client.create("pods", {"metadata": {"name": name, "ownerReferences": list(refs)},
                           "spec": {"containers": [{"name": "c", "image": "i"}]}}, NS)


def deployment(client: LocalClient, name: str, *refs: dict[str, Any]) -> dict[str, Any]:
    return client.create("deployments", {"metadata": {"name": name, "ownerReferences": list(refs)}, "spec": {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
                         NS)


def names(client: LocalClient, plural: str) -> set[str]:
    return {o["metadata"]["name"] for o in client.list(plural, NS)["items"]}


def test_the_sweep_deletes_dependents_whose_owners_are_gone_and_keeps_the_rest(client: LocalClient) -> None:
    live = deployment(client, "live")
    live_ref = ref("Deployment", "live", live["metadata"]["uid"])
    pod(client, "owned", live_ref)
    pod(client, "orphan", ref("Deployment", "gone", str(uuid.uuid4())))
    pod(client, "impostor-owner", ref("Deployment", "live", str(uuid.uuid4())))  # same name, another uid
    pod(client, "unowned")
    pod(client, "foreign-kind", ref("Widget", "w", str(uuid.uuid4()), "example.com/v1"))  # a kind Sigma cannot check
    deployment(client, "orphan-deploy", ref("BatchJob", "gone", str(uuid.uuid4()), "sigma.io/v1"))
    deleted = GarbageCollector(client).sweep()
    assert sorted(deleted) == [("deployments", NS, "orphan-deploy"), ("pods", NS, "impostor-owner"),
                               ("pods", NS, "orphan")]
    assert names(client, "pods") == {"owned", "unowned", "foreign-kind"}
    assert names(client, "deployments") == {"live"}


def test_a_dependent_with_a_live_owner_left_only_loses_its_dangling_references(client: LocalClient) -> None:
    live = deployment(client, "live")
    live_ref = ref("Deployment", "live", live["metadata"]["uid"])
    pod(client, "shared", ref("Deployment", "gone", str(uuid.uuid4())), live_ref)
    assert GarbageCollector(client).sweep() == []
    assert client.get("pods", "shared", NS)["metadata"]["ownerReferences"] == [live_ref]


def test_an_owner_on_another_scope_is_found_where_it_lives(client: LocalClient) -> None:
    node = client.create("nodes", {"metadata": {"name": "n1"}})
    pod(client, "node-owned", ref("Node", "n1", node["metadata"]["uid"], "v1"))
    pod(client, "node-gone", ref("Node", "n2", str(uuid.uuid4()), "v1"))
    GarbageCollector(client).sweep()
    assert names(client, "pods") == {"node-owned"}


def test_the_collector_sweeps_at_start_up_and_then_periodically(client: LocalClient) -> None:
    pod(client, "first", ref("Deployment", "gone", str(uuid.uuid4())))
    stop = threading.Event()
    thread = threading.Thread(target=GarbageCollector(client, period_s=0.2).run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while "first" in names(client, "pods"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pod(client, "second", ref("Deployment", "gone", str(uuid.uuid4())))
        while "second" in names(client, "pods"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)


def test_the_sweep_finishes_a_foreground_deletion_a_crash_left_waiting(client: LocalClient) -> None:
    # What a master that died between marking the owners and deleting the last dependent
    # leaves: owners with deletionTimestamp and the foregroundDeletion finalizer.
    client.create("deployments", {**_spec("done"), "metadata": {"name": "done",
                                                                        "finalizers": ["foregroundDeletion"]}}, NS)
    held = client.create("deployments", {**_spec("held"), "metadata": {"name": "held",
                                                                        "finalizers": ["foregroundDeletion"]}}, NS)
    blocking = {**ref("Deployment", "held", held["metadata"]["uid"]), "blockOwnerDeletion": True}
    pod(client, "still-there", blocking)
    client.delete("deployments", "done", NS)
    client.delete("deployments", "held", NS)
    assert names(client, "deployments") == {"done", "held"}  # both waiting on their finalizer
    assert GarbageCollector(client).sweep() == [("deployments", NS, "done")]
    assert names(client, "deployments") == {"held"}


def _spec(name: str) -> dict[str, Any]:
    return {"spec": {"selector": {"matchLabels": {"app": name}}, "template": {
        "metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}



def test_the_sweep_finishes_a_terminating_namespace_whose_last_pod_went_without_it(client: LocalClient) -> None:
    registry, pods = client.registry, resource("pods")
    client.create("namespaces", {"metadata": {"name": "brief"}})
    client.create("pods", {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                  "brief")
    registry.bind("brief", "web", "n1")
    assert client.delete("namespaces", "brief")["status"]["phase"] == "Terminating"
    # The pod's removal written to the store, the registry's follow-up lost (a crash).
    registry.store.delete(pods.key("brief", "web"))
    assert client.get("namespaces", "brief")["status"]["phase"] == "Terminating"
    assert ("namespaces", "", "brief") in GarbageCollector(client).sweep()
    with pytest.raises(ApiError) as gone:
        client.get("namespaces", "brief")
    assert gone.value.code == 404
