"""Reflectors: list once, then watch from the list's resourceVersion, into one queue.

One thread per resource turns the API's list + watch into a stream of `Delta`s on a shared
queue, so a consumer (a scheduler loop) wakes on any change of any resource and drains
everything pending in one go. A watch that ends is resumed from the last resourceVersion
seen; only 410 Gone (the revision was compacted) costs a full relist, delivered as one
SYNC delta carrying every object, which the consumer reconciles against its cache.

Inside the master, `shared_informer(client, resource)` gives every controller the same
reflector per resource (client-go's SharedInformerFactory): each event is read and decoded
once, then fanned out to each subscriber's queue. Subscribers share the objects and must
treat them as read-only.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.informer")

WATCH_TIMEOUT_S = 300
RETRY_AFTER_ERROR_S = 1.0


@dataclass(frozen=True)
class Delta:
    resource: str
    type: str  # ADDED | MODIFIED | DELETED | SYNC (a relist: `items` is the whole set)
    object: dict[str, Any] = field(default_factory=dict)
    items: tuple[dict[str, Any], ...] = ()


class DeltaSink(Protocol):
    def put(self, delta: Delta) -> None: ...


class Reflector:
    """Keeps `out` fed with the changes of one resource (all namespaces) until stopped."""

    def __init__(self, client: ApiClient, resource: str, out: DeltaSink, field_selector: str = "") -> None:
        self.client = client
        self.resource = resource
        self.out = out
        self.field_selector = field_selector
        self.synced = threading.Event()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name=f"reflector-{self.resource}", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                version = self._relist()
                self._watch_from(version, stop)
            except ApiError as err:
                if err.code != 410:
                    log.warning("%s: %s; relisting in %.0fs", self.resource, err, RETRY_AFTER_ERROR_S)
                    stop.wait(RETRY_AFTER_ERROR_S)
            except Exception:
                log.exception("%s reflector failed; relisting in %.0fs", self.resource, RETRY_AFTER_ERROR_S)
                stop.wait(RETRY_AFTER_ERROR_S)

    def _relist(self) -> str:
        listing = self.client.list(self.resource, field_selector=self.field_selector)
        self.out.put(Delta(self.resource, "SYNC", items=tuple(listing["items"])))
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _watch_from(self, version: str, stop: threading.Event) -> None:
        """Returns only when stopped; raises ApiError(410) when the consumer must relist."""
        while not stop.is_set():
            events = self.client.watch(self.resource, resource_version=version, field_selector=self.field_selector,
                                       timeout_seconds=WATCH_TIMEOUT_S)
            try:
                for event in events:
                    if stop.is_set():
                        return
                    if event.type == "ERROR":
                        code = int(event.object.get("code") or 500)
                        raise ApiError(code, str(event.object.get("reason") or "Error"),
                                       str(event.object.get("message") or ""))
                    version = str((event.object.get("metadata") or {}).get("resourceVersion") or version)
                    if event.type != "BOOKMARK":
                        self.out.put(Delta(self.resource, event.type, event.object))
            finally:
                close = getattr(events, "close", None)  # release the server-side watch now
                if close is not None:
                    close()


def drain(source: queue.Queue[Delta], timeout: float | None) -> list[Delta]:
    """Everything pending, waiting up to `timeout` for the first delta."""
    try:
        first = source.get(timeout=timeout)
    except queue.Empty:
        return []
    batch = [first]
    while True:
        try:
            batch.append(source.get_nowait())
        except queue.Empty:
            return batch


class SharedInformer:
    """One reflector for one resource, fanned out to subscribers' queues.

    The reflector runs while someone subscribes. A subscriber arriving after the first
    listing gets a SYNC of the objects known so far, then the same deltas as everyone.
    """

    def __init__(self, client: ApiClient, resource: str) -> None:
        self.client = client
        self.resource = resource
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Delta]] = []
        self._objects: dict[tuple[str, str], dict[str, Any]] | None = None  # None until listed
        self._stop: threading.Event | None = None
        self._generation = 0  # a stopped reflector's late deltas are dropped by this

    def subscribe(self, out: queue.Queue[Delta]) -> None:
        with self._lock:
            self._subscribers.append(out)
            if self._objects is not None:
                out.put(Delta(self.resource, "SYNC", items=tuple(self._objects.values())))
            if self._stop is None:
                self._stop = threading.Event()
                self._generation += 1
                Reflector(self.client, self.resource, _Feed(self, self._generation)).start(self._stop)

    def unsubscribe(self, out: queue.Queue[Delta]) -> None:
        with self._lock:
            if out in self._subscribers:
                self._subscribers.remove(out)
            if not self._subscribers and self._stop is not None:
                self._stop.set()
                self._stop, self._objects = None, None

    def _put(self, generation: int, delta: Delta) -> None:
        with self._lock:
            if generation != self._generation or self._stop is None:
                return
            if delta.type == "SYNC":
                self._objects = {_key(obj): obj for obj in delta.items}
            elif self._objects is not None:
                if delta.type == "DELETED":
                    self._objects.pop(_key(delta.object), None)
                else:
                    self._objects[_key(delta.object)] = delta.object
            for out in self._subscribers:
                out.put(delta)


@dataclass(frozen=True)
class _Feed:
    informer: SharedInformer
    generation: int

    def put(self, delta: Delta) -> None:
        self.informer._put(self.generation, delta)


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


_INFORMERS: weakref.WeakKeyDictionary[ApiClient, dict[str, SharedInformer]] = weakref.WeakKeyDictionary()
_INFORMERS_LOCK = threading.Lock()


def shared_informer(client: ApiClient, resource: str) -> SharedInformer:
    """The informer of `resource` shared by everyone using `client` (one per master term:
    the master hands each term's controllers one client)."""
    with _INFORMERS_LOCK:
        per_client = _INFORMERS.setdefault(client, {})
        if resource not in per_client:
            per_client[resource] = SharedInformer(client, resource)
        return per_client[resource]
