"""An open-loop HTTP load generator with precise pacing, for latency benchmarks.

Request i is due at start + i / rate whatever happened to the earlier ones (open loop: a
slow server does not slow the client down, so queueing shows up in the numbers instead of
hiding - the "coordinated omission" a closed loop suffers from). Its latency is measured
from the time it was DUE to the time its response arrived, so waiting for a free
connection or for the client's own event loop counts against the result, never for it.

Requests go over a pool of keep-alive connections; a request that finds none free waits
for one (and that wait is part of its latency). With ``fresh_connections`` every request
opens its own connection instead (``Connection: close``), at most ``connections`` at once:
what a load balancer that decides per connection (a Service's ClusterIP) needs to spread
the requests, and the connect is part of the latency; ``rotate`` then names more hosts (on
the same port) that take turns with ``host``, request by request (the spread of a balancer,
without one).

The answers' bodies are counted (``LoadResult.answers``): a server that answers its own
name tells which replica served each request.

The generator's own pauses count against the service too, so it keeps them out: Python's
cyclic garbage collector is off during a run (a generation-2 pass over a long run's objects
took 14 ms here, landing on every request in flight at the same point of each run), and
finished requests are not kept.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    errors: int
    seconds: float
    # When each answered request was due (time.perf_counter()), in the order of
    # latencies_ms, and when each failed one was: a run can be cut into windows afterwards.
    due: list[float] = field(default_factory=list)
    error_due: list[float] = field(default_factory=list)
    # How many answers had each body (the whole run's: window() does not cut them).
    answers: dict[str, int] = field(default_factory=dict)

    def merged(self, other: LoadResult) -> LoadResult:
        """Both runs' samples as one (windows of one setting, pooled)."""
        answers = dict(self.answers)
        for body, count in other.answers.items():
            answers[body] = answers.get(body, 0) + count
        return LoadResult(self.latencies_ms + other.latencies_ms, self.errors + other.errors,
                          self.seconds + other.seconds, self.due + other.due, self.error_due + other.error_due,
                          answers)

    def window(self, start: float, end: float) -> LoadResult:
        """The requests due in [start, end) (perf_counter times)."""
        keep = [i for i, t in enumerate(self.due) if start <= t < end]
        errors = [t for t in self.error_due if start <= t < end]
        return LoadResult([self.latencies_ms[i] for i in keep], len(errors), end - start,
                          [self.due[i] for i in keep], errors)

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def _run(host: str, port: int, rate: float, seconds: float, connections: int,
               fresh_connections: bool = False, rotate: tuple[str, ...] = ()) -> LoadResult:
    hosts = (host, *rotate)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(0 if fresh_connections else connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    slots = asyncio.Semaphore(connections)
    latencies: list[float] = []
    dues: list[float] = []
    error_dues: list[float] = []
    answers: dict[str, int] = {}

    def answered(due: float, body: bytes) -> None:
        latencies.append((time.perf_counter() - due) * 1000)
        dues.append(due)
        name = body.decode(errors="replace").strip()
        answers[name] = answers.get(name, 0) + 1

    async def one(due: float) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(REQUEST)
            answered(due, await _read_answer(reader))
            pool.put_nowait((reader, writer))
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            error_dues.append(due)
            writer.close()
            pool.put_nowait(await asyncio.open_connection(host, port))

    async def one_fresh(due: float, target: str) -> None:
        async with slots:
            try:
                reader, writer = await asyncio.open_connection(target, port)
            except OSError:
                error_dues.append(due)
                return
            try:
                writer.write(CLOSE_REQUEST)
                answered(due, await _read_answer(reader))
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                error_dues.append(due)
            finally:
                writer.close()

    start = time.perf_counter() + 0.05
    total = int(rate * seconds)
    in_flight: set[asyncio.Task[None]] = set()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one_fresh(due, hosts[i % len(hosts)]) if fresh_connections else one(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return LoadResult(latencies, len(error_dues), time.perf_counter() - start, dues, error_dues, answers)


def run_load(host: str, port: int, rate: float, seconds: float, connections: int = 16,
             fresh_connections: bool = False, rotate: tuple[str, ...] = ()) -> LoadResult:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(_run(host, port, rate, seconds, connections, fresh_connections,
                                rotate if fresh_connections else ()))
    finally:
        if enabled:
            gc.enable()
