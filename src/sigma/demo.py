"""The demo workloads `sigma up` starts: a small prod HTTP service (Deployment demo-web), a
batch pod that hashes for ever (demo-batch), and a BatchJob DAG (demo-dag: 4 map instances,
then 1 reduce) that runs for about a minute, visible with `kubectl get batchjobs`."""

from __future__ import annotations

import sys
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource

# The batch demo: hash as fast as the batch tier lets it, and say how fast every 5 seconds.
# It runs as PID 1 of its own pid namespace, where a signal with no handler is ignored, so
# it must handle SIGTERM itself to stop at once rather than at the end of the grace period.
CRUNCH = """\
import hashlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
h, n, mark = b"sigma", 0, time.time()
while True:
    h = hashlib.sha256(h).digest()
    n += 1
    if n % 100000 == 0 and time.time() - mark >= 5:
        print(f"{n / (time.time() - mark):.0f} hashes/s", flush=True)
        n, mark = 0, time.time()
"""


# A map instance: hash for MAP_SECONDS of wall time (batch gets only what prod leaves, so the
# count says how much CPU that was), then succeed. The reduce runs once all four have.
MAP_SECONDS = 30
MAP = f"""\
import hashlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
h, n, end = b"sigma", 0, time.time() + {MAP_SECONDS}
while time.time() < end:
    for _ in range(1000):
        h = hashlib.sha256(h).digest()
    n += 1000
print(f"map: {{n}} hashes in {MAP_SECONDS}s", flush=True)
"""
REDUCE = "import time; print('reduce: the 4 map instances succeeded', flush=True); time.sleep(5); print('done')"


def demo_dag() -> dict[str, Any]:
    def task(name: str, instances: int, script: str, dependencies: list[str]) -> dict[str, Any]:
        return {"name": name, "instances": instances, "dependencies": dependencies, "template": {"spec": {
            "containers": [{"name": name, "command": [sys.executable, "-c", script],
                            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}}

    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob",
            "metadata": {"name": "demo-dag", "namespace": "default"},
            "spec": {"tasks": [task("map", 4, MAP, []), task("reduce", 1, REDUCE, ["map"])]}}


def demo_objects() -> list[tuple[str, dict[str, Any]]]:
    web = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo-web", "namespace": "default", "labels": {"app": "demo-web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo-web"}},
            "template": {
                "metadata": {"labels": {"app": "demo-web", "sigma.io/qos": "LS"}},
                "spec": {
                    "priorityClassName": "sigma-prod",
                    "containers": [{
                        "name": "web",
                        "command": [sys.executable, "-m", "sigma.demo_web"],
                        "env": [{"name": "PORT", "value": "0"}],
                        "resources": {"requests": {"cpu": "200m", "memory": "64Mi"},
                                      "limits": {"cpu": "1", "memory": "256Mi"}},
                    }],
                },
            },
        },
    }
    batch = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "demo-batch", "namespace": "default", "labels": {"app": "demo-batch",
                                                                             "sigma.io/qos": "BE"}},
        "spec": {
            "priorityClassName": "sigma-batch",
            "restartPolicy": "OnFailure",
            "containers": [{
                "name": "crunch",
                "command": [sys.executable, "-c", CRUNCH],
                # The limit keeps the demo polite on a shared machine; without it batch would
                # take every idle core (its cgroup parent runs SCHED_IDLE, so prod still wins).
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"},
                              "limits": {"cpu": "500m", "memory": "128Mi"}},
            }],
        },
    }
    return [("deployments", web), ("pods", batch), ("batchjobs", demo_dag())]


def apply_demo(registry: Registry) -> None:
    for plural, obj in demo_objects():
        try:
            registry.create(resource(plural), obj["metadata"]["namespace"], obj)
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
