"""Recording Events (core/v1) about objects, as Kubernetes components do.

Repeats of the same (object, reason, message) bump ``count`` and ``lastTimestamp`` (and
``series``) on one Event instead of writing a new one each time, as client-go's event
recorder aggregates: its name is derived from the object's uid, the reason and the message.
Past SIMILAR_LIMIT different messages with one reason on one object (a Deployment's
"Created pod: ..." for each of thousands of pods), the rest are counted on one Event whose
message begins "(combined from similar events)", as client-go's EventAggregator does.
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
# client-go's EventAggregator: more than this many different messages with the same
# reason on one object within the window become one Event, "(combined from similar events)".
SIMILAR_LIMIT = 10
SIMILAR_WINDOW_S = 600.0
COMBINED = "(combined from similar events): "

_counts: OrderedDict[tuple[str, str], int] = OrderedDict()
_similar: OrderedDict[tuple[str, str, str], tuple[float, set[str]]] = OrderedDict()
_lock = threading.Lock()


def _aggregate(obj: dict[str, Any], event_type: str, reason: str, message: str, now: float) -> bool:
    """Whether this message is one too many of its kind (reason, object) in the window:
    a deployment creating thousands of pods writes one SuccessfulCreate that counts them."""
    meta = obj.get("metadata") or {}
    key = (str(meta.get("uid") or meta.get("name")), event_type, reason)
    with _lock:
        since, seen = _similar.get(key, (now, set()))
        if now - since > SIMILAR_WINDOW_S:
            since, seen = now, set()
        _similar[key] = (since, seen)
        _similar.move_to_end(key)
        while len(_similar) > CACHE_SIZE:
            _similar.popitem(last=False)
        if message in seen:
            return False
        if len(seen) >= SIMILAR_LIMIT:
            return True
        seen.add(message)
        return False


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
    when = time.time() if now is None else now
    if _aggregate(obj, event_type, reason, message, when):
        name = event_name(obj, reason, COMBINED)
        message = COMBINED + message
    else:
        name = event_name(obj, reason, message)
    key = (str(namespace), name)
    stamp = now_rfc3339(when)
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
