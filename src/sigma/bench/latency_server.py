"""A latency-sensitive prod service for benchmarks: `python -m sigma.bench.latency_server`.

Keep-alive HTTP/1.1 on asyncio; every request does the same fixed work (WORK rounds of
SHA-256, about 0.2 ms at the default) and answers "ok". A fixed cost per request makes the
latency a measure of scheduling delay, which is what co-location isolation is about.
Listens on HOST:PORT (PORT from the environment); SIGTERM stops it at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def work(rounds: int) -> bytes:
    digest = b"sigma"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest


async def serve(host: str, port: int, rounds: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # GET without a body
                work(rounds)
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"latency server on {host}:{port}, {rounds} rounds of work per request", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    asyncio.run(serve(os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"]), int(os.environ.get("WORK", "300"))))


if __name__ == "__main__":
    main()
