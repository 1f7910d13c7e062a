"""The registry's batch binding and label-narrowed watches (decoding skipped by a bytes test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sigma.api import admission
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

PODS = resource("pods")


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    reg = Registry(store)
    admission.install(reg)
    admission.bootstrap(reg)
    yield reg
    store.close()


def pod(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_bind_many_binds_each_pod_and_reports_each_failure_in_its_place(registry: Registry) -> None:
    for name in ("a", "b", "c"):
        registry.create(PODS, "default", pod(name))
    registry.bind("default", "b", "n0")
    results = registry.bind_many([("default", "a", "n1"), ("default", "b", "n1"), ("default", "gone", "n1"),
                                  ("default", "c", "n2")])
    assert [r["spec"]["nodeName"] if isinstance(r, dict) else r.code for r in results] == ["n1", 409, 404, "n2"]
    stored = registry.get(PODS, "default", "c")
    assert stored["spec"]["nodeName"] == "n2"
    assert stored["metadata"]["resourceVersion"] == results[3]["metadata"]["resourceVersion"]  # type: ignore[index]
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in stored["status"]["conditions"])


def test_a_label_selected_watch_sees_only_matching_objects_and_their_transitions(registry: Registry) -> None:
    rv = registry.list(PODS, "default")["metadata"]["resourceVersion"]
    watch = registry.watch(PODS, "default", rv, label_selector="sigma.io/job=j")
    registry.create(PODS, "default", pod("other", {"app": "x"}))
    registry.create(PODS, "default", pod("mine", {"sigma.io/job": "j"}))
    registry.patch(PODS, "default", "mine", "merge", {"metadata": {"labels": {"sigma.io/job": None}}})
    registry.patch(PODS, "default", "other", "merge", {"metadata": {"labels": {"sigma.io/job": "j"}}})
    events = watch.wait(1) + watch.wait(0.1)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "mine"), ("DELETED", "mine"), ("ADDED", "other")]
    watch.close()


def test_a_list_with_a_label_selector_matches_as_before(registry: Registry) -> None:
    registry.create(PODS, "default", pod("a", {"pod-template-hash": "h1"}))
    registry.create(PODS, "default", pod("b", {"app": "pod-template-hash"}))  # the key only as a value
    registry.create(PODS, "default", pod("c"))
    names = lambda sel: [p["metadata"]["name"] for p in registry.list(PODS, "default", sel)["items"]]  # noqa: E731
    assert names("pod-template-hash") == ["a"]
    assert names("pod-template-hash!=h1") == ["b", "c"]
    assert names("!pod-template-hash") == ["b", "c"]
    with pytest.raises(ApiError):
        names("a in (")
