"""Limits on what a connection may make the master hold before a request reaches the app.

uvicorn's httptools protocol keeps reading a request head for as long as the client sends it
and for as long as the client takes: ten connections each trickling in an unfinished 50 MB
header held half a gigabyte, and a connection that never finished its head was never closed.
LimitedHttpToolsProtocol bounds both, as Go's net/http does for kube-apiserver:

- a request head (request line and headers) may be MAX_HEADER_BYTES (1 MiB, kube-apiserver's
  MaxHeaderBytes) and MAX_HEADER_COUNT headers; beyond either the answer is 431 Request
  Header Fields Too Large and the connection is closed. Bytes are counted as they arrive, so
  an unfinished head is cut off at the limit too, not when it completes;
- a head must be complete HEADER_TIMEOUT_S after its first byte (or after the connection
  opened), and a request body BODY_TIMEOUT_S after its head; otherwise the connection is
  closed (408 Request Timeout when no response has started). Idle keep-alive connections are
  closed by uvicorn's own keep-alive timeout. Responses (watches, followed logs) are not
  limited: they are the server's to send;
- one source address may hold MAX_PENDING_PER_ADDRESS connections that have not yet sent a
  complete first request head; a connection beyond that is answered 429 and closed at once.
  Real clients send their request as soon as they connect, so only a flood of idle or
  trickling connections meets this, while connections busy with requests (an agent's watch,
  a benchmark's thousand clients) are not counted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sigma.api.coalesce import CoalescingHttpToolsProtocol
from sigma.api.watchstream import CONNECTION_EXTENSION

MAX_HEADER_BYTES = 1 << 20
# Go counts bytes only; Sigma also counts headers, since each one costs a Python tuple
# (a megabyte of empty headers would be a quarter of a million of them).
MAX_HEADER_COUNT = 1000
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_PENDING_PER_ADDRESS = 256

_TOO_LARGE = b"431 Request Header Fields Too Large"
_TIMEOUT = b"408 Request Timeout"
_BUSY = b"429 Too Many Requests"
# Connections per source address still waiting for their first complete head (this event
# loop's: uvicorn serves every connection of the master on one).
_pending: dict[str, int] = {}


def _plain_response(status: bytes, extra_headers: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            + extra_headers + b"content-length: " + str(len(status)).encode() + b"\r\n\r\n" + status)


class LimitedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """uvicorn's httptools protocol (with coalesced writes) under the limits of the module doc."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_received = 0  # raw bytes of the current head, counted as they arrive
        self._head_size = 0  # parsed: the URL and every header line
        self._head_count = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._address = ""
        self._pending_head = False

    # -- connection -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = str(self.client[0]) if self.client else ""
        if _pending.get(self._address, 0) >= MAX_PENDING_PER_ADDRESS:
            self._pending_head = False
            self._refuse(_BUSY, b"retry-after: 1\r\n")
            return
        _pending[self._address] = _pending.get(self._address, 0) + 1
        self._pending_head = True
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._first_head_done()
        super().connection_lost(exc)

    def _first_head_done(self) -> None:
        if self._pending_head:
            self._pending_head = False
            left = _pending.get(self._address, 1) - 1
            if left > 0:
                _pending[self._address] = left
            else:
                _pending.pop(self._address, None)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the answer is on its way and the connection closing: read nothing more
        if self._in_head:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._timed_out)
            self._head_received += len(data)
        super().data_received(data)
        # Still inside the head after taking this chunk: the head alone is over the limit
        # (a chunk is at most the transport's read size, so this stops within one of it).
        if self._in_head and self._head_received > MAX_HEADER_BYTES and not self._refused:
            self._refuse(_TOO_LARGE)

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._head_size = self._head_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._head_count += 1
        if self._head_count <= MAX_HEADER_COUNT and not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_received = 0
        self._cancel(head=True)
        self._first_head_done()
        if self._refused:
            return
        if self._head_size > MAX_HEADER_BYTES or self._head_count > MAX_HEADER_COUNT:
            self._refuse(_TOO_LARGE)
            return
        # A response that must give up on its client (a watch it cannot write to) aborts the
        # connection through this, dropping what is buffered for it.
        self.scope.setdefault("extensions", {})[CONNECTION_EXTENSION] = {"abort": self.transport.abort}
        super().on_headers_complete()
        # Cancelled by on_message_complete, which follows at once for a request without a body.
        self._body_timer = self.loop.call_later(BODY_TIMEOUT_S, self._timed_out)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel(head=False)
        self._in_head = True  # what follows on this connection is the next request's head
        if not self._refused:
            super().on_message_complete()

    # -- refusing ---------------------------------------------------------------------------
    def _refuse(self, status: bytes, extra_headers: bytes = b"") -> None:
        self._refused = True
        self._cancel_timers()
        cycle = self.cycle
        if not self.transport.is_closing():
            if cycle is None or not cycle.response_started:
                self.transport.write(_plain_response(status, extra_headers))
            self.transport.close()

    def _timed_out(self) -> None:
        self._head_timer = self._body_timer = None
        if not self._refused and not self.transport.is_closing():
            self._refuse(_TIMEOUT)

    def _cancel(self, head: bool) -> None:
        timer = self._head_timer if head else self._body_timer
        if timer is not None:
            timer.cancel()
        if head:
            self._head_timer = None
        else:
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel(head=True)
        self._cancel(head=False)
