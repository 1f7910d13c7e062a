"""Recording Events (core/v1) about objects, as Kubernetes components do.

Repeats of the same (object, reason, message) within a series bump ``count`` and
``lastTimestamp`` on one Event instead of writing a new one each time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.events")


def record_event(client: ApiClient, obj: dict[str, Any], event_type: str, reason: str, message: str,
                 component: str, now: float | None = None) -> None:
    """Best effort: an Event that cannot be written is logged, never raised."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    digest = hashlib.sha1(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:10]
    name = f"{meta.get('name', 'object')}.{digest}"[:253]
    stamp = now_rfc3339(time.time() if now is None else now)
    try:
        existing = client.get("events", name, namespace)
    except ApiError as err:
        if err.code != 404:
            log.warning("event %s/%s: %s", namespace, name, err)
            return
        existing = None
    try:
        if existing is not None:
            client.patch("events", name, {"count": int(existing.get("count", 1)) + 1, "lastTimestamp": stamp},
                         namespace)
            return
        client.create("events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                               "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                               "uid": meta.get("uid", "")},
            "reason": reason, "message": message, "type": event_type, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": component}, "reportingComponent": component,
        }, namespace)
    except ApiError as err:
        log.warning("could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), err)
