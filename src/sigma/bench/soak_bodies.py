"""The hostile requests of `sigma bench soak`: each must be answered with a 4xx and store
nothing. They are the kinds of input that once hurt the cluster: integers beyond int32,
quantities beyond what Kubernetes represents, bodies that expand or nest without end,
unknown fields in Sigma's own kinds, oversized metadata, and pods a namespace's
pod-security level refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NS = "default"


@dataclass(frozen=True)
class BadRequest:
    name: str
    method: str
    path: str
    body: bytes
    content_type: str = "application/json"
    names: str = ""  # the refusal must name this (a field, a path): a 4xx for another reason proves nothing


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _pod(name: str, container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    main = {"name": "main", "command": ["true"], **(container or {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [main], **spec},
    }


def _memory(value: str) -> dict[str, Any]:
    return {"resources": {"requests": {"memory": value}}}


def _deployment(replicas: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "soak-bad", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "soak-bad"}},
            "template": {
                "metadata": {"labels": {"app": "soak-bad"}},
                "spec": {"containers": [{"name": "main", "command": ["true"]}]},
            },
        },
    }


def _batch_job(task_extra: dict[str, Any], container_extra: dict[str, Any]) -> dict[str, Any]:
    task = {
        "name": "map",
        "instances": 1,
        "dependencies": [],
        **task_extra,
        "template": {"spec": {"containers": [{"name": "main", "command": ["true"], **container_extra}]}},
    }
    return {
        "apiVersion": "sigma.io/v1",
        "kind": "BatchJob",
        "metadata": {"name": "soak-bad", "namespace": NS},
        "spec": {"tasks": [task]},
    }


# Nine levels of nine aliases: a few hundred bytes that a naive loader expands to 9^9 nodes.
ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    + ["kind: Pod", "apiVersion: v1", "metadata: {name: soak-bomb}", "spec: {containers: [{name: m, image: x}]}"]
).encode()

PODS = f"/api/v1/namespaces/{NS}/pods"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
BATCHJOBS = f"/apis/sigma.io/v1/namespaces/{NS}/batchjobs"
PREDICTIVE = f"/apis/sigma.io/v1/namespaces/{NS}/predictivescalers"

MERGE = "application/merge-patch+json"
# The soak's own Deployment (soak.DEPLOYMENT): the scale subresource and a patch must bound
# replicas as a create does.
SOAK_WEB = f"{DEPLOYMENTS}/soak-web"

BAD_REQUESTS: list[BadRequest] = [
    BadRequest("scale-beyond-int32", "PATCH", f"{SOAK_WEB}/scale", b'{"spec":{"replicas":3000000000}}', MERGE,
               names="replicas"),
    BadRequest("patch-replicas-beyond-int32", "PATCH", SOAK_WEB, b'{"spec":{"replicas":3000000000}}', MERGE,
               names="spec.replicas"),
    BadRequest("patch-replicas-not-a-number", "PATCH", SOAK_WEB, b'{"spec":{"replicas":"many"}}', MERGE,
               names="spec.replicas"),
    BadRequest("replicas-beyond-int32", "POST", DEPLOYMENTS, _json(_deployment(3_000_000_000)), names="spec.replicas"),
    BadRequest("replicas-negative", "POST", DEPLOYMENTS, _json(_deployment(-1)), names="spec.replicas"),
    BadRequest("memory-100Ei", "POST", PODS, _json(_pod("soak-bad", _memory("100Ei"))), names="memory"),
    BadRequest(
        "memory-huge", "POST", PODS, _json(_pod("soak-bad", _memory("99999999999999999999999Ei"))), names="memory"
    ),
    BadRequest(
        "quantity-exponent-overflow", "POST", PODS, _json(_pod("soak-bad", _memory("1e999999999"))), names="memory"
    ),
    BadRequest("quantity-1e400", "POST", PODS, _json(_pod("soak-bad", _memory("1e400"))), names="memory"),
    BadRequest(
        "container-port-out-of-range",
        "POST",
        PODS,
        _json(_pod("soak-bad", {"ports": [{"containerPort": 70000}]})),
        names="containerPort",
    ),
    BadRequest(
        "grace-period-negative",
        "POST",
        PODS,
        _json(_pod("soak-bad", terminationGracePeriodSeconds=-5)),
        names="terminationGracePeriodSeconds",
    ),
    BadRequest("name-too-long", "POST", PODS, _json(_pod("x" * 254)), names="metadata.name"),
    BadRequest(
        "label-value-too-long",
        "POST",
        PODS,
        _json({**_pod("soak-bad"), "metadata": {"name": "soak-bad", "labels": {"a": "v" * 64}}}),
        names="metadata.labels",
    ),
    BadRequest(
        "annotations-300KiB",
        "POST",
        PODS,
        _json({**_pod("soak-bad"), "metadata": {"name": "soak-bad", "annotations": {"a": "v" * 300_000}}}),
        names="metadata.annotations",
    ),
    BadRequest(
        "privileged-in-baseline",
        "POST",
        PODS,
        _json(_pod("soak-bad", {"securityContext": {"privileged": True}})),
        names="privileged",
    ),
    BadRequest(
        "host-network-in-baseline", "POST", PODS, _json(_pod("soak-bad", hostNetwork=True)), names="hostNetwork"
    ),
    BadRequest(
        "batchjob-unknown-field", "POST", BATCHJOBS, _json(_batch_job({"maxInflight": 3}, {})), names="maxInflight"
    ),
    BadRequest(
        "batchjob-template-unknown-field",
        "POST",
        BATCHJOBS,
        _json(_batch_job({}, {"imagePullPolcy": "Always"})),
        names="imagePullPolcy",
    ),
    BadRequest(
        "predictivescaler-unknown-field",
        "POST",
        PREDICTIVE,
        _json(
            {
                "apiVersion": "sigma.io/v1",
                "kind": "PredictiveScaler",
                "metadata": {"name": "soak-bad", "namespace": NS},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                    "minReplicas": 1,
                    "maxReplicas": 2,
                    "targetPerReplica": 1,
                    "maxReplica": 3,
                },
            }
        ),
        names="maxReplica",
    ),
    BadRequest("yaml-alias-bomb", "POST", PODS, ALIAS_BOMB, "application/yaml"),
    BadRequest("yaml-nested-5000", "POST", PODS, b"[" * 5000 + b"]" * 5000, "application/yaml"),
    BadRequest("json-nested-100000", "POST", PODS, b"[" * 100_000 + b"]" * 100_000),
    BadRequest("json-not-an-object", "POST", PODS, b"[1, 2, 3]"),
    BadRequest("json-truncated", "POST", PODS, b'{"apiVersion": "v1", "kind": "Pod", "metadata": {'),
    BadRequest("invalid-utf8", "POST", PODS, b'{"kind": "Pod", "metadata": {"name": "\xff\xfe"}}'),
]
