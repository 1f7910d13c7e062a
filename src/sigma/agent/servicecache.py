"""Services and EndpointSlices of the whole cluster, kept current by list + watch: one
cache that the service proxy and the cluster DNS both read (one watch each, not two).

Each resource has its own reflector (the loop of podwatch.py: list, watch from the list's
resourceVersion, relist after a 410 Gone or an error, a silent watch taken for a dead
connection). Readers ``subscribe()`` to get an Event set on every change; ``synced`` is set
once both resources have been listed, so a reader never acts on half a picture (a proxy
that saw the Services before their slices would reject every one of them for a moment).
A restarted agent lists everything again: nothing is kept on disk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.services")

WATCH_TIMEOUT_S = 60
IDLE_TIMEOUT_S = 15.0  # three of the master's bookmark intervals, as for the pod watch
MAX_BACKOFF_S = 10.0


def object_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Reflector:
    def __init__(self, client: ApiClient, resource: str, on_change: Callable[[], None],
                 idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.client, self.resource, self.on_change, self.idle_timeout = client, resource, on_change, idle_timeout
        self.synced = threading.Event()
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._rv = ""

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items.values())

    def run(self, stop: threading.Event) -> None:
        backoff, relist = 0.5, True
        while not stop.is_set():
            try:
                if relist:
                    self._list()
                    relist = False
                self._watch(stop)
                backoff = 0.5
                continue
            except ApiError as err:
                relist = relist or err.code == 410 or err.code >= 500
                if err.code == 410:
                    continue
                log.warning("%s watch failed: %s; retrying in %.1fs", self.resource, err, backoff)
            except (ConnectionError, OSError) as err:
                log.warning("cannot reach the master for %s: %s; retrying in %.1fs", self.resource, err, backoff)
            except Exception:
                log.exception("%s watch broke; retrying in %.1fs", self.resource, backoff)
                relist = True
            stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _list(self) -> None:
        listed = self.client.list(self.resource)
        with self._lock:
            self._items = {object_key(o): o for o in listed.get("items") or []}
            self._rv = (listed.get("metadata") or {}).get("resourceVersion", "")
        self.synced.set()
        self.on_change()

    def _watch(self, stop: threading.Event) -> None:
        events = self.client.watch(self.resource, resource_version=self._rv, timeout_seconds=WATCH_TIMEOUT_S,
                                   idle_timeout_seconds=self.idle_timeout)
        for event in events:
            if stop.is_set():
                return
            obj = event.object
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                with self._lock:
                    if event.type == "DELETED":
                        self._items.pop(object_key(obj), None)
                    else:
                        self._items[object_key(obj)] = obj
                    self._rv = rv or self._rv
                self.on_change()
            elif event.type == "BOOKMARK":
                self._rv = rv or self._rv


class ServiceCache:
    def __init__(self, client: ApiClient, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self._subscribers: list[threading.Event] = []
        self.services = Reflector(client, "services", self._changed, idle_timeout)
        self.slices = Reflector(client, "endpointslices", self._changed, idle_timeout)
        self.synced = threading.Event()

    def subscribe(self) -> threading.Event:
        """An Event set on every change (and once both lists are in); the reader clears it."""
        event = threading.Event()
        self._subscribers.append(event)
        if self.synced.is_set():
            event.set()
        return event

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.services.items(), self.slices.items()

    def _changed(self) -> None:
        if self.services.synced.is_set() and self.slices.synced.is_set():
            self.synced.set()
        else:
            return
        for event in list(self._subscribers):
            event.set()

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [threading.Thread(target=r.run, args=(stop,), name=f"agent-watch-{r.resource}", daemon=True)
                   for r in (self.services, self.slices)]
        for t in threads:
            t.start()
        return threads
