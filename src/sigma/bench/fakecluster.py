"""A cluster without machines, for the API-level benchmarks (api, failover): fake Ready
nodes whose Leases are renewed as agents renew them (so the node lifecycle controller leaves
them Ready), small pods, and a watch that records when each pod is bound and to which node.

Every helper takes a list of master URLs and moves on to the next one when a master stops
answering, so the same code serves one SQLite master and several masters on etcd with one
of them being killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

NAMESPACE = "bench"
LEASE_RENEW_S = 5.0
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
MAX_PODS_PER_NODE = 110  # the kubelet's default, as each fake node's "pods" capacity


def rfc3339_micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(name: str) -> dict[str, Any]:
    amounts = {"cpu": "64", "memory": "256Gi", "pods": str(MAX_PODS_PER_NODE)}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": amounts, "allocatable": amounts,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": rfc3339_micro(time.time())}]}}


def pod_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def lease_spec(node: str) -> dict[str, Any]:
    return {"holderIdentity": node, "renewTime": rfc3339_micro(time.time()), "leaseDurationSeconds": 40}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def setup(urls: list[str], node_names: list[str], timeout: float = 30.0) -> None:
    """The bench namespace and the nodes, through whichever master answers."""
    deadline = time.monotonic() + timeout
    pending: list[tuple[str, dict[str, Any]]] = [("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})]
    pending += [("/api/v1/nodes", node_object(name)) for name in node_names]
    turn = 0
    with httpx.Client(timeout=10) as http:
        while pending:
            path, body = pending[0]
            try:
                r = http.post(urls[turn % len(urls)] + path, json=body)
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code in (201, 409):  # 409: an earlier try went through
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not create {path}: {r.text if r is not None else 'no master answered'}")
            turn += 1
            time.sleep(0.1)


class LeaseRenewer(threading.Thread):
    """What each node's agent does: create or renew its Lease in kube-node-lease, every
    LEASE_RENEW_S, through the first master that answers."""

    def __init__(self, urls: list[str], nodes: list[str]) -> None:
        super().__init__(name="lease-renewer", daemon=True)
        self.urls, self.nodes = urls, nodes
        self.stop = threading.Event()
        self._turn = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while True:
                for node in self.nodes:
                    self._renew(http, node)
                if self.stop.wait(LEASE_RENEW_S):
                    return

    def _renew(self, http: httpx.Client, node: str) -> None:
        for _ in range(len(self.urls)):
            base = self.urls[self._turn % len(self.urls)] + LEASES
            try:
                r = http.patch(f"{base}/{node}", json={"spec": lease_spec(node)},
                               headers={"Content-Type": "application/merge-patch+json"})
                if r.status_code == 404:
                    http.post(base, json={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                          "metadata": {"name": node}, "spec": lease_spec(node)})
                return
            except httpx.TransportError:
                self._turn += 1  # that master is gone: the next one


def pods_resource_version(urls: list[str]) -> str:
    for url in urls:
        try:
            r = httpx.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"}, timeout=30)
            return str(r.json()["metadata"]["resourceVersion"])
        except httpx.TransportError:
            continue
    raise RuntimeError("no master answered")


class BindWatcher(threading.Thread):
    """Streams pod events from ``version`` on and records, for each pod, when it was first
    seen bound, to which node, at which resourceVersion, and any later event that shows it
    on another node (a double binding). On a broken stream it resumes from the last
    resourceVersion seen (bookmarks included) on the next master: nothing is missed."""

    def __init__(self, urls: list[str], version: str, expected: int) -> None:
        super().__init__(name="bind-watcher", daemon=True)
        self.urls, self.version, self.expected = urls, version, expected
        self.bound_at: dict[str, float] = {}
        self.bound_node: dict[str, str] = {}
        self.bound_rv: dict[str, int] = {}
        self.rebound: dict[str, list[str]] = {}  # pod -> every node it was seen on, when more than one
        self.done = threading.Event()
        self.stop = threading.Event()
        self.error: str | None = None
        self.reconnects = 0
        self._lock = threading.Lock()

    def run(self) -> None:
        turn = 0
        failing_since: float | None = None
        try:
            while not self.stop.is_set() and len(self.bound_at) < self.expected:
                url = self.urls[turn % len(self.urls)]
                try:
                    self._stream(url)
                    failing_since = None
                except (httpx.HTTPError, ValueError) as err:
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > 60:
                        self.error = repr(err)
                        return
                    turn += 1
                    self.reconnects += 1
                    time.sleep(0.05)
        finally:
            self.done.set()

    def _stream(self, url: str) -> None:
        params = {"watch": "1", "resourceVersion": self.version, "allowWatchBookmarks": "true"}
        # Bookmarks come every 5 s on an idle stream: 15 s of silence is a dead master.
        timeout = httpx.Timeout(10, read=15)
        with httpx.Client(timeout=timeout) as http, \
                http.stream("GET", f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params=params) as r:
            if r.status_code != 200:
                raise ValueError(f"watch answered {r.status_code}: {r.read()[:200]!r}")
            # Bytes lines parsed by orjson: the watcher shares the machine's cores with the
            # masters, and httpx's text lines plus the json module cost it several times more.
            for line in _lines(r):
                if not line:
                    continue
                event = orjson.loads(line)
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                if event.get("type") == "ERROR":
                    raise ValueError(f"watch error: {obj.get('message')}")
                self.version = meta.get("resourceVersion", self.version)
                node = (obj.get("spec") or {}).get("nodeName")
                if node and event.get("type") != "BOOKMARK":
                    self._bound(meta["name"], node, int(meta["resourceVersion"]))
                if len(self.bound_at) >= self.expected or self.stop.is_set():
                    return

    def _bound(self, name: str, node: str, rv: int) -> None:
        with self._lock:
            first = self.bound_node.setdefault(name, node)
            if first == node:
                if name not in self.bound_at:
                    self.bound_at[name] = time.time()
                    self.bound_rv[name] = rv
                return
            seen = self.rebound.setdefault(name, [first])
            if node not in seen:
                seen.append(node)

    def first_bind_after(self, revision: int) -> float | None:
        """When the first pod bound at a resourceVersion above ``revision`` was seen."""
        with self._lock:
            times = [self.bound_at[name] for name, rv in self.bound_rv.items() if rv > revision]
        return min(times) if times else None


def _lines(response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    for chunk in response.iter_bytes():
        parts = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending
