"""Watches indexed by a field of the stored value, so that an event reaches only the watches
that can want it.

Every agent watches the pods of its own node (a field selector on spec.nodeName). Handed
every pod event, each of those watches tests it and drops it: with 300 nodes, about 700 µs
of a master's CPU per event, three events per pod. kube-apiserver's watch cache indexes such
watches by node name; a store fan-out does the same here. A watch opened with a ``Route``
(marker, value), say (b'"nodeName":"', b"node-7"), declares that it wants no event unless
its new or previous value holds that marker followed by that value and a closing quote. The
fan-out reads the values after the marker once per event and pushes it to the watches
routed to them, and to every watch without a route.

Stored objects are compact JSON (orjson), where a string value follows its key's colon
directly, and a quote inside a string is escaped: the marker ``"nodeName":"`` only ever
starts a key named nodeName with a string value. Every such key in the object counts (an
annotation may be called nodeName too), so no event a routed watch wants is missed; a
value holding an escape is not read at all, and the event goes to every watch routed on
that marker, which still apply their own filter.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sigma.store.contract import Route, Watch, WatchEvent

S = TypeVar("S")


def route_values(marker: bytes, raw: bytes) -> set[bytes] | None:
    """Every value that follows ``marker`` in ``raw`` up to its closing quote; None when
    one of them holds a backslash (it cannot be compared as raw bytes)."""
    found: set[bytes] = set()
    start = raw.find(marker)
    while start >= 0:
        begin = start + len(marker)
        end = raw.find(b'"', begin)
        if end < 0:
            return None
        value = raw[begin:end]
        if b"\\" in value:
            return None
        found.add(value)
        start = raw.find(marker, end)
    return found


class RoutedSubscribers(Generic[S]):
    """A fan-out's subscribers (``S``, one per watch), found per event by route. Not
    thread-safe: the fan-out guards it with its own lock."""

    def __init__(self) -> None:
        self._all: dict[Watch, S] = {}
        self._unrouted: dict[Watch, S] = {}
        self._routed: dict[bytes, dict[bytes, dict[Watch, S]]] = {}  # marker -> value -> subscribers

    def add(self, watch: Watch, subscriber: S) -> None:
        self._all[watch] = subscriber
        route: Route | None = watch.route
        if route is None:
            self._unrouted[watch] = subscriber
        else:
            marker, value = route
            self._routed.setdefault(marker, {}).setdefault(value, {})[watch] = subscriber

    def discard(self, watch: Watch) -> S | None:
        subscriber = self._all.pop(watch, None)
        if subscriber is None:
            return None
        if watch.route is None:
            del self._unrouted[watch]
        else:
            marker, value = watch.route
            by_value = self._routed[marker]
            del by_value[value][watch]
            if not by_value[value]:
                del by_value[value]
            if not by_value:
                del self._routed[marker]
        return subscriber

    def clear(self) -> list[S]:
        everyone = list(self._all.values())
        self._all, self._unrouted, self._routed = {}, {}, {}
        return everyone

    def __len__(self) -> int:
        return len(self._all)

    def for_event(self, event: WatchEvent) -> list[S]:
        """The subscribers that may want ``event``: every unrouted one, and the routed ones
        whose value the event's new or previous value holds."""
        out = list(self._unrouted.values())
        for marker, by_value in self._routed.items():
            values = route_values(marker, event.kv.value)
            if values is not None and event.prev is not None:
                before = route_values(marker, event.prev.value)
                values = None if before is None else values | before
            if values is None:
                for every in by_value.values():
                    out.extend(every.values())
                continue
            for value in values:
                routed = by_value.get(value)
                if routed:
                    out.extend(routed.values())
        return out
