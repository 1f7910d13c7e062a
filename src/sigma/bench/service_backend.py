"""A replica for `sigma bench service`: answers its pod name, stdlib only.

Runs inside a pod as ``python3 -u -c <this file's text> NAME [FLAG]`` (a pod sees the host
read-only, not Sigma's packages: the text travels in the command). Every connection gets
one answer and is closed (the load generator opens one per request, so the Service's proxy
picks a replica per request).

- ``GET /ready``: the readiness probe. 200 when FLAG exists (no FLAG: always), else 503.
  The bench makes a replica turn Ready at a moment it chooses by creating FLAG (a file in a
  0755 directory under /var/tmp, which the pod can read).
- any other path: 200 with NAME.

It prints (the pod's log) ``ready T`` when /ready turns from 503 to 200 and ``first T`` at
the first other request after that (T: time.time(), the clock the bench shares), so the
bench can time "Ready to traffic" on the replica's side, and split it at the probe.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time


def answer(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


class Replica:
    def __init__(self, name: str, flag: str) -> None:
        self.name, self.flag = name, flag
        self.ready = False
        self.armed = False  # turned Ready, no request served since

    def handle(self, path: str) -> bytes:
        if path == "/ready":
            ready = not self.flag or os.path.exists(self.flag)
            if ready and not self.ready:
                print(f"ready {time.time():.6f}", flush=True)
                self.armed = True
            self.ready = ready
            return answer("200 OK", b"ready") if ready else answer("503 Service Unavailable", b"not ready")
        if self.armed:
            self.armed = False
            print(f"first {time.time():.6f}", flush=True)
        return answer("200 OK", self.name.encode())


async def serve(replica: Replica, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b" ", 2)
            writer.write(replica.handle(parts[1].decode(errors="replace") if len(parts) > 1 else "/"))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    name, flag = argv[0], argv[1] if len(argv) > 1 else ""
    print(f"{name} serving on 8080", flush=True)
    asyncio.run(serve(Replica(name, flag), 8080))


if __name__ == "__main__":
    main(sys.argv[1:])
