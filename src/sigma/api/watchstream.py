"""The response of a watch: a stream that ends when its client stops reading.

Events for a watch queue up in the store's watch while the response waits to write the
previous ones; a client that opens a watch and never reads it would make the master keep
every event of the resource from then on (measured: five unread pod watches held 100 MB
after 1,500 updates of one 20 KB pod). So a write that cannot complete within
WRITE_TIMEOUT_S ends the watch and aborts the connection (its unsent buffers go with it),
as kube-apiserver closes watchers that do not keep up. The client resumes from its last
resourceVersion, as after any watch that ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("sigma.api.watch")

WRITE_TIMEOUT_S = 10.0
# Where LimitedHttpToolsProtocol puts the connection's abort() in the ASGI scope.
CONNECTION_EXTENSION = "sigma.connection"


class WatchResponse(StreamingResponse):
    _abort: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = (scope.get("extensions") or {}).get(CONNECTION_EXTENSION) or {}
        self._abort = connection.get("abort")
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        chunks: Any = self.body_iterator
        try:
            async for chunk in chunks:
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                try:
                    await asyncio.wait_for(send(message), WRITE_TIMEOUT_S)
                except TimeoutError:
                    log.warning("ending a watch whose client has not read for %.0f s", WRITE_TIMEOUT_S)
                    if self._abort is not None:
                        self._abort()
                    return
        finally:
            if hasattr(chunks, "aclose"):
                await chunks.aclose()  # closes the registry watch now, not at garbage collection
        await send({"type": "http.response.body", "body": b"", "more_body": False})
