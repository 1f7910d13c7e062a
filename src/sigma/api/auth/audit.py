"""The audit log: one JSON line per mutating request (who, what, when, with what result).

Requests refused before they reach the API (401, 403, 429) are logged too: an attempt to
write is what an audit is for. Lines are appended and flushed one by one, so a crash loses
at most the line being written.
"""

from __future__ import annotations

import datetime
import json
import threading
from pathlib import Path
from typing import TextIO

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import User


class AuditLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held for the process)
        self._lock = threading.Lock()

    def record(self, user: User, a: Attributes, code: int, source: str, uri: str) -> None:
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "user": user.name, "groups": list(user.groups), "verb": a.verb,
            "apiGroup": a.group, "resource": a.resource, "subresource": a.subresource,
            "namespace": a.namespace or "", "name": a.name or "", "code": code,
            "sourceIP": source, "requestURI": uri,
        }
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()
