"""uvicorn's WebSocket protocol for the master, on Sigma's own RFC 6455 codec
(sigma.api.websocket): uvicorn(ws=WebSocketProtocol).

uvicorn upgrades through the `websockets` or `wsproto` package, and the master depends on
neither; it accepts any asyncio.Protocol class as `ws`, handing it the connection with the
request head replayed. This one serves the ASGI WebSocket interface (connect, receive,
disconnect; accept with a subprotocol, send, close) and its denial-response extension: a
response sent before the accept (``websocket.http.response.*``, or the plain
``http.response.*`` the auth middleware sends) goes out as an ordinary HTTP response, so a
401, 403 or 404 reaches kubectl as a Status it prints.

Back-pressure both ways: the app's sends wait while the socket's buffer is full, and the
socket is not read while the app has 64 messages it has not taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import unquote

from sigma.api import websocket as ws

log = logging.getLogger("sigma.api.websocket")

MAX_QUEUED = 64
CLOSE_WAIT_S = 10.0  # how long our CLOSE waits for the client's before the connection is closed
HEAD_LIMIT = 64 * 1024
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def parse_head(head: bytes) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    """(method, target, headers with lowercased names) of an HTTP/1.1 request head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ValueError("malformed request line")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("malformed header line")
        headers.append((name.strip().lower(), value.strip()))
    return parts[0].decode("latin-1"), parts[1].decode("latin-1"), headers


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in headers if k == name), "")


def subprotocols_of(headers: list[tuple[bytes, bytes]]) -> list[str]:
    return [p.strip() for k, v in headers if k == b"sec-websocket-protocol"
            for p in v.decode("latin-1").split(",") if p.strip()]


class WebSocketProtocol(asyncio.Protocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config, self.app = config, config.loaded_app
        self.server_state, self.app_state = server_state, app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.reader = ws.FrameReader(expect_masked=True, max_message=config.ws_max_size)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.head = b""
        self.key = ""
        self.accepted = self.closed = self.close_sent = self.denying = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.paused = False
        self.task: asyncio.Task[None] | None = None
        self.peer_cert: dict[str, Any] | None = None
        self.linger: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Under the coalescing wrapper of the HTTP protocol: write to the socket itself.
        inner: Any = getattr(transport, "_transport", transport)
        self.transport = inner
        assert self.transport is not None
        self.peer_cert = self.transport.get_extra_info("peercert") or None
        self.server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.linger is not None:
            self.linger.cancel()
        self.writable.set()
        self.server_state.connections.discard(self)
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def shutdown(self) -> None:  # uvicorn calls it on every connection when it stops
        if not self.closed and self.transport is not None:
            if self.accepted and not self.close_sent:
                self.close_sent = True
                self.transport.write(ws.encode(ws.CLOSE, ws.close_payload(1012)))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.task is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > HEAD_LIMIT:
                    self._abort()
                return
            rest = self.head[end + 4:]
            self._start(self.head[:end])
            data = rest
            if not data:
                return
        try:
            messages = self.reader.feed(data)
        except ws.ProtocolError as err:
            self._fail(err.code, str(err))
            return
        for message in messages:
            self._handle(message)

    # -- frames from the client ---------------------------------------------------------------
    def _handle(self, message: ws.Message) -> None:
        assert self.transport is not None
        if message.opcode == ws.PING:
            self.transport.write(ws.encode(ws.PONG, message.data))
        elif message.opcode == ws.CLOSE:
            code = ws.close_code(message.data)
            if not self.close_sent:
                self.close_sent = True
                self.transport.write(ws.encode(ws.CLOSE, message.data[:2]))
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
            self.transport.close()
        elif message.opcode == ws.TEXT:
            self._queue({"type": "websocket.receive", "text": message.data.decode("utf-8", "replace")})
        elif message.opcode == ws.BINARY:
            self._queue({"type": "websocket.receive", "bytes": message.data})

    def _queue(self, event: dict[str, Any]) -> None:
        self.queue.put_nowait(event)
        if self.queue.qsize() >= MAX_QUEUED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _fail(self, code: int, reason: str) -> None:
        assert self.transport is not None
        log.debug("websocket protocol error: %s", reason)
        if self.accepted and not self.close_sent:
            self.close_sent = True
            self.transport.write(ws.encode(ws.CLOSE, ws.close_payload(code, reason)))
        self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- the ASGI app -------------------------------------------------------------------------
    def _start(self, head: bytes) -> None:
        assert self.transport is not None
        try:
            method, target, headers = parse_head(head)
        except ValueError:
            self._abort()
            return
        self.key = header(headers, b"sec-websocket-key")
        path, _, query = target.partition("?")
        scheme = "wss" if self.transport.get_extra_info("sslcontext") is not None else "ws"
        client = self.transport.get_extra_info("peername")
        server = self.transport.get_extra_info("sockname")
        scope: dict[str, Any] = {
            "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "scheme": scheme, "method": method, "path": unquote(path), "raw_path": path.encode("latin-1"),
            "root_path": "", "query_string": query.encode("latin-1"), "headers": headers,
            "client": tuple(client[:2]) if isinstance(client, tuple) else None,
            "server": tuple(server[:2]) if isinstance(server, tuple) else None,
            "subprotocols": subprotocols_of(headers), "state": dict(self.app_state),
            "extensions": {"websocket.http.response": {}},
        }
        if self.peer_cert:
            scope["extensions"]["tls"] = {"peer_cert": self.peer_cert}
        self.task = self.loop.create_task(self._run(scope))

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except Exception:
            log.exception("the WebSocket app failed")
            if not self.accepted and not self.denying:
                await self._deny_plain(500, b"internal error")
        finally:
            if not self.closed and self.transport is not None:
                if self.accepted:
                    self._close_gracefully(1000, "")
                else:
                    self.transport.close()

    async def receive(self) -> dict[str, Any]:
        if not hasattr(self, "_connected"):
            self._connected = True
            return {"type": "websocket.connect"}
        event = await self.queue.get()
        if self.paused and self.queue.qsize() < MAX_QUEUED // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return event

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        transport = self.transport
        assert transport is not None
        if self.closed:
            return
        if kind == "websocket.accept":
            lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade",
                     b"Sec-WebSocket-Accept: " + ws.accept_key(self.key).encode()]
            if message.get("subprotocol"):
                lines.append(b"Sec-WebSocket-Protocol: " + str(message["subprotocol"]).encode())
            lines += [k + b": " + v for k, v in message.get("headers") or []]
            transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
            self.accepted = True
        elif kind == "websocket.send":
            await self.writable.wait()
            if message.get("bytes") is not None:
                transport.write(ws.encode(ws.BINARY, bytes(message["bytes"])))
            elif message.get("text") is not None:
                transport.write(ws.encode(ws.TEXT, str(message["text"]).encode()))
        elif kind == "websocket.close":
            if self.accepted:
                self._close_gracefully(int(message.get("code") or 1000), str(message.get("reason") or ""))
            else:
                await self._deny_plain(403, b"")
                transport.close()
        elif kind in ("websocket.http.response.start", "http.response.start") and not self.accepted:
            self.denying = True
            status = int(message["status"])
            reason = _REASONS.get(status, "Error").encode()
            lines = [b"HTTP/1.1 " + str(status).encode() + b" " + reason, b"Connection: close"]
            lines += [bytes(k) + b": " + bytes(v) for k, v in message.get("headers") or []
                      if bytes(k).lower() != b"connection"]
            transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        elif kind in ("websocket.http.response.body", "http.response.body") and self.denying:
            transport.write(bytes(message.get("body") or b""))
            if not message.get("more_body"):
                transport.close()

    def _close_gracefully(self, code: int, reason: str) -> None:
        """Our CLOSE, then the TCP connection is closed only when the client's CLOSE comes back
        (or after CLOSE_WAIT_S). Closing at once, with bytes of the client's still unread,
        would reset the connection, and a reset makes the client's kernel drop what it has
        received but not yet read: the end of a command's output."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if not self.close_sent:
            self.close_sent = True
            transport.write(ws.encode(ws.CLOSE, ws.close_payload(code, reason)))
        if self.paused:  # nobody takes messages any more: read on, to see the client's CLOSE
            self.paused = False
            transport.resume_reading()
        if self.linger is None:
            self.linger = self.loop.call_later(CLOSE_WAIT_S, transport.close)

    async def _deny_plain(self, status: int, body: bytes) -> None:
        if self.transport is None or self.closed:
            return
        self.denying = True
        with contextlib.suppress(Exception):
            self.transport.write(b"HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                                 % (status, _REASONS.get(status, "Error").encode(), len(body)) + body)
