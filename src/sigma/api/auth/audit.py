"""The audit log: one JSON line per mutating request (who, what, when, with what result).

Requests refused before they reach the API (401, 403, 429) are logged too: an attempt to
write is what an audit is for. Each line is appended with one write(2), so a crash loses
at most the line being written.

The log lives in the state directory, which can fill up or turn read-only. Then lines are
dropped (logged once per outage, with a count when writing works again) rather than failing
the request: the audit runs after the response has been sent, so raising there would only
reset the client's connection.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
from pathlib import Path

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import User

log = logging.getLogger("sigma.api.audit")


class AuditLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._dropped = 0  # lines lost in the current outage (disk full, read-only)
        self._torn = False  # a short write left half a line: start the next one on a new line

    def record(self, user: User, a: Attributes, code: int, source: str, uri: str) -> None:
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "user": user.name, "groups": list(user.groups), "verb": a.verb,
            "apiGroup": a.group, "resource": a.resource, "subresource": a.subresource,
            "namespace": a.namespace or "", "name": a.name or "", "code": code,
            "sourceIP": source, "requestURI": uri,
        }
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            data = b"\n" + line if self._torn else line
            try:
                written = os.write(self._fd, data)
            except OSError as err:
                self._drop(err)
                return
            if written < len(data):
                self._torn = True
                self._drop(OSError(f"short write ({written} of {len(data)} bytes)"))
                return
            self._torn = False
            if self._dropped:
                log.warning("audit log %s is writable again; %d lines were dropped", self.path, self._dropped)
                self._dropped = 0

    def _drop(self, err: OSError) -> None:
        if not self._dropped:
            log.error("cannot write the audit log %s (%s): dropping audit lines until it can", self.path, err)
        self._dropped += 1

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
