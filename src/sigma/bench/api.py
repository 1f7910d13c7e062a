"""API benchmark: `sigma bench api [--pods 5000 --nodes 100 --procs 4 --threads 4]`.

Starts a real `sigma master` (SQLite in a temporary directory, a free loopback port),
registers fake Ready nodes (and keeps their Leases renewed, as agents do, so the node
lifecycle controller leaves them Ready), then creates pods over HTTP from several client
processes (threads inside each, one keep-alive httpx client per thread) while a watch on
the pods records when each one is bound by sigma-scheduler.

- create_to_bound_per_s: pods / (first create sent -> last binding seen on the watch);
- api_p50_s / api_p99_s: latency of the create calls as the clients saw them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from sigma.bench.masterproc import BenchMaster

NAMESPACE = "bench"
LEASE_RENEW_S = 5.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench api", description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--procs", type=int, default=4, help="client processes")
    p.add_argument("--threads", type=int, default=4, help="client threads per process")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting for bindings after this")
    return p.parse_args(argv)


def rfc3339_micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(name: str) -> dict[str, Any]:
    amounts = {"cpu": "64", "memory": "256Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": amounts, "allocatable": amounts,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": rfc3339_micro(time.time())}]}}


def pod_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def renew_leases(url: str, nodes: list[str], stop: threading.Event) -> None:
    """What each node's agent does: create or renew its Lease in kube-node-lease."""
    base = f"{url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    with httpx.Client(timeout=10) as http:
        while True:
            now = rfc3339_micro(time.time())
            for node in nodes:
                spec = {"holderIdentity": node, "renewTime": now, "leaseDurationSeconds": 40}
                r = http.patch(f"{base}/{node}", json={"spec": spec},
                               headers={"Content-Type": "application/merge-patch+json"})
                if r.status_code == 404:
                    http.post(base, json={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                          "metadata": {"name": node}, "spec": spec})
            if stop.wait(LEASE_RENEW_S):
                return


def setup(url: str, node_names: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).raise_for_status()
        for name in node_names:
            http.post("/api/v1/nodes", json=node_object(name)).raise_for_status()


class BindWatcher(threading.Thread):
    """Streams pod events from `version` on and records when each pod is first seen bound."""

    def __init__(self, url: str, version: str, expected: int) -> None:
        super().__init__(name="bind-watcher", daemon=True)
        self.url, self.version, self.expected = url, version, expected
        self.bound_at: dict[str, float] = {}
        self.done = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        params = {"watch": "1", "resourceVersion": self.version, "allowWatchBookmarks": "true"}
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=None)) as http, \
                    http.stream("GET", f"{self.url}/api/v1/namespaces/{NAMESPACE}/pods", params=params) as r:
                for line in r.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if (obj.get("spec") or {}).get("nodeName"):
                        self.bound_at.setdefault(obj["metadata"]["name"], time.time())
                        if len(self.bound_at) >= self.expected:
                            break
        except Exception as err:  # reported in the result, never hidden
            self.error = repr(err)
        finally:
            self.done.set()


def client_process(url: str, names: list[str], threads: int, start_at: float,
                   results: multiprocessing.Queue[tuple[float, list[float], int]]) -> None:
    """One client process: `threads` keep-alive clients share `names`; reports
    (first send time, latencies, errors)."""
    latencies: list[float] = []
    first: list[float] = []
    errors = [0]
    lock = threading.Lock()
    chunks = [names[i::threads] for i in range(threads)]

    def work(chunk: list[str]) -> None:
        mine: list[float] = []
        failed = 0
        # The stdlib's HTTP client, keep-alive, bodies encoded up front: the load generator
        # shares the machine's cores with the master, so it must cost as little as it can.
        parsed = urlsplit(url)
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        headers = {"Content-Type": "application/json"}
        bodies = [orjson.dumps(pod_object(name)) for name in chunk]
        try:
            time.sleep(max(0.0, start_at - time.time()))
            first_send = time.time()
            for body in bodies:
                t = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - t)
                failed += response.status != 201
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)
            first.append(first_send)
            errors[0] += failed

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks if c]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((min(first), latencies, errors[0]))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    node_names = [f"bench-node-{i:04d}" for i in range(args.nodes)]
    pod_names = [f"pod-{i:06d}" for i in range(args.pods)]
    with tempfile.TemporaryDirectory(prefix="sigma-bench-api-") as tmp, BenchMaster(Path(tmp)) as master:
        setup(master.url, node_names)
        stop = threading.Event()
        leases = threading.Thread(target=renew_leases, args=(master.url, node_names, stop), daemon=True)
        leases.start()
        version = httpx.get(f"{master.url}/api/v1/namespaces/{NAMESPACE}/pods").json()["metadata"]["resourceVersion"]
        watcher = BindWatcher(master.url, version, args.pods)
        watcher.start()

        ctx = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[tuple[float, list[float], int]] = ctx.Queue()
        start_at = time.time() + 2.0 + 0.2 * args.procs  # every process is up and connected by then
        procs = [ctx.Process(target=client_process, args=(master.url, pod_names[i::args.procs], args.threads,
                                                          start_at, results)) for i in range(args.procs)]
        for p in procs:
            p.start()
        print(f"creating {args.pods} pods from {args.procs}x{args.threads} clients on {args.nodes} nodes",
              file=sys.stderr)
        reports = [results.get(timeout=args.timeout) for _ in procs]
        for p in procs:
            p.join()
        created_by = time.time()
        watcher.done.wait(args.timeout)
        stop.set()

    first_send = min(r[0] for r in reports)
    latencies = [x for r in reports for x in r[1]]
    last_bound = max(watcher.bound_at.values(), default=created_by)
    result: dict[str, Any] = {
        "bench": "api", "pods": args.pods,
        "create_to_bound_per_s": round(len(watcher.bound_at) / max(last_bound - first_send, 1e-9), 1),
        "api_p99_s": round(quantile(latencies, 0.99), 4), "api_p50_s": round(quantile(latencies, 0.50), 4),
        "creates_per_s": round(len(latencies) / max(created_by - first_send, 1e-9), 1),
        "bound": len(watcher.bound_at), "create_errors": sum(r[2] for r in reports),
        "nodes": args.nodes, "clients": args.procs * args.threads,
    }
    if watcher.error:
        result["watch_error"] = watcher.error
    return result
