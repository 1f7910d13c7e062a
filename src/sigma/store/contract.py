"""The store contract: a small etcd-shaped key-value store with one global revision.

Every implementation (SQLite embedded, etcd for several masters) behaves the same way, and
the contract tests in tests/store run unchanged against each of them.

- Keys are strings ("/registry/pods/default/web-1"); values are bytes (JSON in practice).
- One monotonic revision counts every write across all keys. A key's ``mod_revision`` is the
  revision of its last write and serves as the object's resourceVersion.
- ``create`` fails when the key exists; ``update`` and ``delete`` compare the caller's
  expected mod_revision and fail with ``Conflict`` when it moved (optimistic concurrency).
- ``list`` returns every key under a prefix at one consistent revision.
- ``watch`` delivers every change under a prefix after a start revision, in revision order,
  first from history and then live. A start revision older than the last compaction raises
  ``RevisionCompacted`` (the API maps it to 410 Gone).
- ``compact(rev)`` forgets the history at and below ``rev``; current values stay.

Implementations are thread-safe: the API server calls them from many threads.
"""

from __future__ import annotations

import abc
import builtins
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal


class StoreError(Exception):
    """Base class of every store failure."""


class KeyExists(StoreError):
    """create() found the key already present."""


class KeyNotFound(StoreError):
    """update()/delete() found no such key."""


class Conflict(StoreError):
    """The key's mod_revision is not the one the caller expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class RevisionCompacted(StoreError):
    """The requested revision is at or below the last compaction."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compacted up to {compacted})")
        self.requested = requested
        self.compacted = compacted


class StoreClosed(StoreError):
    """The store (or the watch) has been closed."""


class StoreUnavailable(StoreError):
    """The store cannot serve the request now, through no fault of the request (etcd
    unreachable, the state directory's disk full or read-only). Nothing was written unless
    the message says the write may have been applied; the API answers 5xx and the caller
    retries later."""


class StorageFull(StoreUnavailable):
    """The disk under the store is full (SQLite's state directory, etcd's space quota). The
    write was rolled back whole; writes work again once space is freed."""


class StorageReadOnly(StoreUnavailable):
    """The store's files are on a file system that became read-only (the kernel remounts a
    file system read-only after a disk error). The write was rolled back whole; reads still
    work."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


EventType = Literal["PUT", "DELETE"]
# (marker, value): a watch that wants only events whose new or previous value holds the
# marker followed by the value and a quote; the store may then skip it for the others
# (routing.py). It narrows delivery, it never widens it: the watch still filters.
Route = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For PUT, ``kv`` is the new value; for DELETE, ``kv`` is the value that was
    deleted with ``mod_revision`` set to the deleting revision. ``prev`` is the value before
    the change (None on creation)."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def created(self) -> bool:
        return self.type == "PUT" and self.prev is None


class Watch:
    """A stream of events for one prefix. Implementations push events with ``_push``; the
    consumer either blocks in ``wait`` or registers a listener (the async API server does,
    to wake its event loop without holding a thread per watch)."""

    def __init__(self, prefix: str, on_close: Callable[[Watch], None] | None = None,
                 route: Route | None = None) -> None:
        self.prefix = prefix
        self.route = route
        self._events: deque[WatchEvent] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: StoreError | None = None
        self._listeners: list[Callable[[], None]] = []
        self._on_close = on_close
        # Set by a consumer that wants only some events (a label-selected watch): the rest
        # are dropped in ``_push``, so they neither queue up nor wake the consumer.
        self.accepts: Callable[[WatchEvent], bool] | None = None

    # -- producer side -------------------------------------------------------------
    def _push(self, events: list[WatchEvent]) -> None:
        with self._cond:
            if self.accepts is not None:
                events = [event for event in events if self.accepts(event)]
            if self._closed or not events:
                return
            # Wake the consumer only when its queue goes from empty to non-empty: it takes
            # everything queued on each drain, so the events pushed meanwhile need no wake-up
            # of their own (waking a waiting thread is a syscall made with the GIL held).
            was_empty = not self._events
            self._events.extend(events)
            if not was_empty:
                return
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def _fail(self, error: StoreError) -> None:
        """End the watch with an error the consumer sees on its next read."""
        with self._cond:
            self._error = error
            self._closed = True
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    # -- consumer side -------------------------------------------------------------
    def add_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called from the producer's thread when events arrive on an
        empty queue or the watch ends; the consumer must then drain everything queued. It
        must not block."""
        with self._cond:
            self._listeners.append(listener)
            pending = bool(self._events) or self._closed
        if pending:
            listener()

    def drain(self) -> list[WatchEvent]:
        """Every event that has arrived, without blocking. Raises the watch's error (or
        StoreClosed) once it has ended and nothing is left."""
        with self._cond:
            if self._events:
                out = list(self._events)
                self._events.clear()
                return out
            if self._closed:
                raise self._error or StoreClosed("watch closed")
            return []

    def wait(self, timeout: float | None = None) -> list[WatchEvent]:
        """Block until at least one event arrives or ``timeout`` passes ([] then)."""
        with self._cond:
            if not self._events and not self._closed:
                self._cond.wait(timeout)
        return self.drain()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed


# Spelled out here because inside Store the name ``list`` is the list() method.
Writes = list[tuple[str, bytes, int | None]]  # (key, value, expected revision)
WriteResults = list[KeyValue | StoreError]
Deletes = list[tuple[str, int | None]]  # (key, expected revision)


class Store(abc.ABC):
    """The contract. See the module docstring."""

    @abc.abstractmethod
    def get(self, key: str) -> KeyValue | None: ...

    def get_many(self, keys: Sequence[str]) -> list[KeyValue | None]:
        """``get`` of each key, in order. An implementation may read them together (one
        lock, one round trip), which is what makes it worth calling; this default loops."""
        return [self.get(key) for key in keys]

    @abc.abstractmethod
    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys starting with ``prefix``, sorted by key, and the store revision they
        were read at."""

    def list_containing(self, prefix: str, needle: bytes) -> builtins.list[KeyValue]:
        """The keys under ``prefix`` whose value contains ``needle`` (an owner's uid, when
        looking for its dependents), sorted by key. An implementation may filter where the
        data is (SQLite does, without copying every value out); this default lists and
        filters."""
        return [kv for kv in self.list(prefix)[0] if needle in kv.value]

    @abc.abstractmethod
    def create(self, key: str, value: bytes) -> KeyValue:
        """Raises KeyExists."""

    @abc.abstractmethod
    def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KeyValue:
        """Replace the value. With ``expected_revision``, raises Conflict unless the key's
        mod_revision equals it. Raises KeyNotFound when absent."""

    def update_many(self, writes: Writes) -> WriteResults:
        """Several independent ``update(key, value, expected_revision)`` calls (distinct
        keys): each takes its own revision, possibly not in the order given, and succeeds or
        fails (KeyNotFound, Conflict: returned in its place, not raised) on its own. An
        implementation may commit them together, which is what makes it worth calling (a
        scheduler binding a batch of pods); this default simply loops."""
        results: WriteResults = []
        for key, value, expected in writes:
            try:
                results.append(self.update(key, value, expected))
            except (KeyNotFound, Conflict) as err:
                results.append(err)
        return results

    @abc.abstractmethod
    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        """Remove the key and return its last value (mod_revision = the deleting revision).
        Raises KeyNotFound, or Conflict as update() does."""

    def delete_many(self, deletes: Deletes) -> WriteResults:
        """Several independent ``delete(key, expected_revision)`` calls (distinct keys): each
        takes its own revision and succeeds or fails (KeyNotFound, Conflict: returned in its
        place, not raised) on its own, and each is one DELETE event to watchers. An
        implementation may commit them together (deleting thousands of pods at once); this
        default simply loops."""
        results: WriteResults = []
        for key, expected in deletes:
            try:
                results.append(self.delete(key, expected))
            except (KeyNotFound, Conflict) as err:
                results.append(err)
        return results

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int, route: Route | None = None) -> Watch:
        """Events with revision > ``start_revision`` under ``prefix``. Raises
        RevisionCompacted when start_revision < compacted_revision(). With ``route``, the
        store may leave out events whose values do not hold it (see Route)."""

    @abc.abstractmethod
    def compact(self, revision: int) -> None:
        """Forget history at and below ``revision`` (no-op if already compacted there)."""

    @abc.abstractmethod
    def current_revision(self) -> int: ...

    @abc.abstractmethod
    def compacted_revision(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources; open watches end with StoreClosed."""


def open_store(url: str) -> Store:
    """``sqlite:///path/to/state.db`` (or a bare path), ``sqlite://:memory:``, or
    ``etcd://host:port[,host:port...]`` once the etcd implementation exists."""
    if url.startswith("etcd://"):
        from sigma.store.etcd import EtcdStore  # type: ignore[import-not-found,unused-ignore]

        return EtcdStore.from_url(url)  # type: ignore[no-any-return,unused-ignore]
    from sigma.store.sqlite import SqliteStore

    if url.startswith("sqlite://"):
        # sqlite:///abs/path.db -> /abs/path.db ; sqlite://:memory: -> :memory:
        path = url[len("sqlite://") :]
        return SqliteStore(path or ":memory:")
    return SqliteStore(url)
