"""Object semantics of the registry, in-process over an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from sigma.api import admission
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.watch import with_resource_version
from sigma.store.sqlite import SqliteStore

PODS, DEPLOYMENTS, NAMESPACES = resource("pods"), resource("deployments"), resource("namespaces")


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    clock = [1_800_000_000.0]
    reg = Registry(store, clock=lambda: clock[0])
    admission.install(reg)
    admission.bootstrap(reg)
    try:
        yield reg
    finally:
        store.close()


def pod(name: str, **meta: object) -> dict:
    return {"metadata": {"name": name, **meta}, "spec": {"containers": [{"name": "c", "command": ["true"]}]}}


def test_create_fills_uid_timestamps_generation_and_defaults(registry: Registry) -> None:
    created = registry.create(PODS, "default", pod("a"))
    m = created["metadata"]
    assert m["uid"] and m["creationTimestamp"] == "2027-01-15T08:00:00Z" and m["generation"] == 1
    assert created["spec"]["schedulerName"] == "sigma-scheduler"
    assert created["spec"]["priority"] == 0 and created["status"]["phase"] == "Pending"
    assert created["status"]["qosClass"] == "BestEffort"


def test_priority_class_sets_the_pod_priority(registry: Registry) -> None:
    p = pod("a")
    p["spec"]["priorityClassName"] = "sigma-batch"
    assert registry.create(PODS, "default", p)["spec"]["priority"] == 5000


def test_generate_name_makes_a_unique_name(registry: Registry) -> None:
    a = registry.create(PODS, "default", {**pod(""), "metadata": {"generateName": "web-"}})
    b = registry.create(PODS, "default", {**pod(""), "metadata": {"generateName": "web-"}})
    assert a["metadata"]["name"].startswith("web-") and a["metadata"]["name"] != b["metadata"]["name"]


def test_main_resource_writes_keep_status_and_status_writes_keep_spec(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a"))
    registry.patch(PODS, "default", "a", "merge", {"status": {"phase": "Running"}})
    assert registry.get(PODS, "default", "a")["status"]["phase"] == "Pending"
    registry.patch(PODS, "default", "a", "merge", {"status": {"phase": "Running"}}, subresource="status")
    assert registry.get(PODS, "default", "a")["status"]["phase"] == "Running"


def test_an_update_that_changes_nothing_keeps_the_resource_version(registry: Registry) -> None:
    created = registry.create(PODS, "default", pod("a"))
    same = registry.patch(PODS, "default", "a", "merge", {"metadata": {"labels": None}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generation_moves_only_with_the_spec(registry: Registry) -> None:
    d = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    registry.create(DEPLOYMENTS, "default", d)
    registry.patch(DEPLOYMENTS, "default", "d", "merge", {"metadata": {"labels": {"x": "y"}}})
    assert registry.get(DEPLOYMENTS, "default", "d")["metadata"]["generation"] == 1
    registry.patch(DEPLOYMENTS, "default", "d", "merge", {"spec": {"replicas": 4}})
    assert registry.get(DEPLOYMENTS, "default", "d")["metadata"]["generation"] == 2


def test_a_pod_on_a_node_is_deleted_gracefully_then_for_good(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a"))
    registry.bind("default", "a", "node-1")
    marked = registry.delete(PODS, "default", "a")
    assert marked["metadata"]["deletionTimestamp"] == "2027-01-15T08:00:30Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert registry.get(PODS, "default", "a")["metadata"]["deletionTimestamp"]
    registry.delete(PODS, "default", "a", grace_period=0)
    with pytest.raises(ApiError) as err:
        registry.get(PODS, "default", "a")
    assert err.value.code == 404


def test_binding_twice_is_a_conflict(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a"))
    bound = registry.bind("default", "a", "node-1")
    assert bound["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    with pytest.raises(ApiError) as err:
        registry.bind("default", "a", "node-2")
    assert err.value.code == 409


def owned_pod(name: str, owner: dict) -> dict:
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True}
    return pod(name, ownerReferences=[ref])


@pytest.fixture
def deployment(registry: Registry) -> dict:
    d = {"metadata": {"name": "d"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    return registry.create(DEPLOYMENTS, "default", d)


def test_deleting_an_owner_deletes_its_dependents(registry: Registry, deployment: dict) -> None:
    registry.create(PODS, "default", owned_pod("p1", deployment))
    registry.create(PODS, "default", pod("unrelated"))
    registry.delete(DEPLOYMENTS, "default", "d")
    names = [p["metadata"]["name"] for p in registry.list(PODS, "default")["items"]]
    assert names == ["unrelated"]


def test_orphan_propagation_keeps_dependents_without_the_reference(registry: Registry, deployment: dict) -> None:
    registry.create(PODS, "default", owned_pod("p1", deployment))
    registry.delete(DEPLOYMENTS, "default", "d", propagation="Orphan")
    left = registry.get(PODS, "default", "p1")
    assert "ownerReferences" not in left["metadata"]


def test_finalizers_hold_deletion_until_removed(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a", finalizers=["sigma.io/hold"]))
    marked = registry.delete(PODS, "default", "a")
    assert marked["metadata"]["deletionTimestamp"]
    registry.patch(PODS, "default", "a", "merge", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError):
        registry.get(PODS, "default", "a")


def test_deleting_a_namespace_removes_its_contents(registry: Registry) -> None:
    registry.create(NAMESPACES, None, {"metadata": {"name": "gone"}})
    registry.create(PODS, "gone", pod("a"))
    registry.delete(NAMESPACES, None, "gone")
    assert registry.list(PODS, "gone")["items"] == []


def test_a_namespace_with_running_pods_terminates_until_its_agents_have_stopped_them(registry: Registry) -> None:
    # Kubernetes' namespace lifecycle: pods on a node end gracefully, the namespace stays
    # Terminating (refusing new content) and goes with its last pod.
    services = resource("services")
    registry.create(NAMESPACES, None, {"metadata": {"name": "shop"}})
    registry.create(PODS, "shop", pod("web"))
    registry.bind("shop", "web", "n1")
    registry.create(PODS, "shop", pod("pending"))  # never scheduled: goes at once
    registry.create(services, "shop", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})

    answer = registry.delete(NAMESPACES, None, "shop")
    assert answer["metadata"]["deletionTimestamp"] and answer["status"]["phase"] == "Terminating"
    assert registry.get(NAMESPACES, None, "shop")["status"]["phase"] == "Terminating"
    left = registry.list(PODS, "shop")["items"]
    assert [p["metadata"]["name"] for p in left] == ["web"]
    assert left[0]["metadata"]["deletionTimestamp"] and left[0]["metadata"]["deletionGracePeriodSeconds"] == 30
    assert registry.list(services, "shop")["items"] == []
    with pytest.raises(ApiError) as refused:
        registry.create(PODS, "shop", pod("late"))
    assert refused.value.code == 403 and "being terminated" in refused.value.message

    again = registry.delete(NAMESPACES, None, "shop")  # a second delete changes nothing
    assert again["metadata"]["deletionTimestamp"] == answer["metadata"]["deletionTimestamp"]
    registry.delete(PODS, "shop", "web", grace_period=0)  # the agent, once the pod stopped
    with pytest.raises(ApiError) as gone:
        registry.get(NAMESPACES, None, "shop")
    assert gone.value.code == 404


def test_nothing_new_is_made_in_a_namespace_while_it_is_emptied(registry: Registry,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A ReplicaSet replacing the pods being deleted must find the namespace Terminating.
    registry.create(NAMESPACES, None, {"metadata": {"name": "busy"}})
    registry.create(resource("services"), "busy", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    answers: list[object] = []
    delete = registry.store.delete

    def delete_while_a_controller_creates(key: str, *args: object, **kwargs: object) -> object:
        if not answers:
            try:
                answers.append(registry.create(PODS, "busy", pod("replacement"))["metadata"]["name"])
            except ApiError as err:
                answers.append(err.code)
        return delete(key, *args, **kwargs)

    monkeypatch.setattr(registry.store, "delete", delete_while_a_controller_creates)
    registry.delete(NAMESPACES, None, "busy")
    assert answers == [403]
    with pytest.raises(ApiError):
        registry.get(NAMESPACES, None, "busy")


def test_lists_page_with_limit_and_continue(registry: Registry) -> None:
    for i in range(5):
        registry.create(PODS, "default", pod(f"p{i}"))
    first = registry.list(PODS, "default", limit=2)
    assert [p["metadata"]["name"] for p in first["items"]] == ["p0", "p1"]
    second = registry.list(PODS, "default", limit=2, continue_token=first["metadata"]["continue"])
    assert [p["metadata"]["name"] for p in second["items"]] == ["p2", "p3"]
    third = registry.list(PODS, "default", limit=2, continue_token=second["metadata"]["continue"])
    assert [p["metadata"]["name"] for p in third["items"]] == ["p4"] and "continue" not in third["metadata"]


def test_a_watch_turns_selector_transitions_into_added_and_deleted(registry: Registry) -> None:
    start = registry.list(PODS, "default")["metadata"]["resourceVersion"]
    watch = registry.watch(PODS, "default", start, label_selector="tier=gold")
    try:
        registry.create(PODS, "default", pod("a", labels={"tier": "silver"}))
        registry.patch(PODS, "default", "a", "merge", {"metadata": {"labels": {"tier": "gold"}}})
        registry.patch(PODS, "default", "a", "merge", {"metadata": {"annotations": {"x": "y"}}})
        registry.patch(PODS, "default", "a", "merge", {"metadata": {"labels": {"tier": "bronze"}}})
        events = []
        while len(events) < 3:
            got = watch.wait(2.0)
            assert got, f"timed out after {events}"
            events += got
        assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    finally:
        watch.close()


def test_a_watch_from_a_compacted_revision_is_gone(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a"))
    old = registry.list(PODS, "default")["metadata"]["resourceVersion"]
    registry.create(PODS, "default", pod("b"))
    registry.store.compact(registry.store.current_revision())
    with pytest.raises(ApiError) as err:
        registry.watch(PODS, "default", str(int(old) - 1))
    assert err.value.code == 410


def test_a_node_field_watch_sees_the_binding_of_its_pods_only(registry: Registry) -> None:
    start = registry.list(PODS, "default")["metadata"]["resourceVersion"]
    watch = registry.watch(PODS, None, start, field_selector="spec.nodeName=n1")
    for name in ("mine", "theirs"):
        registry.create(PODS, "default", pod(name))
    registry.bind("default", "mine", "n1")
    registry.bind("default", "theirs", "n2")
    registry.delete(PODS, "default", "mine", grace_period=0)
    events = [(e.type, e.object["metadata"]["name"]) for e in watch.wait(1.0) + watch.drain()]
    watch.close()
    assert events == [("ADDED", "mine"), ("DELETED", "mine")]
    listed = registry.list(PODS, None, field_selector="spec.nodeName=n2")["items"]
    assert [p["metadata"]["name"] for p in listed] == ["theirs"]


def test_a_namespace_deleted_through_the_registry_takes_effect_at_once_despite_the_cache(registry: Registry) -> None:
    registry.create(NAMESPACES, None, {"metadata": {"name": "brief"}})
    registry.create(PODS, "brief", pod("a"))  # the namespace is read (and cached) here
    registry.delete(NAMESPACES, None, "brief")
    with pytest.raises(ApiError) as gone:
        registry.create(PODS, "brief", pod("b"))
    assert gone.value.code == 404


def test_watch_lines_spliced_from_stored_bytes_equal_the_decoded_events(registry: Registry) -> None:
    start = registry.list(PODS, "default")["metadata"]["resourceVersion"]
    spliced = registry.watch(PODS, None, start)
    decoded = registry.watch(PODS, None, start)
    registry.create(PODS, "default", {"kind": "Pod", "apiVersion": "v1", **pod("a", labels={"x": "y"})})
    registry.create(PODS, "default", {"spec": pod("b")["spec"], "metadata": {"name": "b"}})  # spec first
    registry.bind("default", "a", "n1")
    registry.delete(PODS, "default", "b", grace_period=0)
    lines = spliced.drain_lines()
    events = decoded.drain()
    spliced.close()
    decoded.close()
    assert [orjson.loads(line) for line in lines] == [{"type": e.type, "object": e.object} for e in events]
    assert [e.type for e in events] == ["ADDED", "ADDED", "MODIFIED", "DELETED"]
    assert all(line.endswith(b"}\n") and line.count(b"\n") == 1 for line in lines)


@pytest.mark.parametrize("stored, revision, expected", [
    (b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{}}', 7,
     b'{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"7","name":"a"},"spec":{}}'),
    (b'{"metadata":{}}', 12, b'{"metadata":{"resourceVersion":"12"}}'),
    # Not laid out as the registry stores objects: the caller decodes instead.
    (b'{"spec":{"template":{"metadata":{}}},"metadata":{"name":"a"}}', 3, None),
    (b'{"apiVersion":1,"metadata":{}}', 3, None),
])
def test_a_resource_version_is_spliced_only_into_the_top_level_metadata(stored: bytes, revision: int,
                                                                        expected: bytes | None) -> None:
    assert with_resource_version(stored, revision) == expected


@pytest.mark.parametrize("patch_type", ["merge", "strategic", "json"])
def test_a_patch_without_a_resource_version_is_reapplied_over_a_write_that_raced_it(
        registry: Registry, monkeypatch: pytest.MonkeyPatch, patch_type: str) -> None:
    registry.create(PODS, "default", pod("a"))
    update = registry.store.update
    raced = []

    def racing_update(key: str, value: bytes, revision: int) -> object:
        if not raced:  # another writer lands between this patch's read and its write
            raced.append(update(key, value.replace(b'"labels":{"x":"1"}', b'"labels":{"y":"2"}'), revision))
        return update(key, value, revision)

    monkeypatch.setattr(registry.store, "update", racing_update)
    body: object = ([{"op": "add", "path": "/metadata/labels", "value": {"x": "1"}}] if patch_type == "json"
                    else {"metadata": {"labels": {"x": "1"}}})
    patched = registry.patch(PODS, "default", "a", patch_type, body)
    assert len(raced) == 1
    # Re-applied over the racing write: a merge keeps its label, the JSON patch replaces the map.
    expected = {"x": "1"} if patch_type == "json" else {"y": "2", "x": "1"}
    assert patched["metadata"]["labels"] == expected
    assert registry.get(PODS, "default", "a")["metadata"]["labels"] == expected


def test_a_patch_that_names_a_resource_version_fails_on_a_write_that_raced_it(registry: Registry) -> None:
    created = registry.create(PODS, "default", pod("a"))
    registry.patch(PODS, "default", "a", "merge", {"metadata": {"labels": {"y": "2"}}})
    with pytest.raises(ApiError) as err:
        registry.patch(PODS, "default", "a", "merge",
                       {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "labels": {"x": "1"}}})
    assert err.value.code == 409
