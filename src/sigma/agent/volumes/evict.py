"""kubelet's eviction of a pod whose disk emptyDir outgrew its sizeLimit: its containers are
stopped, the pod is marked Failed with reason Evicted and kubelet's message, and a Warning
Event Evicted says why. The pod is not deleted: as kubelet leaves it, its owner replaces it."""

from __future__ import annotations

import logging
from typing import Any

from sigma.agent import podspec
from sigma.agent.node import NodeRuntime
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event

log = logging.getLogger("sigma.agent.volumes")
COMPONENT = "kubelet"


def evict_pod(client: ApiClient, node: NodeRuntime, pod: dict[str, Any], message: str) -> None:
    meta, uid = pod.get("metadata") or {}, podspec.uid(pod)
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    log.warning("evicting pod %s/%s: %s", namespace, name, message)
    for container in node.observed():
        if container.pod_uid == uid:
            node.runtimes[container.runtime].stop(container.id, podspec.grace_seconds(pod))
    try:
        client.patch("pods", name, {"status": {"phase": "Failed", "reason": "Evicted", "message": message}},
                     namespace, subresource="status")
    except (ApiError, ConnectionError) as err:
        log.warning("could not mark pod %s/%s evicted: %s", namespace, name, err)
    record_event(client, {**pod, "kind": "Pod", "apiVersion": "v1"}, "Warning", "Evicted", message, COMPONENT)
