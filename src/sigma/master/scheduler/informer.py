"""Reflectors: list once, then watch from the list's resourceVersion, into one queue.

One thread per resource turns the API's list + watch into a stream of `Delta`s on a shared
queue, so a consumer (a scheduler loop) wakes on any change of any resource and drains
everything pending in one go. A watch that ends is resumed from the last resourceVersion
seen; only 410 Gone (the revision was compacted) costs a full relist, delivered as one
SYNC delta carrying every object, which the consumer reconciles against its cache.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

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


class Reflector:
    """Keeps `out` fed with the changes of one resource (all namespaces) until stopped."""

    def __init__(self, client: ApiClient, resource: str, out: queue.Queue[Delta], field_selector: str = "") -> None:
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
