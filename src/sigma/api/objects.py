"""Small helpers over objects in their Kubernetes JSON shape (plain dicts)."""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any

import orjson


def now_rfc3339(seconds: float) -> str:
    return _rfc3339_second(math.floor(seconds))


@functools.lru_cache(maxsize=8)
def _rfc3339_second(second: int) -> str:
    # Memoised: every create and binding stamps the current second, many times a second.
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    text = text.replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def decode(data: bytes) -> dict[str, Any]:
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ValueError("stored value is not an object")
    return value


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [ref.get("uid", "") for ref in meta(obj).get("ownerReferences") or []]


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    m = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"], "uid": m["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> bool:
    """Insert or replace a condition by type; True when something changed. The transition
    time moves only when the status value changes, as Kubernetes does."""
    conds = status.setdefault("conditions", [])
    for i, old in enumerate(conds):
        if old.get("type") == cond["type"]:
            if old.get("status") == cond.get("status") and "lastTransitionTime" in old:
                cond = {**cond, "lastTransitionTime": old["lastTransitionTime"]}
            if old == cond:
                return False
            conds[i] = cond
            return True
    conds.append(cond)
    return True


def is_pod_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_ready(pod: dict[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars), several times faster than
    copy.deepcopy, which the write path would otherwise pay on every request."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value
