"""Recording Events (core/v1) about objects, as Kubernetes components do.

Repeats of the same (object, reason, message) bump ``count`` and ``lastTimestamp`` (and
``series``) on one Event instead of writing a new one each time, as client-go's event
recorder aggregates: its name is derived from the object's uid, the reason and the message.
The recorder remembers the count of the Events it wrote (a bounded cache, like client-go's
LRU), so a repeat is one PATCH, with no read first: a node's agent may create and patch
Events but not read them. An Event this process has not written yet is created; if it
exists already (another process, or a restart), it is read where allowed and patched.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.events")

CACHE_SIZE = 4096  # Events whose count this process remembers

_counts: OrderedDict[tuple[str, str], int] = OrderedDict()
_lock = threading.Lock()


def event_name(obj: dict[str, Any], reason: str, message: str) -> str:
    meta = obj.get("metadata") or {}
    digest = hashlib.sha1(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:10]
    return f"{meta.get('name', 'object')}.{digest}"[:253]


def _remember(key: tuple[str, str], count: int) -> None:
    with _lock:
        _counts[key] = count
        _counts.move_to_end(key)
        while len(_counts) > CACHE_SIZE:
            _counts.popitem(last=False)


def _cached(key: tuple[str, str]) -> int | None:
    with _lock:
        return _counts.get(key)


def _micro(stamp: str) -> str:
    """metav1.MicroTime (what series.lastObservedTime is): RFC 3339 with microseconds."""
    return stamp[:-1] + ".000000Z" if stamp.endswith("Z") and "." not in stamp else stamp


def _bump(client: ApiClient, key: tuple[str, str], count: int, stamp: str) -> None:
    namespace, name = key
    client.patch("events", name, {"count": count, "lastTimestamp": stamp,
                                  "series": {"count": count, "lastObservedTime": _micro(stamp)}}, namespace)
    _remember(key, count)


def record_event(client: ApiClient, obj: dict[str, Any], event_type: str, reason: str, message: str,
                 component: str, now: float | None = None) -> None:
    """Best effort: an Event that cannot be written is logged, never raised."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    name = event_name(obj, reason, message)
    key = (str(namespace), name)
    stamp = now_rfc3339(time.time() if now is None else now)
    try:
        count = _cached(key)
        if count is not None:
            try:
                _bump(client, key, count + 1, stamp)
                return
            except ApiError as err:
                if err.code != 404:
                    raise
                # Expired or deleted meanwhile: start a new one.
        try:
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
            _remember(key, 1)
        except ApiError as err:
            if err.code != 409:
                raise
            _bump(client, key, _stored_count(client, key) + 1, stamp)
    except ApiError as err:
        log.warning("could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), err)
    except ConnectionError as err:
        log.warning("could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), err)


def _stored_count(client: ApiClient, key: tuple[str, str]) -> int:
    """The count of an Event another process (or an earlier run) wrote; 1 where it cannot
    be read (an agent may not read Events)."""
    try:
        return int(client.get("events", key[1], key[0]).get("count") or 1)
    except (ApiError, TypeError, ValueError):
        return 1
