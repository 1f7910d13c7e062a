"""Lightweight fake agents for the API benchmark: one asyncio coroutine per node, all in one
process, speaking real HTTP to the masters.

Each agent does what a node's agent does towards the API (without running anything): it
watches the pods bound to its node (``fieldSelector=spec.nodeName=NODE``, a real chunked
watch stream), reports each new pod Running with a PATCH of its status, and renews its
Lease every LEASE_RENEW_S. The HTTP/1.1 client is a minimal one on asyncio streams
(keep-alive, Content-Length and chunked bodies): the load generator shares the machine's
cores with the masters, so it spends as little CPU per request as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from sigma.bench.fakecluster import LEASE_RENEW_S, LEASES, NAMESPACE, lease_spec, rfc3339_micro


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _send(self, method: str, path: str, body: bytes | None, content_type: str) -> asyncio.StreamReader:
        reader, writer = await self._open()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        return reader

    @staticmethod
    async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
        raw = await reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        try:
            reader = await self._send(method, path, None if body is None else orjson.dumps(body), content_type)
            status, headers = await self._head(reader)
            if headers.get(b"transfer-encoding") == b"chunked":
                data = b"".join([chunk async for chunk in self._chunks(reader)])
            else:
                data = await reader.readexactly(int(headers.get(b"content-length", b"0")))
            if headers.get(b"connection") == b"close":
                self.close()
            return status, data
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            self.close()
            raise HttpError(f"{method} {path}: {err!r}") from err

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return
            chunk = await reader.readexactly(size + 2)
            yield chunk[:-2]

    async def stream_lines(self, path: str) -> AsyncIterator[bytes]:
        """GET ``path`` and yield the lines of its (chunked) body as they come: a watch."""
        try:
            reader = await self._send("GET", path, None, "")
            status, _ = await self._head(reader)
            if status != 200:
                raise HttpError(f"watch {path} answered {status}")
            pending = b""
            async for chunk in self._chunks(reader):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line:
                        yield line
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            raise HttpError(f"watch {path}: {err!r}") from err
        finally:
            self.close()  # a watch connection is never reused


@dataclass
class AgentStats:
    running_at: dict[str, float] = field(default_factory=dict)  # pod -> its Running status was acknowledged
    bound_seen_at: dict[str, float] = field(default_factory=dict)  # pod -> its agent saw it bound
    errors: int = 0
    watch_restarts: int = 0


class Agent:
    def __init__(self, node: str, urls: list[str], version: str, stats: AgentStats) -> None:
        self.node, self.urls, self.version, self.stats = node, urls, version, stats
        self._todo: asyncio.Queue[str] = asyncio.Queue()
        self._turn = 0

    @property
    def url(self) -> str:
        return self.urls[self._turn % len(self.urls)]

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._watch(stop)), asyncio.create_task(self._report(stop))]
        await stop.wait()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, HttpError):
                await task

    async def _watch(self, stop: asyncio.Event) -> None:
        selector = quote(f"spec.nodeName={self.node}")
        while not stop.is_set():
            path = (f"/api/v1/namespaces/{NAMESPACE}/pods?watch=1&allowWatchBookmarks=true"
                    f"&fieldSelector={selector}&resourceVersion={self.version}")
            try:
                async for line in Connection(self.url).stream_lines(path):
                    event = orjson.loads(line)
                    obj = event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    self.version = meta.get("resourceVersion", self.version)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        name = meta["name"]
                        if name not in self.stats.bound_seen_at and (obj.get("status") or {}).get("phase") != "Running":
                            self.stats.bound_seen_at[name] = time.time()
                            self._todo.put_nowait(name)
            except HttpError:
                pass
            self.stats.watch_restarts += 1  # the stream ended: resume from the last version
            self._turn += 1
            await asyncio.sleep(0.1)

    async def _report(self, stop: asyncio.Event) -> None:
        """Status reports and lease renewals, one keep-alive connection."""
        conn = Connection(self.url)
        next_lease = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_lease:
                next_lease = now + LEASE_RENEW_S
                if await self._call(conn, "PATCH", f"{LEASES}/{self.node}", {"spec": lease_spec(self.node)}) == 0:
                    conn = Connection(self.url)
            try:
                name = await asyncio.wait_for(self._todo.get(), timeout=max(0.01, next_lease - time.monotonic()))
            except TimeoutError:
                continue
            status = {"status": {"phase": "Running", "startTime": rfc3339_micro(time.time()),
                                 "conditions": [{"type": "Ready", "status": "True"}]}}
            code = await self._call(conn, "PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/status", status)
            if code == 0:
                conn = Connection(self.url)  # that master is gone: the next one
            if code == 200:
                self.stats.running_at[name] = time.time()
            else:
                self.stats.errors += 1
                if code != 404:
                    self._todo.put_nowait(name)  # the master was busy or gone: report again

    async def _call(self, conn: Connection, method: str, path: str, body: Any) -> int:
        try:
            status, _ = await conn.request(method, path, body, "application/merge-patch+json")
        except HttpError:
            self._turn += 1
            return 0
        if status == 404 and path.startswith(LEASES):
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.node}, "spec": lease_spec(self.node)}
            with contextlib.suppress(HttpError):
                status, _ = await conn.request("POST", LEASES, lease)
        return status


async def _run_agents(nodes: list[str], urls: list[str], version: str, expected: int,
                      timeout: float) -> AgentStats:
    stats = AgentStats()
    stop = asyncio.Event()
    agents = [Agent(node, [urls[(i + k) % len(urls)] for k in range(len(urls))], version, stats)
              for i, node in enumerate(nodes)]
    tasks = [asyncio.create_task(agent.run(stop)) for agent in agents]
    deadline = time.monotonic() + timeout
    while len(stats.running_at) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def agents_process(nodes: list[str], urls: list[str], version: str, expected: int, timeout: float,
                   results: Any) -> None:
    """Entry point of the agents' process: runs until ``expected`` pods are Running (or
    ``timeout``), then puts its AgentStats' fields on ``results``."""
    main = _run_agents(nodes, urls, version, expected, timeout)
    try:
        import uvloop  # a cheaper event loop: the agents share the cores with the masters

        stats = uvloop.run(main)
    except ImportError:
        stats = asyncio.run(main)
    results.put({"running_at": stats.running_at, "bound_seen_at": stats.bound_seen_at,
                 "errors": stats.errors, "watch_restarts": stats.watch_restarts})
