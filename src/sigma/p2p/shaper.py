"""A TCP proxy that caps its egress (server -> clients) at a byte rate: the registry's single
uplink in the P2P benchmark. docker-registry is a Go binary we cannot throttle from inside,
and tc on loopback would throttle the peers' traffic too."""

from __future__ import annotations

import asyncio
import threading

from sigma.netutil import free_port
from sigma.p2p.ratelimit import TokenBucket

CHUNK = 64 * 1024




class ShapedProxy:
    """127.0.0.1:<port> -> upstream "host:port"; all downstream bytes share one bucket."""

    def __init__(self, upstream: str, rate: float) -> None:
        self.upstream = upstream
        self.bucket = TokenBucket(rate, burst=max(rate / 50, CHUNK))
        self.address = f"127.0.0.1:{free_port()}"
        self.bytes_sent = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="shaped-proxy", daemon=True)

    def start(self) -> ShapedProxy:
        self._thread.start()
        host, port = self.address.split(":")
        asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, host, int(port)), self._loop).result()
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream.split(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(self._pipe(reader, up_writer, shaped=False), self._pipe(up_reader, writer, shaped=True))

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, shaped: bool) -> None:
        try:
            while data := await src.read(CHUNK):
                if shaped:
                    # The bucket sleeps; do it off the loop so other connections keep moving.
                    await asyncio.to_thread(self.bucket.take, len(data))
                    self.bytes_sent += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()
