"""What a pod's volumes and env read, fetched once per sync: ConfigMaps and Secrets by name
(None when absent), the pod's ServiceAccount token, and the node facts the downward API
shows. Pure data, so plan.py and env.py are table-tested without a master."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sources:
    config_maps: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    token: str | None = None  # the projected ServiceAccount token, None until requested
    pod_ip: str = ""
    host_ip: str = ""
    node_cpu_millis: int = 0  # allocatable: what resourceFieldRef shows for an unset limit
    node_memory_bytes: int = 0


def config_map_data(cm: dict[str, Any]) -> dict[str, bytes]:
    """data (text) and binaryData (base64) of a ConfigMap, as bytes by key."""
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for key, value in (cm.get("binaryData") or {}).items():
        out[key] = _b64(value)
    return out


def secret_data(secret: dict[str, Any]) -> dict[str, bytes]:
    """data (base64) and stringData (text: the API folds it into data, but be lenient)."""
    out = {k: _b64(v) for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError):
        return b""
