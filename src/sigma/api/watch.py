"""Kubernetes watch semantics over a store watch.

Store events (PUT/DELETE of keys) become ADDED / MODIFIED / DELETED events of objects. With
a selector, an object that starts matching is ADDED and one that stops matching is DELETED,
as the Kubernetes API does. Without a resourceVersion (or with "0"), the watch starts with
an ADDED event for every current object, then streams changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.api import errors
from sigma.api.resources import ResourceType
from sigma.store.contract import KeyValue, RevisionCompacted, Store, Watch, WatchEvent


@dataclass(frozen=True)
class ObjectEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    revision: int


class RegistryWatch:
    def __init__(self, inner: Watch, initial: list[ObjectEvent], match: Callable[[dict[str, Any]], bool],
                 from_kv: Callable[[KeyValue], dict[str, Any]], start_revision: int, selects_all: bool = False,
                 may_match: Callable[[bytes], bool] | None = None) -> None:
        self.inner = inner
        # A cheap test on the stored bytes (see Registry.prefilter): an event whose new and
        # old values both fail it cannot concern this watch, so neither is decoded. The
        # store's watch applies it as events arrive (`Watch.accepts`); the events replayed
        # from history before that are tested here.
        self._may_match = may_match
        self._pending = initial
        self._match = match
        # Without a selector every object matches: the previous value need not be decoded.
        self._selects_all = selects_all
        self._from_kv = from_kv
        # The revision up to which this watch has delivered every change: safe for bookmarks.
        self.revision = start_revision

    @classmethod
    def open(cls, store: Store, rt: ResourceType, prefix: str, resource_version: str,
             match: Callable[[dict[str, Any]], bool], from_kv: Callable[[KeyValue], dict[str, Any]],
             selects_all: bool = False, may_match: Callable[[bytes], bool] | None = None) -> RegistryWatch:
        initial: list[ObjectEvent] = []
        if resource_version in ("", "0"):
            kvs, revision = store.list(prefix)
            for kv in kvs:
                if may_match is not None and not may_match(kv.value):
                    continue
                obj = from_kv(kv)
                if match(obj):
                    initial.append(ObjectEvent("ADDED", obj, kv.mod_revision))
        else:
            try:
                revision = int(resource_version)
            except ValueError:
                raise errors.bad_request(f"invalid resourceVersion {resource_version!r}") from None
        try:
            inner = store.watch(prefix, revision)
        except RevisionCompacted as err:
            raise errors.gone(f"too old resource version: {revision} ({err.compacted})") from err
        if may_match is not None:
            inner.accepts = lambda ev: may_match(ev.kv.value) or (ev.prev is not None and may_match(ev.prev.value))
        return cls(inner, initial, match, from_kv, revision, selects_all, may_match)

    def add_listener(self, listener: Callable[[], None]) -> None:
        self.inner.add_listener(listener)

    def _translate(self, events: list[WatchEvent]) -> list[ObjectEvent]:
        out: list[ObjectEvent] = []
        may_match = self._may_match
        for ev in events:
            self.revision = ev.revision
            if may_match is not None and not may_match(ev.kv.value) and (
                    ev.prev is None or not may_match(ev.prev.value)):
                continue
            if ev.type == "DELETE":
                obj = self._from_kv(ev.kv)
                if self._match(obj):
                    out.append(ObjectEvent("DELETED", obj, ev.revision))
                continue
            obj = self._from_kv(ev.kv)
            now = self._match(obj)
            before = ev.prev is not None and (self._selects_all or self._match(self._from_kv(ev.prev)))
            if now and before:
                out.append(ObjectEvent("MODIFIED", obj, ev.revision))
            elif now:
                out.append(ObjectEvent("ADDED", obj, ev.revision))
            elif before:
                out.append(ObjectEvent("DELETED", obj, ev.revision))
        return out

    def drain(self) -> list[ObjectEvent]:
        """Events ready now, without blocking. Raises StoreClosed (or the store's error)
        when the watch has ended."""
        out, self._pending = self._pending, []
        return out + self._translate(self.inner.drain())

    def wait(self, timeout: float | None) -> list[ObjectEvent]:
        if self._pending:
            return self.drain()
        return self._translate(self.inner.wait(timeout))

    def close(self) -> None:
        self.inner.close()
