"""Watches routed by node (store/routing.py): on every store, a routed watch gets every
event of its node's objects (bound to it, moved away, deleted, the marker anywhere in the
object) and is not handed the others; unrouted watches still get everything."""

from __future__ import annotations

import orjson

from sigma.store.contract import KeyValue, Store, Watch, WatchEvent
from sigma.store.routing import RoutedSubscribers, route_values

MARKER = b'"nodeName":"'


def pod(name: str, node: str | None = None, **annotations: str) -> bytes:
    spec = {"nodeName": node} if node else {}
    return orjson.dumps({"metadata": {"name": name, "annotations": annotations}, "spec": spec})


def drained(watch: Watch, count: int) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    for _ in range(50):
        events += watch.wait(0.1)
        if len(events) >= count:
            break
    return events


def test_route_values_reads_every_occurrence_and_gives_up_on_escapes() -> None:
    assert route_values(MARKER, pod("a", "n1")) == {b"n1"}
    assert route_values(MARKER, pod("a")) == set()
    assert route_values(MARKER, pod("a", "n1", nodeName="n2")) == {b"n1", b"n2"}
    assert route_values(MARKER, pod("a", 'we"ird')) is None
    assert route_values(MARKER, b'{"spec":{"nodeName":"unterminated') is None


def test_subscribers_are_found_by_route_and_forgotten_on_discard() -> None:
    subs: RoutedSubscribers[str] = RoutedSubscribers()
    everything, n1, n2 = Watch("/p/"), Watch("/p/", route=(MARKER, b"n1")), Watch("/p/", route=(MARKER, b"n2"))
    subs.add(everything, "all")
    subs.add(n1, "n1")
    subs.add(n2, "n2")

    def event(value: bytes, prev: bytes | None = None) -> WatchEvent:
        return WatchEvent("PUT", KeyValue("/p/a", value, 1, 2), KeyValue("/p/a", prev, 1, 1) if prev else None)

    assert sorted(subs.for_event(event(pod("a")))) == ["all"]
    assert sorted(subs.for_event(event(pod("a", "n1"), pod("a")))) == ["all", "n1"]
    assert sorted(subs.for_event(event(pod("a", "n2"), pod("a", "n1")))) == ["all", "n1", "n2"]
    assert sorted(subs.for_event(event(pod("a", 'we"ird')))) == ["all", "n1", "n2"]  # unreadable: everyone
    assert subs.discard(n1) == "n1"
    assert subs.discard(n1) is None
    assert sorted(subs.for_event(event(pod("a", "n1")))) == ["all"]
    assert len(subs) == 2
    assert sorted(subs.clear()) == ["all", "n2"]
    assert len(subs) == 0


def test_a_routed_watch_gets_its_nodes_events_and_no_others(store: Store) -> None:
    start = store.current_revision()
    mine = store.watch("/registry/pods/", start, route=(MARKER, b"n1"))
    everything = store.watch("/registry/pods/", start)
    store.create("/registry/pods/d/a", pod("a"))  # not bound yet: not n1's
    a = store.update("/registry/pods/d/a", pod("a", "n1"))  # bound to n1
    store.create("/registry/pods/d/b", pod("b", "n2"))
    store.create("/registry/pods/d/c", pod("c", "n2", nodeName="n1"))  # the marker elsewhere counts too
    store.update("/registry/pods/d/a", pod("a", "n1", phase="Running"), a.mod_revision)
    store.delete("/registry/pods/d/a")  # the deleted value was on n1
    seen = [(e.type, e.kv.key) for e in drained(mine, 4)]
    assert seen == [("PUT", "/registry/pods/d/a"), ("PUT", "/registry/pods/d/c"), ("PUT", "/registry/pods/d/a"),
                    ("DELETE", "/registry/pods/d/a")]
    assert len(drained(everything, 6)) == 6
    assert mine.wait(0.2) == []
    mine.close()
    everything.close()
