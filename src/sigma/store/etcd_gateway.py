"""HTTP access to etcd's v3 JSON gateway (``/v3/*``), with fail-over between endpoints.

etcd 3.4 serves its gRPC API as JSON over plain HTTP: keys and values are base64, 64-bit
integers are strings, and a field at its zero value is omitted. Talking JSON through httpx
keeps Sigma free of the gRPC/protobuf stack (the old ``etcd3`` client does not import with
protobuf 7).

Fail-over: calls go to the current endpoint; when it cannot be reached, the next one is
tried. A request that was already sent when the connection broke is *not* replayed: a write
may have been applied, and replaying a create would report KeyExists for our own write. The
caller gets ``StoreUnavailable`` and decides; reads are replayed because they are harmless.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import httpx

from sigma.store.contract import StorageFull, StoreError, StoreUnavailable

__all__ = ["EtcdError", "Gateway", "StorageFull", "StoreUnavailable"]

Json = dict[str, Any]
COMPACTED = "required revision has been compacted"
# etcd's NOSPACE alarm: its backend reached --quota-backend-bytes and it refuses every write
# (reads still work) until compacted, defragmented and disarmed.
SPACE_EXCEEDED = "database space exceeded"
FUTURE_REVISION = "required revision is a future revision"
# Unary calls are small and etcd answers them in milliseconds on a healthy cluster; a
# stuck call should fail over rather than hang a controller.
CALL_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class EtcdError(StoreError):
    """etcd refused a request; ``code`` is the gRPC status code."""

    def __init__(self, path: str, code: int, message: str) -> None:
        super().__init__(f"etcd {path}: {message} (code {code})")
        self.code = code
        self.message = message


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def num(obj: Json, name: str) -> int:
    """An int64 field: a JSON string, absent when zero."""
    return int(obj.get(name) or 0)


# etcd's revision 1 is the empty keyspace it starts with; the contract counts writes from 0
# (revision N is the Nth write), so every revision crossing this module shifts by one.
# Without the shift a watch "from revision 0" would expect an event at etcd's revision 1.
def rev_out(etcd_revision: int) -> int:
    return max(etcd_revision - 1, 0)


def rev_in(revision: int) -> int:
    return revision + 1


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with prefix": the prefix with its last byte
    incremented (trailing 0xff bytes dropped). b"\\0" means "no upper bound"."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


class Gateway:
    def __init__(self, endpoints: list[str]) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = [e if e.startswith("http") else f"http://{e}" for e in endpoints]
        self._current = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=CALL_TIMEOUT)
        # Watch streams hold a connection each for their lifetime: a pool of their own, unbounded,
        # so many watches never starve unary calls of connections.
        self._streams = httpx.Client(timeout=httpx.Timeout(None, connect=2.0),
                                     limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))

    def _endpoint(self) -> tuple[int, str]:
        with self._lock:
            return self._current, self.endpoints[self._current]

    def _fail_over(self, failed: int) -> None:
        with self._lock:
            if self._current == failed:  # another thread may have moved on already
                self._current = (failed + 1) % len(self.endpoints)

    def call(self, path: str, body: Json, *, idempotent: bool = False, timeout: float | None = None) -> Json:
        """POST ``body`` to ``/v3/path`` and return the JSON answer; raises EtcdError for a
        refusal and StoreUnavailable when no endpoint could be reached. ``timeout``
        replaces CALL_TIMEOUT (a liveness probe wants an answer quickly or not at all)."""
        last: Exception | None = None
        limit = CALL_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        for _ in range(len(self.endpoints)):
            index, base = self._endpoint()
            try:
                response = self._client.post(f"{base}/v3/{path}", json=body, timeout=limit)
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:  # never sent: safe to retry
                last = err
                self._fail_over(index)
                continue
            except httpx.TransportError as err:
                self._fail_over(index)
                if idempotent:
                    last = err
                    continue
                raise StoreUnavailable(f"etcd {path} at {base}: {err!r} (the write may have been applied)") from err
            return _decode(path, response)
        raise StoreUnavailable(f"no etcd endpoint answered {path} ({', '.join(self.endpoints)}): {last!r}")

    @contextmanager
    def stream(self, path: str, body: Json, idle_timeout: float | None = None) -> Iterator[httpx.Response]:
        """A streaming POST (watch) on the current endpoint; fails over on connect errors.
        The caller reads lines and may shut the socket down from another thread. With
        ``idle_timeout``, a read (the response head included) that waits longer than that
        raises httpx.ReadTimeout: a stopped etcd or a half-open connection sends nothing
        and would otherwise block the reader forever."""
        index, base = self._endpoint()
        timeout = httpx.Timeout(None, connect=2.0, read=idle_timeout)
        try:
            with self._streams.stream("POST", f"{base}/v3/{path}", json=body, timeout=timeout) as response:
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self._fail_over(index)
            raise

    def close(self) -> None:
        self._client.close()
        self._streams.close()


def _decode(path: str, response: httpx.Response) -> Json:
    try:
        data = cast(Json, response.json())
    except ValueError:
        raise EtcdError(path, -1, f"HTTP {response.status_code}: {response.text[:200]}") from None
    if "error" in data or response.status_code != 200:
        message = str(data.get("message") or data.get("error"))
        if SPACE_EXCEEDED in message:
            raise StorageFull(f"etcd {path}: {message}: nothing was written; etcd needs compaction, "
                              "defragmentation and its NOSPACE alarm disarmed")
        raise EtcdError(path, int(data.get("code", -1)), message)
    return data
