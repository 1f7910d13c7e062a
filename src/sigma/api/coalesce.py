"""One socket write per API response instead of two.

uvicorn writes a response's head as soon as the app starts the response, and its body when
the app sends it: two send() calls per request. On loopback (kubectl, the agents and the
benchmarks on the master's own machine) each send() also runs the receiving side's TCP
stack, and profiles of the master under load showed the head's write alone at about 15% of
the event loop's time. CoalescingTransport holds a response head back until the next write
(the body, which a plain response sends in the same step of the event loop) and sends both
at once; a head with nothing after it in that step (a watch, a streamed log) goes out on the
loop's next turn, so no stream waits for its first event to get its headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport that merges a response head with the write after it. Everything but
    write and close is the wrapped transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + bytes(data))
        elif isinstance(data, bytes) and data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a CoalescingTransport (uvicorn.Config(http=...))."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
