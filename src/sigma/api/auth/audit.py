"""The audit log: one JSON line per mutating request (who, what, when, with what result).

Requests refused before they reach the API (401, 403, 429) are logged too: an attempt to
write is what an audit is for. Lines are gathered in memory and appended by a writer thread
every FLUSH_INTERVAL_S, one write(2) for all of them: a write per request would be a
system call (and a hand-over of the GIL) on the API's event loop for every mutation. A
crash loses at most the lines of the last interval.

The log lives in the state directory, which can fill up or turn read-only. Then lines are
dropped (logged once per outage, with a count when writing works again) rather than failing
the request: the audit runs after the response has been sent, so raising there would only
reset the client's connection.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
from pathlib import Path

import orjson

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import User

log = logging.getLogger("sigma.api.audit")


FLUSH_INTERVAL_S = 0.05


class AuditLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._dropped = 0  # lines lost in the current outage (disk full, read-only)
        self._torn = False  # a short write left half a line: start the next one on a new line
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()

    def record(self, user: User, a: Attributes, code: int, source: str, uri: str) -> None:
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "user": user.name, "groups": list(user.groups), "verb": a.verb,
            "apiGroup": a.group, "resource": a.resource, "subresource": a.subresource,
            "namespace": a.namespace or "", "name": a.name or "", "code": code,
            "sourceIP": source, "requestURI": uri,
        }
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            self._pending.append(line)

    def flush(self) -> None:
        """Append every line recorded so far."""
        with self._lock:
            lines, self._pending = self._pending, []
            if not lines or self._fd < 0:
                return
            data = (b"\n" if self._torn else b"") + b"".join(lines)
            try:
                written = os.write(self._fd, data)
            except OSError as err:
                self._drop(err, len(lines))
                return
            if written < len(data):
                self._torn = True
                self._drop(OSError(f"short write ({written} of {len(data)} bytes)"), len(lines))
                return
            self._torn = False
            if self._dropped:
                log.warning("audit log %s is writable again; %d lines were dropped", self.path, self._dropped)
                self._dropped = 0

    def _write_loop(self) -> None:
        while not self._closed.wait(FLUSH_INTERVAL_S):
            self.flush()

    def _drop(self, err: OSError, lines: int) -> None:
        if not self._dropped:
            log.error("cannot write the audit log %s (%s): dropping audit lines until it can", self.path, err)
        self._dropped += lines

    def close(self) -> None:
        self._closed.set()
        self._writer.join(timeout=5)
        self.flush()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
