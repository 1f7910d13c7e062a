"""One etcd watch stream per prefix per process, fanned out to every contract Watch under it.

A master opens many watches on the same keys: each informer of its controllers, and one per
API watch (every agent watches the pods of its node: the same pod prefix, filtered by node).
Given an etcd stream each, etcd sends every pod event once per watch and the master decodes
it once per watch, each in a thread of its own: with a few hundred agents that is most of
the master's CPU. Like kube-apiserver's watch cache, a ``Feed`` holds one etcd stream for a
prefix, decodes each event once and hands the same WatchEvent objects to every subscriber
whose prefix contains the key. It keeps the last RING_EVENTS events, so a watch resuming from
a recent revision (a client reconnecting, a relist racing a write) joins the feed too.

What a subscriber sees is exactly what a stream of its own would deliver: every event after
its start revision under its prefix, in revision order, no gap and no duplicate; the same
errors (RevisionCompacted when the feed must resume past a compaction, StoreUnavailable when
etcd goes silent, StoreClosed on close), since they come from the one EtcdWatch underneath.
A subscriber whose start revision is older than what the feed holds gets a feed of its own
(etcd replays that history, or refuses it as compacted).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from sigma.store.contract import Route, StoreClosed, StoreError, Watch, WatchEvent
from sigma.store.routing import RoutedSubscribers

# Events a feed keeps for watches that start a little in the past. A pod goes through ~3
# events (created, bound, running): a few thousand pods' worth, a few MB.
RING_EVENTS = 8192
# A feed nobody listens to any more keeps its stream this long: a client that reconnects
# (an agent's watch after a network blip, the leader elector's next round) finds it there.
LINGER_S = 30.0


_RETIRED = StoreClosed("the shared etcd watch was retired")


class _Subscriber:
    __slots__ = ("after", "prefix", "watch")

    def __init__(self, watch: Watch, prefix: str, after: int) -> None:
        self.watch = watch
        self.prefix = prefix
        self.after = after  # events at or below this revision are not this watch's


class Feed(Watch):
    """The sink of one etcd stream (EtcdWatch pushes into it as into any Watch) and the
    source of its subscribers' watches."""

    def __init__(self, prefix: str, start: int, on_idle: Callable[[Feed], None], linger: float = LINGER_S) -> None:
        super().__init__(prefix)
        self._linger = linger
        self._lock = threading.Lock()
        # Indexed by route: an agent's watch of its node's pods gets only those (routing.py).
        self._subscribers: RoutedSubscribers[_Subscriber] = RoutedSubscribers()
        self._ring: deque[WatchEvent] = deque()
        # Every event under the prefix with a revision above this one is in the ring or
        # still to come from etcd.
        self._complete_after = start
        self._failed: StoreError | None = None
        self._on_idle = on_idle
        self._idle_timer: threading.Timer | None = None
        self.stopper: Callable[[], None] = lambda: None  # stops the etcd stream (set by the store)

    def subscribe(self, prefix: str, start: int, route: Route | None = None) -> Watch | None:
        """A Watch of events after ``start`` under ``prefix`` (which lies within the feed's),
        or None when the feed no longer holds everything after ``start`` or has ended."""
        watch = Watch(prefix, on_close=self._unsubscribe, route=route)
        with self._lock:
            if self._failed is not None or start < self._complete_after:
                return None
            backlog = [e for e in self._ring if e.revision > start and e.kv.key.startswith(prefix)]
            self._subscribers.add(watch, _Subscriber(watch, prefix, start))
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if backlog:
                watch._push(backlog)
        return watch

    def _unsubscribe(self, watch: Watch) -> None:
        with self._lock:
            self._subscribers.discard(watch)
            if len(self._subscribers) or self._failed is not None or self._idle_timer is not None:
                return
            if self._linger <= 0:
                self._failed = _RETIRED
            else:
                self._idle_timer = threading.Timer(self._linger, self._linger_over)
                self._idle_timer.daemon = True
                self._idle_timer.start()
                return
        self._on_idle(self)

    def _linger_over(self) -> None:
        with self._lock:
            if self._subscribers or self._failed is not None:
                return
            self._idle_timer = None
            # From now on subscribe() refuses this feed: it is about to stop.
            self._failed = _RETIRED
        self._on_idle(self)

    @property
    def ended(self) -> bool:
        """The feed failed or was retired: it takes no new subscribers."""
        return self._failed is not None

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    # -- the etcd stream's side (EtcdWatch calls these as on any Watch) -----------------
    def _push(self, events: list[WatchEvent]) -> None:
        with self._lock:
            if self._failed is not None:
                return
            self._ring.extend(events)
            while len(self._ring) > RING_EVENTS:
                self._complete_after = self._ring.popleft().revision
            batches: dict[_Subscriber, list[WatchEvent]] = {}
            whole = self.prefix
            for event in events:
                key, revision = event.kv.key, event.revision
                for sub in self._subscribers.for_event(event):
                    if revision > sub.after and (sub.prefix == whole or key.startswith(sub.prefix)):
                        batch = batches.get(sub)
                        if batch is None:
                            batches[sub] = [event]
                        else:
                            batch.append(event)
            for sub, batch in batches.items():
                sub.watch._push(batch)

    def _fail(self, error: StoreError) -> None:
        with self._lock:
            if self._failed is not None:
                return
            self._failed = error
            subscribers = self._subscribers.clear()
            self._ring.clear()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        for sub in subscribers:
            sub.watch._fail(error)
        self._on_idle(self)

    def end(self, error: StoreError) -> None:
        """Stop the etcd stream; every subscriber's watch ends with ``error``."""
        self._fail(error)
        self.stopper()
