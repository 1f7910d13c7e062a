"""Deleting many pods at once: delete-collection and the cascade from a Deployment.

`sigma bench delete [--pods 30000] --json` writes ``--pods`` pods straight into a fresh
SQLite state (through the registry once for a template, then store writes: creating them
through the API would take longer than what is measured), starts a real `sigma master` on
it and times:

- ``collection_s``: ``DELETE /api/v1/namespaces/default/pods`` (what
  `kubectl delete pods --all` sends) until it answers, every pod gone;
- ``cascade_s``: the same number of pods owned by a Deployment, ``DELETE`` of the
  Deployment until no pod of it is left (the registry cascades in the request).

Meanwhile a client asks ``/readyz`` every 20 ms: ``readyz_p99_s`` and ``readyz_max_s`` over
both phases say whether the API kept answering. The pods are not bound to a node (a bound
pod's deletion waits for its agent) and name no scheduler that runs, so only the deletion
is measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from sigma.api import admission
from sigma.api.objects import owner_reference
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.bench.masterproc import MasterProcess
from sigma.bench.readyz_probe import ReadyzProbe
from sigma.master.controllers.rollout import HASH_LABEL, REVISION, TEMPLATE_HASH, template_hash
from sigma.store.sqlite import SqliteStore

console = Console(stderr=True)
NAMESPACE = "default"
READYZ_EVERY_S = 0.02


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench delete", description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=30000)
    p.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this many seconds")
    return p.parse_args(argv)


def _template() -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "bench-delete"}},
            "spec": {"schedulerName": "bench-nobody",
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def seed(db: Path, pods: int, owned: bool) -> None:
    """Write ``pods`` pods (owned by the Deployment ``bench`` when ``owned``) into the store."""
    store = SqliteStore(str(db))
    try:
        registry = Registry(store)
        admission.install(registry)
        admission.bootstrap(registry)
        pods_rt = resource("pods")
        template = _template()
        labels = dict(template["metadata"]["labels"])
        refs: list[dict[str, Any]] = []
        if owned:
            deploy = registry.create(resource("deployments"), NAMESPACE, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
                "spec": {"replicas": pods, "selector": {"matchLabels": labels}, "template": template}})
            # The hash of the template as stored (with its defaults): the controller then
            # finds every replica there and has nothing to do.
            current = template_hash(deploy["spec"]["template"])
            deploy = registry.patch(resource("deployments"), NAMESPACE, "bench", "merge", {"metadata": {
                "annotations": {REVISION: "1", TEMPLATE_HASH: current}}})
            labels[HASH_LABEL] = current
            refs = [owner_reference(deploy)]
        first = registry.create(pods_rt, NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bench-0", "labels": labels, **({"ownerReferences": refs} if refs else {})},
            "spec": template["spec"]})
        for i in range(1, pods):
            obj = json.loads(json.dumps(first))
            meta = obj["metadata"]
            meta["name"], meta["uid"] = f"bench-{i}", str(uuid.uuid4())
            meta.pop("resourceVersion", None)
            store.create(pods_rt.key(NAMESPACE, meta["name"]), json.dumps(obj, separators=(",", ":")).encode())
    finally:
        store.close()


def _count(http: httpx.Client, url: str) -> int:
    return len(http.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods").json()["items"])


def phase(workdir: Path, pods: int, owned: bool, timeout: float, probe_latencies: list[float]) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    seed(workdir / "state.db", pods, owned)
    console.print(f"[dim]{pods} pods written in {time.perf_counter() - started:.1f}s[/]")
    with MasterProcess(workdir) as master, httpx.Client(timeout=timeout) as http:
        before = _count(http, master.url)
        with ReadyzProbe(master.url, READYZ_EVERY_S) as probe:
            time.sleep(0.5)
            started = time.perf_counter()
            path = (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/bench" if owned
                    else f"/api/v1/namespaces/{NAMESPACE}/pods")
            answer = http.delete(f"{master.url}{path}", params={"propagationPolicy": "Background"})
            answered = time.perf_counter() - started
            time.sleep(0.3)
        probe_latencies.extend(probe.latencies)
        # Counted after the probe: a listing is work of its own for the API.
        deadline = time.monotonic() + timeout
        left = _count(http, master.url)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _count(http, master.url)
        elapsed = time.perf_counter() - started
        return {"pods_before": before, "pods_left": left, "status": answer.status_code,
                "answered_s": round(answered, 3), "done_s": round(elapsed, 3), "readyz_failures": probe.failures,
                "pods_per_s": round(pods / elapsed, 1) if elapsed else None}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sigma-bench-delete-") as tmp:
        console.print(f"delete-collection of {args.pods} pods")
        collection = phase(Path(tmp) / "collection", args.pods, False, args.timeout, latencies)
        console.print(f"cascade from a Deployment of {args.pods} pods")
        cascade = phase(Path(tmp) / "cascade", args.pods, True, args.timeout, latencies)
    p99, worst = _quantile(latencies, 0.99), max(latencies, default=None)
    return {"pods": args.pods, "collection_s": collection["done_s"], "cascade_s": cascade["done_s"],
            "readyz_p99_s": round(p99, 4) if p99 is not None else None,
            "readyz_max_s": round(worst, 4) if worst is not None else None,
            "readyz_samples": len(latencies), "collection": collection, "cascade": cascade}
