"""The pods bound to this node, kept current by list + watch (a reflector, in Kubernetes terms).

List once, then watch from the list's resourceVersion. A watch that ends (timeout, the
master restarting) resumes from the last resourceVersion seen; only a 410 Gone (that
version was compacted) forces a new list, which replaces the cache wholesale so a pod
deleted while we were away disappears. Errors back off from 0.5 s to 10 s.

A dead connection (a cut cable, a master host that vanished) sends no FIN: TCP would keep
the watch waiting for minutes. The master sends a bookmark every 5 s on an idle watch, so a
watch silent for IDLE_TIMEOUT_S is closed and reopened from the last resourceVersion; if
that version was compacted meanwhile, the 410 makes it a relist.

`synced` matters: until the first list has succeeded the agent must not sync at all, or
it would take every running container for an orphan and stop it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.pods")

WATCH_TIMEOUT_S = 60  # the server ends each watch after this; a fresh one starts at once
# Three of the master's bookmark intervals (api/server.py BOOKMARK_INTERVAL_S = 5 s).
IDLE_TIMEOUT_S = 15.0
MAX_BACKOFF_S = 10.0


class PodWatcher:
    def __init__(self, client: ApiClient, node_name: str, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        self.client, self.node_name, self.idle_timeout = client, node_name, idle_timeout
        self.selector = f"spec.nodeName={node_name}"
        self.synced = threading.Event()
        self.changed = threading.Event()  # set on every change; the agent loop clears it
        self._pods: dict[str, dict[str, Any]] = {}  # uid -> pod
        self._lock = threading.Lock()
        self._rv = ""
        self.relists = 0  # lists after the first: each one followed a 410 Gone or an error

    # -- what the agent reads ------------------------------------------------------------
    def pods(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._pods.values())

    def find(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return next(
                (p for p in self._pods.values()
                 if p["metadata"].get("namespace") == namespace and p["metadata"].get("name") == name),
                None,
            )

    def remember(self, pod: dict[str, Any]) -> None:
        """Take a newer copy the agent got back from its own write (status, delete)."""
        uid = pod.get("metadata", {}).get("uid")
        with self._lock:
            old = self._pods.get(uid) if uid else None
            if old is not None and _rv(pod) >= _rv(old):
                self._pods[uid] = pod

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        relist = True
        while not stop.is_set():
            try:
                if relist:
                    self._list()
                    relist = False
                self._watch(stop)
                backoff = 0.5
            except ApiError as err:
                if err.code == 410:
                    log.info("pod watch of node %s: 410 Gone, resourceVersion %s was compacted; listing again",
                             self.node_name, self._rv)
                    relist = True
                    continue
                log.warning("pod watch for node %s failed: %s; retrying in %.1fs", self.node_name, err, backoff)
                relist = relist or err.code >= 500
            except (ConnectionError, OSError) as err:
                log.warning("cannot reach the master for pods of node %s: %s; retrying in %.1fs",
                            self.node_name, err, backoff)
            except Exception:
                log.exception("pod watch for node %s broke; retrying in %.1fs", self.node_name, backoff)
                relist = True
            stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _list(self) -> None:
        listed = self.client.list("pods", field_selector=self.selector)
        if self.synced.is_set():
            self.relists += 1
            log.info("pods of node %s listed again at resourceVersion %s (%d pods)", self.node_name,
                     listed.get("metadata", {}).get("resourceVersion", ""), len(listed.get("items") or []))
        with self._lock:
            self._pods = {p["metadata"]["uid"]: p for p in listed.get("items") or []}
            self._rv = listed.get("metadata", {}).get("resourceVersion", "")
        self.synced.set()
        self.changed.set()

    def _watch(self, stop: threading.Event) -> None:
        events = self.client.watch("pods", resource_version=self._rv, field_selector=self.selector,
                                   timeout_seconds=WATCH_TIMEOUT_S, idle_timeout_seconds=self.idle_timeout)
        for event in events:
            if stop.is_set():
                return
            obj = event.object
            rv = obj.get("metadata", {}).get("resourceVersion")
            if event.type == "BOOKMARK":
                self._rv = rv or self._rv
                continue
            uid = obj.get("metadata", {}).get("uid")
            with self._lock:
                if event.type == "DELETED":
                    self._pods.pop(uid, None)
                elif event.type in ("ADDED", "MODIFIED"):
                    self._pods[uid] = obj
                self._rv = rv or self._rv
            self.changed.set()


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
