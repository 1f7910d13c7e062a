"""The loop shared by the controllers that reconcile one object at a time (Deployment,
BatchJob), as client-go's workqueue-driven controllers do.

Watches feed object keys into a WorkQueue (each key at most once, optionally after a
delay); a periodic resync lists the primary resource so that a restart, or an event missed
while a watch was being re-established, is caught up. ``sync(namespace, name)`` returns when
to look at the object again (None: only on its next event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.master.guard import report_failure

log = logging.getLogger("sigma.controllers")

Key = tuple[str, str]  # (namespace, name)
ToKey = Callable[[dict[str, Any]], Key | None]


class WorkQueue:
    """Keys to reconcile, each at most once in the queue, optionally after a delay."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._due: dict[Key, float] = {}

    def add(self, key: Key, delay: float = 0.0) -> None:
        due = time.monotonic() + delay
        with self._cv:
            if due < self._due.get(key, float("inf")):
                self._due[key] = due
                self._cv.notify()

    def get(self, timeout: float) -> Key | None:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                now = time.monotonic()
                key = min(self._due, key=self._due.__getitem__, default=None)
                if key is not None and self._due[key] <= now:
                    del self._due[key]
                    return key
                wake = min(deadline, self._due[key]) if key is not None else deadline
                if wake <= now:
                    return None
                self._cv.wait(wake - now)


class KeyedController:
    """Subclasses set ``name``, ``primary`` (the resource whose objects are reconciled),
    ``watches`` ((resource, to_key, label selector) triples) and implement ``sync``."""

    name = "keyed"
    component = "controller"  # the Events' source
    failure_reason = "FailedSync"  # the reason of the Event a failed sync leaves on its object
    primary = ""
    watches: tuple[tuple[str, ToKey, str], ...] = ()

    def __init__(self, client: ApiClient, resync_s: float) -> None:
        self.client = client
        self.resync_s = resync_s
        self.queue = WorkQueue()

    def sync(self, namespace: str, name: str) -> float | None:
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        # The pumps stop with the master, or with this run if it raises (the master then
        # restarts run(), which must not leave a second set of pumps behind).
        done = threading.Event()
        pumps = [threading.Thread(target=self._pump, args=(res, to_key, selector, stop, done), daemon=True,
                                  name=f"{self.name}-watch-{res}")
                 for res, to_key, selector in self.watches]
        for pump in pumps:
            pump.start()
        next_resync = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_resync:
                    # The resync is the restart path too: every object is looked at again.
                    for obj in self.client.list(self.primary)["items"]:
                        self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
                    next_resync = time.monotonic() + self.resync_s
                key = self.queue.get(timeout=0.5)
                if key is not None:
                    self._process(key)
        finally:
            done.set()
            for pump in pumps:
                pump.join(timeout=3)

    def _process(self, key: Key) -> None:
        try:
            delay = self.sync(*key)
        except ApiError as err:
            # A conflict means someone wrote in between: read again soon. A write refused as
            # invalid is this object's failure: it is said on the object.
            delay = 0.2 if err.reason == "Conflict" else 2.0
            log.log(logging.DEBUG if err.reason == "Conflict" else logging.WARNING, "%s sync %s/%s: %s",
                    self.name, *key, err)
            if err.code in (400, 422):
                self._report(key, err)
        except Exception as err:
            # This object's failure is reported on it; the queue goes on with the others.
            self._report(key, err)
            delay = 5.0
        if delay is not None:
            self.queue.add(key, delay)

    def _report(self, key: Key, err: Exception) -> None:
        try:
            obj = self.client.get(self.primary, key[1], key[0])
        except ApiError:
            log.exception("%s sync %s/%s failed", self.name, *key)
            return
        report_failure(self.client, obj, self.component, self.failure_reason, err, "sync")

    def _pump(self, resource: str, to_key: ToKey, label_selector: str, stop: threading.Event,
              done: threading.Event) -> None:
        """Feed the queue from a watch; relist when the watch's revision was compacted."""
        while not (stop.is_set() or done.is_set()):
            try:
                # Narrowed by label, the events of unrelated objects are not even decoded.
                rv = self.client.list(resource, label_selector=label_selector)["metadata"]["resourceVersion"]
                for ev in self.client.watch(resource, resource_version=rv, label_selector=label_selector):
                    if stop.is_set() or done.is_set():
                        return
                    key = to_key(ev.object) if ev.type != "BOOKMARK" else None
                    if key is not None:
                        self.queue.add(key)
            except ApiError as err:
                if err.code != 410:
                    log.warning("%s watch %s: %s", self.name, resource, err)
                    stop.wait(1.0)
            except Exception:
                log.exception("%s watch %s failed", self.name, resource)
                stop.wait(1.0)
