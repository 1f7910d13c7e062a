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

What a client sends is bounded before it is written: a line holds at most MAX_LINE_BYTES
(the request URI is cut at MAX_URI_CHARS, names and groups at MAX_FIELD_CHARS and
MAX_GROUPS, each cut marked), so a flood of requests with 60 KB URIs costs a few KiB a line.
The log rotates at max_bytes (audit.log -> audit.log.1 ... audit.log.N, the oldest dropped),
as kube-apiserver's --audit-log-maxsize and --audit-log-maxbackup do.
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
MAX_URI_CHARS = 2048
MAX_FIELD_CHARS = 253  # the longest Kubernetes object name
MAX_GROUPS = 8
MAX_LINE_BYTES = 4096
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_BACKUPS = 5


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more characters]"


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes, self.backups = max_bytes, backups
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._dropped = 0  # lines lost in the current outage (disk full, read-only)
        self._torn = False  # a short write left half a line: start the next one on a new line
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
        self._writer.start()

    def record(self, user: User, a: Attributes, code: int, source: str, uri: str,
               impersonated: User | None = None) -> None:
        groups = [_clip(g, MAX_FIELD_CHARS) for g in user.groups[:MAX_GROUPS]]
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "user": _clip(user.name, MAX_FIELD_CHARS), "groups": groups, "verb": a.verb,
            "apiGroup": _clip(a.group, MAX_FIELD_CHARS), "resource": _clip(a.resource, MAX_FIELD_CHARS),
            "subresource": _clip(a.subresource, MAX_FIELD_CHARS),
            "namespace": _clip(a.namespace or "", MAX_FIELD_CHARS), "name": _clip(a.name or "", MAX_FIELD_CHARS),
            "code": code, "sourceIP": _clip(source, MAX_FIELD_CHARS), "requestURI": _clip(uri, MAX_URI_CHARS),
        }
        if impersonated is not None:  # `user` impersonated this one (Impersonate-User)
            groups = [_clip(g, MAX_FIELD_CHARS) for g in impersonated.groups[:MAX_GROUPS]]
            entry["impersonatedUser"] = {"username": _clip(impersonated.name, MAX_FIELD_CHARS), "groups": groups}
        line = orjson.dumps(entry) + b"\n"
        if len(line) > MAX_LINE_BYTES:  # escaping can triple a clipped field: cut the URI harder
            entry["requestURI"] = _clip(uri, MAX_URI_CHARS // 8)
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
                if self._size and self._size + len(data) > self.max_bytes:
                    self._rotate()
                written = os.write(self._fd, data)
            except OSError as err:
                self._drop(err, len(lines))
                return
            self._size += written
            if written < len(data):
                self._torn = True
                self._drop(OSError(f"short write ({written} of {len(data)} bytes)"), len(lines))
                return
            self._torn = False
            if self._dropped:
                log.warning("audit log %s is writable again; %d lines were dropped", self.path, self._dropped)
                self._dropped = 0

    def _rotate(self) -> None:
        """audit.log -> audit.log.1 -> ... -> audit.log.N (dropped beyond), and a new audit.log."""
        os.close(self._fd)
        self._fd = -1
        try:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
            if self.backups > 0:
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            else:
                self.path.unlink(missing_ok=True)
        finally:  # whatever the renames did, keep a log open to append to
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
            self._torn = False

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
