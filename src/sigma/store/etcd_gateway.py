"""HTTP access to etcd's v3 JSON gateway (``/v3/*``), with fail-over between endpoints.

etcd 3.4 serves its gRPC API as JSON over plain HTTP: keys and values are base64, 64-bit
integers are strings, and a field at its zero value is omitted. Talking JSON keeps Sigma free
of the gRPC/protobuf stack (the old ``etcd3`` client does not import with protobuf 7).

Unary calls go through a small HTTP/1.1 client of our own on plain sockets (a pool of
keep-alive connections per endpoint, orjson): every store call of the API server is one of
them, made while the API's event loop waits, so the client's own cost is on the hot path of
every request. httpx cost about as much per call as etcd itself (≈0.5 ms of Python for a
0.4 ms range). Watch streams, long-lived and few, stay on httpx.

Fail-over: calls go to the current endpoint; when it cannot be reached, the next one is
tried. A request that was already sent when the connection broke is *not* replayed: a write
may have been applied, and replaying a create would report KeyExists for our own write. The
caller gets ``StoreUnavailable`` and decides; reads are replayed because they are harmless.
An idle pooled connection that etcd closed meanwhile is detected before it is used (it reads
as EOF), so "broken after sending" really means the request may have reached etcd.
"""

from __future__ import annotations

import base64
import select
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, cast

import httpx
import orjson

from sigma.store.contract import StorageFull, StoreClosed, StoreError, StoreUnavailable

__all__ = ["EtcdError", "Gateway", "StorageFull", "StoreUnavailable"]

Json = dict[str, Any]
COMPACTED = "required revision has been compacted"
# etcd's NOSPACE alarm: its backend reached --quota-backend-bytes and it refuses every write
# (reads still work) until compacted, defragmented and disarmed.
SPACE_EXCEEDED = "database space exceeded"
FUTURE_REVISION = "required revision is a future revision"
# Unary calls are small and etcd answers them in milliseconds on a healthy cluster; a
# stuck call should fail over rather than hang a controller.
CALL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 2.0
# Idle keep-alive connections kept per endpoint; more are opened when more threads call at
# once, and closed after use beyond this.
POOL_IDLE = 32
# A pipelined batch (``call_many``) keeps at most this many requests in flight on its
# connection: enough to hide the round trips, few enough that requests and answers never
# fill both directions' socket buffers (which would deadlock writer and server).
PIPELINE_WINDOW = 32
# ``call_many(spread=True)`` splits a batch over up to this many connections. etcd serves
# one connection's requests one after the other, each write waiting for its own raft round
# and WAL fsync; on several connections at once, raft commits them together.
SPREAD_CONNECTIONS = 8


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


class _NotSent(Exception):
    """The connection could not be opened: the request never left, so any call may be retried."""


class _Broken(Exception):
    """The connection failed after (part of) the request was sent."""


class _Connection:
    """One keep-alive HTTP/1.1 connection to etcd's gateway; one user at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        try:
            self.sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as err:
            raise _NotSent(repr(err)) from err
        # Requests are written whole with one sendall; without NODELAY a small request
        # following another could wait for the delayed ACK (40 ms).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._head_prefix = f" HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n".encode()

    def stale(self) -> bool:
        """True when an idle connection has something to read: etcd closed it (EOF) or it is
        out of step. Either way it must not carry a request."""
        if self._buf:
            return True
        # poll, not select: a busy master has file descriptors beyond select's 1024.
        poller = select.poll()
        try:
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def request_bytes(self, path: str, body: bytes) -> bytes:
        return b"".join((b"POST /v3/", path.encode(), self._head_prefix,
                         b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))

    def send(self, data: bytes, timeout: float) -> None:
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
        except OSError as err:
            raise _Broken(repr(err)) from err

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise _Broken("etcd closed the connection")
        self._buf += chunk

    def receive(self, timeout: float) -> tuple[int, bytes, bool]:
        """(status, body, keep-alive) of the next response."""
        try:
            self.sock.settimeout(timeout)
            return self._receive()
        except (OSError, ValueError, IndexError) as err:
            raise _Broken(repr(err)) from err

    def _receive(self) -> tuple[int, bytes, bool]:
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(buf[:end]).split(b"\r\n")
        del buf[: end + 4]
        status = int(head[0].split(b" ", 2)[1])
        length = -1
        chunked = False
        keep_alive = True
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if chunked:
            return status, self._chunked(), keep_alive
        if length < 0:  # no length, not chunked: the body runs to the end of the connection
            try:
                while True:
                    self._fill()
            except _Broken:
                body = bytes(buf)
                buf.clear()
                return status, body, False
        while len(buf) < length:
            self._fill()
        body = bytes(buf[:length])
        del buf[:length]
        return status, body, keep_alive

    def _chunked(self) -> bytes:
        # Go's server chunks any answer larger than its 2 KiB write buffer (a long list).
        buf = self._buf
        parts: list[bytes] = []
        while True:
            while (eol := buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(bytes(buf[:eol]).split(b";")[0], 16)
            del buf[: eol + 2]
            if size == 0:
                while (eol := buf.find(b"\r\n")) < 0:  # trailers (none in practice), then CRLF
                    self._fill()
                while eol != 0:
                    del buf[: eol + 2]
                    while (eol := buf.find(b"\r\n")) < 0:
                        self._fill()
                del buf[:2]
                return b"".join(parts)
            while len(buf) < size + 2:
                self._fill()
            parts.append(bytes(buf[:size]))
            del buf[: size + 2]

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()


class Gateway:
    def __init__(self, endpoints: list[str]) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        self.endpoints = [e if e.startswith("http") else f"http://{e}" for e in endpoints]
        self.addresses: list[tuple[str, int]] = []
        for endpoint in self.endpoints:
            parts = httpx.URL(endpoint)
            self.addresses.append((parts.host or "127.0.0.1", parts.port or 2379))
        self._current = 0
        self._lock = threading.Lock()
        self._idle: list[list[_Connection]] = [[] for _ in self.endpoints]
        self._closed = False
        # Watch streams hold a connection each for their lifetime: a pool of their own, unbounded,
        # so many watches never starve unary calls of connections.
        self._streams = httpx.Client(timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S),
                                     limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))

    def _endpoint(self) -> tuple[int, str]:
        with self._lock:
            return self._current, self.endpoints[self._current]

    def _fail_over(self, failed: int) -> None:
        with self._lock:
            if self._current == failed:  # another thread may have moved on already
                self._current = (failed + 1) % len(self.endpoints)
            stale, self._idle[failed] = self._idle[failed], []
        for conn in stale:  # the same endpoint's other connections are likely dead too
            conn.close()

    def _acquire(self, index: int) -> _Connection:
        with self._lock:
            idle = self._idle[index]
            while idle:
                conn = idle.pop()
                if not conn.stale():
                    return conn
                conn.close()
        return _Connection(*self.addresses[index])

    def _release(self, index: int, conn: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle[index]) < POOL_IDLE:
                self._idle[index].append(conn)
                return
        conn.close()

    def call(self, path: str, body: Json, *, idempotent: bool = False, timeout: float | None = None) -> Json:
        """POST ``body`` to ``/v3/path`` and return the JSON answer; raises EtcdError for a
        refusal and StoreUnavailable when no endpoint could be reached. ``timeout``
        replaces CALL_TIMEOUT_S (a liveness probe wants an answer quickly or not at all)."""
        answer = self.call_many(path, [body], idempotent=idempotent, timeout=timeout)[0]
        if isinstance(answer, EtcdError):
            raise answer
        return answer

    def call_many(self, path: str, bodies: Sequence[Json], *, idempotent: bool = False,
                  timeout: float | None = None, spread: bool = False) -> list[Json | EtcdError]:
        """Several POSTs to ``/v3/path`` pipelined on one connection, answered in order (etcd
        serves a connection's requests one after the other): one round trip's worth of
        waiting instead of one per request. Each answer is its JSON or, for a refusal, its
        EtcdError (returned in its place; ``call`` raises it). A broken connection raises
        StoreUnavailable as ``call`` does; requests not yet answered may have been applied.

        ``spread``: the requests are independent of each other (writes to distinct keys),
        so they go over up to SPREAD_CONNECTIONS connections at once and etcd may apply
        them in any order; the answers still come back in the order of ``bodies``."""
        if not bodies:
            return []
        if self._closed:
            raise StoreClosed("etcd gateway closed")
        limit = CALL_TIMEOUT_S if timeout is None else timeout
        encoded = [orjson.dumps(body) for body in bodies]
        lanes = min(len(encoded), SPREAD_CONNECTIONS) if spread else 1
        groups = [encoded[i::lanes] for i in range(lanes)]
        last: Exception | None = None
        for _ in range(len(self.endpoints)):
            index, base = self._endpoint()
            conns: list[_Connection] = []
            try:
                for _lane in range(lanes):
                    conns.append(self._acquire(index))
            except _NotSent as err:  # never sent: safe to retry anywhere
                for conn in conns:
                    self._release(index, conn)
                last = err
                self._fail_over(index)
                continue
            try:
                answers = self._exchange_lanes(conns, path, groups, limit)
            except _Broken as err:
                for conn in conns:
                    conn.close()
                self._fail_over(index)
                if idempotent:
                    last = err
                    continue
                raise StoreUnavailable(f"etcd {path} at {base}: {err} (the write may have been applied)") from err
            except BaseException:
                for conn in conns:
                    conn.close()  # out of step (a decoding bug, an interrupt): never reuse it
                raise
            out: list[Json | EtcdError] = [{} for _ in encoded]
            for lane, (conn, lane_answers) in enumerate(zip(conns, answers, strict=True)):
                keep = lane_answers.pop()
                if keep:
                    self._release(index, conn)
                else:
                    conn.close()
                for i, (status, data) in enumerate(cast(list[tuple[int, bytes]], lane_answers)):
                    try:
                        out[lane + i * lanes] = _decode(path, status, data)
                    except EtcdError as err:
                        out[lane + i * lanes] = err
            return out
        raise StoreUnavailable(f"no etcd endpoint answered {path} ({', '.join(self.endpoints)}): {last!r}")

    @staticmethod
    def _exchange_lanes(conns: list[_Connection], path: str, groups: list[list[bytes]],
                        timeout: float) -> list[list[Any]]:
        """``_exchange`` on several connections at once: every lane's first window is sent
        before any answer is read, so etcd works on all of them together."""
        if len(conns) == 1:
            return [Gateway._exchange(conns[0], path, groups[0], timeout)]
        answers: list[list[Any]] = [[] for _ in conns]
        sent = [0] * len(conns)
        keep = [True] * len(conns)
        while any(len(a) < len(g) for a, g in zip(answers, groups, strict=True)):
            for lane, conn in enumerate(conns):
                group, got = groups[lane], answers[lane]
                if sent[lane] < len(group) and sent[lane] - len(got) < PIPELINE_WINDOW:
                    upto = min(len(group), len(got) + PIPELINE_WINDOW)
                    conn.send(b"".join(conn.request_bytes(path, body) for body in group[sent[lane]:upto]), timeout)
                    sent[lane] = upto
            for lane, conn in enumerate(conns):
                group, got = groups[lane], answers[lane]
                # Read what this lane has in flight before topping the others up again.
                while len(got) < sent[lane]:
                    status, data, alive = conn.receive(timeout)
                    got.append((status, data))
                    if not alive and len(got) < len(group):
                        raise _Broken("etcd closed the connection in the middle of a pipelined batch")
                    keep[lane] = keep[lane] and alive
        for lane, got in enumerate(answers):
            got.append(keep[lane])
        return answers

    @staticmethod
    def _exchange(conn: _Connection, path: str, encoded: list[bytes], timeout: float) -> list[Any]:
        """Send every request (at most PIPELINE_WINDOW unanswered) and read the answers:
        [(status, body), ..., keep_alive]."""
        answers: list[Any] = []
        keep = True
        sent = 0
        while len(answers) < len(encoded):
            if sent < len(encoded) and sent - len(answers) < PIPELINE_WINDOW:
                upto = min(len(encoded), len(answers) + PIPELINE_WINDOW)
                conn.send(b"".join(conn.request_bytes(path, body) for body in encoded[sent:upto]), timeout)
                sent = upto
            status, data, alive = conn.receive(timeout)
            answers.append((status, data))
            if not alive and len(answers) < len(encoded):
                raise _Broken("etcd closed the connection in the middle of a pipelined batch")
            keep = keep and alive
        answers.append(keep)
        return answers

    @contextmanager
    def stream(self, path: str, body: Json, idle_timeout: float | None = None) -> Iterator[httpx.Response]:
        """A streaming POST (watch) on the current endpoint; fails over on connect errors.
        The caller reads lines and may shut the socket down from another thread. With
        ``idle_timeout``, a read (the response head included) that waits longer than that
        raises httpx.ReadTimeout: a stopped etcd or a half-open connection sends nothing
        and would otherwise block the reader forever."""
        index, base = self._endpoint()
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S, read=idle_timeout)
        if self._closed:
            raise StoreClosed("etcd gateway closed")
        try:
            with self._streams.stream("POST", f"{base}/v3/{path}", json=body, timeout=timeout) as response:
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self._fail_over(index)
            raise
        except RuntimeError as err:  # httpx refuses a client closed meanwhile (store closing)
            if self._closed:
                raise StoreClosed("etcd gateway closed") from err
            raise

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [conn for pool in self._idle for conn in pool]
            self._idle = [[] for _ in self.endpoints]
        for conn in idle:
            conn.close()
        self._streams.close()


def _decode(path: str, status: int, body: bytes) -> Json:
    try:
        data = cast(Json, orjson.loads(body))
    except orjson.JSONDecodeError:
        raise EtcdError(path, -1, f"HTTP {status}: {body[:200].decode(errors='replace')}") from None
    if not isinstance(data, dict):
        raise EtcdError(path, -1, f"HTTP {status}: unexpected answer {body[:200].decode(errors='replace')}")
    if "error" in data or status != 200:
        message = str(data.get("message") or data.get("error"))
        if SPACE_EXCEEDED in message:
            raise StorageFull(f"etcd {path}: {message}: nothing was written; etcd needs compaction, "
                              "defragmentation and its NOSPACE alarm disarmed")
        raise EtcdError(path, int(data.get("code", -1)), message)
    return data
