"""The demo workloads `sigma up` starts: a small prod HTTP service and a batch job beside it."""

from __future__ import annotations

import sys
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource


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
                "command": [sys.executable, "-c",
                            "import hashlib,time\nh=b'sigma'\nwhile True:\n    h=hashlib.sha256(h).digest()"],
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            }],
        },
    }
    return [("deployments", web), ("pods", batch)]


def apply_demo(registry: Registry) -> None:
    for plural, obj in demo_objects():
        try:
            registry.create(resource(plural), obj["metadata"]["namespace"], obj)
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
